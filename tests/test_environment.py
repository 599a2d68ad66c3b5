"""Guards against the install traps (README, "Install"): a torchvision or torchaudio that is installed but broken
breaks every transformers model import, and an environment that drifted from requirements.lock is not the one
that was tested."""

import importlib
import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.utils import canonicalize_name


LOCK = Path(__file__).resolve().parents[1] / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


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



def locked_versions() -> dict[str, str]:
    """{package: version} of the lock's pins whose environment markers hold here."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        match = PIN.match(line)
        if match and (match[3] is None or Marker(match[3]).evaluate()):
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_lock_parses():
    pins = locked_versions()
    assert {"torch", "torchvision", "torchaudio", "transformers", "spikingjelly", "uv"} <= pins.keys()
    assert pins["torchaudio"] != "2.11.1"  # does not load with torch 2.11.0 (setup.cfg excludes it)


def test_installed_packages_match_the_lock():
    """make test installs exactly requirements.lock: any other version, missing or extra package is drift.
    Environments that make did not build (a user's own, with `pip install ashnets`) follow setup.cfg's ranges."""
    if not list(Path(sys.prefix).glob(".ashnets-lock-*")):
        pytest.skip(f"{sys.prefix} was not built from requirements.lock by make")
    pins = locked_versions()
    installed = {canonicalize_name(dist.metadata["Name"]): dist.version for dist in importlib.metadata.distributions()}
    installed.pop("ashnets", None)  # this package, installed editable on top of the lock
    drift = [f"{name}: installed {installed[name]}, locked {pins[name]}"
             for name in sorted(pins.keys() & installed.keys()) if installed[name] != pins[name]]
    drift += [f"{name}: locked {pins[name]}, not installed" for name in sorted(pins.keys() - installed.keys())]
    drift += [f"{name}: installed {installed[name]}, not in the lock" for name in sorted(installed.keys() - pins.keys())]
    assert not drift, (
        "the environment differs from requirements.lock (rebuild it: make clean && make test):\n" + "\n".join(drift)
    )
