"""Balanced sampling: every group of a column (an answer type, a question type) drawn equally often.

Why: in a VQA mix dominated by one kind of question, the model settles on what answers the many and the signal of the
few starves. On easy-VQA (74 % yes/no) the shape of the object stays at chance for thousands of steps unless colour,
shape and yes/no questions come equally often (README, "Does it look?").
"""

from collections import Counter, defaultdict
from collections.abc import Sequence

import torch
from torch.utils.data import Sampler


__all__ = ["BalancedSampler"]


def _nested_weights(keys: Sequence[tuple]) -> dict[tuple, float]:
    """Sampling weight of one sample of each key, so that the first level's values come equally often, then, within
    each, the second level's values, and so on."""
    counts = Counter(keys)
    children = defaultdict(set)
    for key in counts:
        for depth in range(len(key)):
            children[key[:depth]].add(key[depth])
    weights = {}
    for key, count in counts.items():
        weight = 1.0 / count
        for depth in range(len(key)):
            weight /= len(children[key[:depth]])
        weights[key] = weight
    return weights


class BalancedSampler(Sampler[int]):
    """Draws `len(groups)` indices per epoch, with replacement, every group equally often (each sample with
    probability 1 / (number of groups x size of its group)). Tuple groups are balanced level by level: with
    (question type, answer) every question type comes equally often, and within it every answer, which keeps a
    skewed yes/no question type from settling on "no". Seeded by `seed + epoch` (Accelerate calls `set_epoch`), so a
    resumed run draws the same batches and every process of a distributed run the same indices, which Accelerate
    then shards."""

    def __init__(self, groups: Sequence, seed: int = 0):
        if len(groups) == 0:
            raise ValueError("BalancedSampler got no samples: the training set is empty.")
        keys = [group if isinstance(group, tuple) else (group,) for group in groups]
        if len({len(key) for key in keys}) > 1:
            raise ValueError("BalancedSampler: tuple groups must all have the same number of levels.")
        weight = _nested_weights(keys)
        self.weights = torch.tensor([weight[key] for key in keys], dtype=torch.double)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.weights)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from torch.multinomial(self.weights, len(self.weights), replacement=True, generator=generator).tolist()
