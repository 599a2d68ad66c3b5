"""Smoke test of `make demo`'s script on real easy-VQA files."""

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs():
    script = Path(__file__).resolve().parents[1] / "examples" / "demo_easy_vqa.py"
    result = subprocess.run(
        [sys.executable, str(script), "--num_questions", "2"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert sum(line.startswith("Q: ") for line in lines) == 2
    assert "visual tokens per image: 4" in result.stdout
    assert "SNN firing rate per layer: layer 0:" in result.stdout
