"""Guards against the install traps of ENVIRONMENT.md: a torchvision or torchaudio that is installed but broken
breaks every transformers model import."""

import importlib
import importlib.util

import pytest


@pytest.mark.parametrize("name", ["torchvision", "torchaudio"])
def test_installed_torch_companions_import(name):
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed")
    module = importlib.import_module(name)
    import torch

    assert module.__version__
    if name == "torchvision":
        assert torch.ops.torchvision.nms is not None  # the C++ ops of a build that matches torch


def test_transformers_models_and_spikingjelly_import():
    from spikingjelly.activation_based import functional, layer, neuron, surrogate  # noqa: F401
    from transformers import PreTrainedModel, ResNetModel  # noqa: F401

