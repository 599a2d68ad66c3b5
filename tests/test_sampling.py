"""Balanced sampling: every group drawn equally often, reproducibly per (seed, epoch)."""

from collections import Counter

import pytest
import torch

from modeling_ashnets.data.sampling import BalancedSampler


def test_groups_are_drawn_equally_often_whatever_their_size():
    groups = ["yes/no"] * 740 + ["color"] * 160 + ["shape"] * 100
    sampler = BalancedSampler(groups, seed=0)
    drawn = Counter(groups[index] for epoch in range(5) for index in (sampler.set_epoch(epoch) or list(sampler)))
    assert len(list(sampler)) == len(groups) == len(sampler)
    shares = {group: count / sum(drawn.values()) for group, count in drawn.items()}
    assert all(abs(share - 1 / 3) < 0.03 for share in shares.values()), shares


def test_the_same_seed_and_epoch_draw_the_same_indices():
    groups = [index % 4 for index in range(200)]
    first, second = BalancedSampler(groups, seed=3), BalancedSampler(groups, seed=3)
    first.set_epoch(2)
    second.set_epoch(2)
    assert list(first) == list(second) == list(first)
    second.set_epoch(3)
    assert list(first) != list(second)
    assert list(BalancedSampler(groups, seed=4)) != list(BalancedSampler(groups, seed=3))


def test_an_empty_training_set_is_refused():
    with pytest.raises(ValueError, match="the training set is empty"):
        BalancedSampler([])


def test_tuple_groups_are_balanced_level_by_level():
    # A yes/no question type answered "no" 88 % of the time next to a colour type with four answers.
    groups = [("yes/no", "no")] * 880 + [("yes/no", "yes")] * 120 + [("color", c) for c in "rgbk" for _ in range(50)]
    sampler = BalancedSampler(groups, seed=0)
    drawn = Counter(groups[index] for epoch in range(10) for index in (sampler.set_epoch(epoch) or list(sampler)))
    total = sum(drawn.values())
    assert abs(drawn[("yes/no", "yes")] / total - 0.25) < 0.02 and abs(drawn[("yes/no", "no")] / total - 0.25) < 0.02
    assert all(abs(drawn[("color", c)] / total - 0.125) < 0.02 for c in "rgbk"), drawn
    # Plain values and 1-tuples are the same groups.
    assert torch.equal(BalancedSampler(["a", "a", "b"]).weights, BalancedSampler([("a",), ("a",), ("b",)]).weights)
    with pytest.raises(ValueError, match="the same number of levels"):
        BalancedSampler([("a", "x"), ("b",)])
