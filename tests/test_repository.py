"""What only one machine has must not travel in git: a tracked environment, a symlink leaving the repository or an
absolute path of one machine breaks the README's commands everywhere else, while CI (which reuses its own
environment) stays green."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENT_MARKERS = ("pyvenv.cfg", "site-packages/", "conda-meta/")
ENVIRONMENT_NAMES = {".venv", "venv", ".env", "env", ".conda"}
# Home folders, caches and scratch folders of one machine. Written in pieces so that this file does not match itself.
MACHINE_PATH = re.compile(
    "(?<![\\w.~])(/" + "root/|/" + r"home/[\w.-]+/|/" + r"Users/[\w.-]+/|[A-Z]:\\" + r"Users\\|/" + "tmp/|/" + "work/)"
)
TEXT_SUFFIXES = {".py", ".md", ".cfg", ".toml", ".txt", ".json", ".yaml", ".yml", ".sh", ".lock", ".in", ""}


def tracked_entries() -> list[tuple[str, str]]:
    """(mode, path) of every file git tracks here."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listing = subprocess.run(
        ["git", "ls-files", "-s", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    entries = []
    for record in filter(None, listing.split("\0")):
        meta, path = record.split("\t", 1)
        entries.append((meta.split()[0], path))
    return entries


def test_no_environment_is_tracked():
    offenders = [
        path for _, path in tracked_entries()
        if path.split("/")[0] in ENVIRONMENT_NAMES or any(marker in path for marker in ENVIRONMENT_MARKERS)
    ]
    assert not offenders, f"git tracks an environment (remove it with `git rm --cached`): {offenders}"


def test_no_symlink_leaves_the_repository():
    offenders = []
    for mode, path in tracked_entries():
        if mode != "120000":
            continue
        target = subprocess.run(
            ["git", "cat-file", "-p", f":{path}"], cwd=ROOT, capture_output=True, check=True, text=True
        ).stdout
        resolved = (ROOT / path).parent.joinpath(target).resolve()
        if target.startswith("/") or not resolved.is_relative_to(ROOT):
            offenders.append(f"{path} -> {target}")
    assert not offenders, f"tracked symlinks that leave the repository (exist on no other machine): {offenders}"


def test_no_absolute_path_of_one_machine():
    offenders = []
    for mode, path in tracked_entries():
        if mode == "120000" or Path(path).suffix not in TEXT_SUFFIXES:
            continue
        try:
            text = (ROOT / path).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if MACHINE_PATH.search(line):
                offenders.append(f"{path}:{number}: {line.strip()[:120]}")
    assert not offenders, "tracked files name a path of one machine:\n" + "\n".join(offenders)


@pytest.mark.parametrize("line, machine_specific", [
    ("VENV = /" + "root/.cache/ashnets/ci-venv", True),
    ("see /" + "home/alice/data/coco", True),
    ("C:\\" + "Users\\bob\\ckpt", True),
    ("out = '/" + "tmp/run1'", True),
    ("url = 'https://example.org/home/page'", False),
    ("path = '~/.cache/ashnets'", False),
    ("folder runs/tmp/ inside the clone", False),
])
def test_machine_path_pattern(line, machine_specific):
    assert bool(MACHINE_PATH.search(line)) is machine_specific
