"""Balanced sampling: every group of a column (an answer type, a question type) drawn equally often.

Why: in a VQA mix dominated by one kind of question, the model settles on what answers the many and the signal of the
few starves. On easy-VQA (74 % yes/no) the shape of the object stays at chance for thousands of steps unless colour,
shape and yes/no questions come equally often (README, "Does it look?").
"""

from collections import Counter
from collections.abc import Sequence

import torch
from torch.utils.data import Sampler


__all__ = ["BalancedSampler"]


class BalancedSampler(Sampler[int]):
    """Draws `len(groups)` indices per epoch, with replacement, each with probability 1 / (number of groups x size of
    its group). Seeded by `seed + epoch` (Accelerate calls `set_epoch`), so a resumed run draws the same batches and
    every process of a distributed run the same indices, which Accelerate then shards."""

    def __init__(self, groups: Sequence, seed: int = 0):
        if len(groups) == 0:
            raise ValueError("BalancedSampler got no samples: the training set is empty.")
        counts = Counter(groups)
        self.weights = torch.tensor([1.0 / counts[group] for group in groups], dtype=torch.double)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.weights)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from torch.multinomial(self.weights, len(self.weights), replacement=True, generator=generator).tolist()
