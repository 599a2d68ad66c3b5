"""Fetch transformers' common test files for the installed transformers version, once, into the cache outside the
clone, so that `make test` can run them offline.

The files come from transformers' source distribution on PyPI (`pip download`); the modules it does not ship are
filled in from `tests/transformers_shims/` (its README says why each stand-in is enough). Prints the folder."""

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

COMMON_FILES = ["test_modeling_common.py", "test_configuration_common.py", "test_processing_common.py",
                "test_image_processing_common.py"]
SHIMS = Path(__file__).resolve().parents[1] / "tests" / "transformers_shims"


def cache_folder(version: str | None = None) -> Path:
    """Where the files of one transformers version live (tests/test_transformers_common.py imports them from here)."""
    version = version or importlib.metadata.version("transformers")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = Path(os.environ.get("ASHNETS_CACHE") or cache / "ashnets")
    return root / f"transformers-tests-{version}"


def fetch(version: str, target: Path) -> None:
    with tempfile.TemporaryDirectory() as download:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        "--no-build-isolation", f"transformers=={version}", "--dest", download], check=True)
        (archive,) = Path(download).glob("transformers-*.tar.gz")
        staging = Path(tempfile.mkdtemp(dir=target.parent))
        package = staging / "transformers_tests"
        shutil.copytree(SHIMS, package, ignore=shutil.ignore_patterns("hub_utils", "README.md", "__pycache__"))
        with tarfile.open(archive) as sdist:
            for name in COMMON_FILES:
                member = sdist.getmember(f"transformers-{version}/tests/{name}")
                (package / name).write_bytes(sdist.extractfile(member).read())
        (staging / "utils").mkdir()
        shutil.copy(SHIMS / "hub_utils" / "fetch_hub_objects_for_ci.py", staging / "utils")
        staging.rename(target)  # complete or absent: an interrupted fetch leaves no half-filled folder


if __name__ == "__main__":
    version = importlib.metadata.version("transformers")
    target = cache_folder(version)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fetch(version, target)
    print(target)
