"""SOHO's visual dictionary: an online codebook over the visual tokens, the vocabulary of masked visual modelling.

Why a module of its own: MVM needs discrete targets for continuous visual tokens. The dictionary maps each token to
its nearest entry (a straight-through estimator passes gradients past the lookup) and follows the tokens by a
moving average instead of by gradients. Its update is summed over every process, so that all processes keep the same
dictionary, and it lives in buffers, so that checkpoints (`save_pretrained`, `accelerator.save_state`) carry it.
"""

import torch
from torch import nn


__all__ = ["AshNetsVisualDictionary"]


def _all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(tensor)
    return tensor


class AshNetsVisualDictionary(nn.Module):
    """`size` entries of width `dim`, updated by an exponential moving average with decay `decay`. An entry whose
    average use falls below `dead_threshold` tokens per batch is moved onto a random token of the batch (without it,
    entries that start in the wrong place are never chosen again and the dictionary shrinks)."""

    def __init__(self, size: int, dim: int, decay: float = 0.99, eps: float = 1e-5, dead_threshold: float = 0.01):
        super().__init__()
        self.size, self.decay, self.eps, self.dead_threshold = size, decay, eps, dead_threshold
        self.register_buffer("embeddings", torch.zeros(size, dim))
        self.register_buffer("cluster_size", torch.zeros(size))
        self.register_buffer("embedding_sum", torch.zeros(size, dim))
        # Entries start from tokens of the first training batch (random vectors would mostly never be chosen).
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self._known_initialized = False  # once True, the buffer is not read again (reading it waits for the device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self._known_initialized = False  # the loaded dictionary may be empty
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def lookup(self, features: torch.Tensor) -> torch.Tensor:
        """Index of the nearest entry (Euclidean) of every token: (..., dim) -> (...)."""
        flat = features.detach().float().reshape(-1, features.shape[-1])
        distances = torch.cdist(flat, self.embeddings.float())
        return distances.argmin(dim=1).reshape(features.shape[:-1])

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(quantised tokens, indices). The quantised tokens carry the entries' values forward and pass gradients
        straight through to `features`. In training mode the dictionary first moves towards this batch."""
        if self.training:
            self._update(features)
        elif not self._is_initialized():
            raise RuntimeError("The visual dictionary is empty: it is filled by the first training batch.")
        indices = self.lookup(features)
        entries = self.embeddings[indices].to(features.dtype)
        return features + (entries - features).detach(), indices

    @torch.no_grad()
    def _update(self, features: torch.Tensor) -> None:
        flat = features.detach().float().reshape(-1, features.shape[-1])
        if not self._is_initialized():
            self._initialize(flat)
        indices = self.lookup(flat)
        counts = torch.bincount(indices, minlength=self.size).float()
        sums = torch.zeros_like(self.embedding_sum).index_add_(0, indices, flat)
        counts, sums = _all_reduce_sum(counts), _all_reduce_sum(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embedding_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        # Laplace smoothing keeps entries that have not been chosen for a while from dividing by zero.
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.size * self.eps) * total
        self.embeddings.copy_(self.embedding_sum / smoothed.unsqueeze(1))
        # Dead entries are the same on every process (the statistics are summed). Re-seeding runs at every step and
        # changes only the dead entries, so that no branch waits for the device to know whether any is dead.
        self._reseed(flat, self.cluster_size < self.dead_threshold)

    def _is_initialized(self) -> bool:
        self._known_initialized = self._known_initialized or bool(self.initialized)
        return self._known_initialized

    def _initialize(self, flat: torch.Tensor) -> None:
        """Entries start as random tokens of this batch."""
        self._reseed(flat, torch.ones(self.size, dtype=torch.bool, device=flat.device))
        self.initialized.fill_(True)

    def _reseed(self, flat: torch.Tensor, which: torch.Tensor) -> None:
        """Move the entries `which` onto random tokens of this batch (with replacement when the batch has fewer
        tokens, plus a little noise so that no two entries coincide), drawn on process 0 and shared."""
        picks = torch.randint(flat.shape[0], (self.size,), device=flat.device)
        entries = flat[picks] + 1e-3 * flat.std() * torch.randn(self.size, flat.shape[1], device=flat.device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.broadcast(entries, src=0)
        rows = which.unsqueeze(1)
        self.embeddings.copy_(torch.where(rows, entries, self.embeddings))
        self.embedding_sum.copy_(torch.where(rows, entries, self.embedding_sum))
        self.cluster_size.masked_fill_(which, 1.0)
