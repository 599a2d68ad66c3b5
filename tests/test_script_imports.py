"""The example scripts and the benchmarks import as modules of their folders, with no sys.path edits: what the tests
(`from examples import run_vqa`) and `python -m benchmarks.<name>` rely on."""

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(f"{folder}.{path.stem}" for folder in ("examples", "benchmarks")
                 for path in (ROOT / folder).glob("*.py") if path.stem != "__init__")


@pytest.mark.parametrize("name", MODULES)
def test_imports_as_a_module(name):
    importlib.import_module(name)
