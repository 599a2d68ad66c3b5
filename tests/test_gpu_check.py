"""scripts/gpu_check.sh, the check a session lent a GPU runs in one call, must run to its end here, where it skips what
needs CUDA, says so, and exercises the benchmark's code on the tiny presets without touching the GPU results."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine the script runs the real check")
def test_gpu_check_runs_to_its_end_without_a_gpu():
    results = ROOT / "benchmarks" / "results" / "gpu.json"
    before = results.read_bytes() if results.exists() else None
    run = subprocess.run(["bash", "scripts/gpu_check.sh"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "HOME": str(Path.home())})
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "no CUDA device on this machine: skipping the CUDA-marked tests" in output
    assert "7 skipped" in output
    for preset in ("ashnets-tiny", "gshn-tiny", "spikeclip-tiny"):
        assert f"| {preset} | 2 |" in output, output[-4000:]
    assert (results.read_bytes() if results.exists() else None) == before
