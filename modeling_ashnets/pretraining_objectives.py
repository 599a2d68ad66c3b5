"""Building blocks of ASH-Nets' pre-training objectives (README "Model"; docs/model.md section 3).

Why a module of its own: the retrieval head and the pre-training head share the contrastive loss, the hard-negative
sampling for image-text matching, and the cross-process gathering; MLM masking is BERT's recipe.
"""

import torch
from torch import nn


__all__ = ["gather_with_grad", "info_nce", "mask_tokens_for_mlm", "sample_hard_negatives"]


def gather_with_grad(tensor: torch.Tensor, grad: bool = True) -> tuple[torch.Tensor, int]:
    """All processes' `tensor`s concatenated along dim 0, with gradients flowing back to each process's own part
    (contrastive losses need the negatives of every process; `grad=False` for labels), and where this process's rows
    start. Processes may hold different numbers of rows (a batch that lost bad samples). A no-op outside
    torch.distributed."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return tensor, 0
    world_size = torch.distributed.get_world_size()
    if world_size == 1:
        return tensor, 0
    sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(world_size)]
    torch.distributed.all_gather(sizes, torch.tensor([tensor.shape[0]], device=tensor.device))
    sizes = [int(size) for size in sizes]
    padded = nn.functional.pad(tensor, (0, 0) * (tensor.dim() - 1) + (0, max(sizes) - tensor.shape[0]))
    if grad:
        from torch.distributed.nn.functional import all_gather

        parts = all_gather(padded)
    else:
        parts = [torch.empty_like(padded) for _ in range(world_size)]
        torch.distributed.all_gather(parts, padded)
    rank = torch.distributed.get_rank()
    return torch.cat([part[:size] for part, size in zip(parts, sizes)], dim=0), sum(sizes[:rank])


def info_nce(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each row of `logits` (queries x candidates) against the uniform distribution over its
    positive candidates (`positives`, bool, same shape; every row needs at least one, which the callers' pairs
    guarantee: a caption is always a positive of its own image)."""
    targets = positives.to(logits.dtype)
    return nn.functional.cross_entropy(logits, targets / targets.sum(dim=1, keepdim=True))


def sample_hard_negatives(logits: torch.Tensor, positives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row, one negative candidate sampled in proportion to its softmaxed similarity among the rows'
    non-positive candidates; also whether the row had any negative at all."""
    with torch.no_grad():
        weights = (logits.float().softmax(dim=1) + 1e-12).masked_fill(positives, 0)
        has_negative = ~positives.all(dim=1)
        weights[~has_negative] = 1.0  # any index; these rows are dropped by the caller
        return torch.multinomial(weights, 1).squeeze(1), has_negative


def mask_tokens_for_mlm(
    input_ids: torch.Tensor,
    special_tokens_mask: torch.Tensor,
    vocab_size: int,
    mask_token_id: int,
    probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: each non-special token is chosen with `probability`; chosen tokens become `[MASK]` (80 %), a
    random token (10 %) or stay (10 %). Returns (masked ids, labels with -100 where nothing is predicted)."""
    chosen = torch.rand(input_ids.shape, generator=generator, device=input_ids.device) < probability
    chosen &= ~special_tokens_mask.bool()
    labels = input_ids.masked_fill(~chosen, -100)
    draw = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    masked = input_ids.masked_fill(chosen & (draw < 0.8), mask_token_id)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, device=input_ids.device)
    replace = chosen & (draw >= 0.8) & (draw < 0.9)
    masked = torch.where(replace, random_ids, masked)
    return masked, labels
