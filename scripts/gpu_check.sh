#!/usr/bin/env bash
# The GPU check, prepared for one call on a machine lent a GPU (within 10 minutes): the CUDA-marked tests, bf16
# training and inference throughput, peak memory and MFU of ashnets-base, gshn-base and spikeclip-base at the largest
# batch that fits, and spikingjelly's CUDA / Triton LIF against its torch reference (benchmarks/bench_gpu.py).
# Results: benchmarks/results/gpu.json and gpu.md, copied to $OUT when it is set (the device tool brings $OUT back).
#
# Without a GPU it says so, skips all of that (the CUDA tests report as skipped) and runs the benchmark's code on the
# tiny presets at batch 2 instead, so that a broken script shows up before a device is lent.
#
#   bash scripts/gpu_check.sh                # PYTHON=... to choose the interpreter (default .venv's, else python3)
# On the lent machine there is no .venv and no network: python3 there holds torch, and the packages it lacks travel as
# wheels that `bash scripts/gpu_wheels.sh` puts in .whl/ beforehand (then name .whl in the device call's carry).
set -uo pipefail
cd "$(dirname "$0")/.."
results=benchmarks/results
status=0

if [ -n "${PYTHON:-}" ]; then
    python="$PYTHON"
elif [ -x .venv/bin/python ]; then
    python=.venv/bin/python
else
    python=python3
    if [ -d .whl ]; then
        site="$(mktemp -d)"
        "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
            .whl/*.whl || exit 1
        export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

keep_results() {
    if [ -n "${OUT:-}" ] && [ -f "$results/gpu.json" ]; then cp "$results/gpu.json" "$results/gpu.md" "$OUT/"; fi
}
trap keep_results EXIT

if ! "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA device on this machine: skipping the CUDA-marked tests, the bf16 throughput and MFU of the"
    echo "gpu_check: base presets and the CUDA LIF comparison; checking the script on the tiny presets instead."
    "$python" -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py || status=1
    smoke="$(mktemp -d)"
    timeout 300 "$python" -m benchmarks.bench_gpu --smoke --output_dir "$smoke" || status=1
    rm -rf "$smoke"
    echo "gpu_check: done without a GPU (status $status); nothing was written to $results."
    exit $status
fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
echo "gpu_check: CUDA-marked tests"
timeout 200 "$python" -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py 2>&1 \
    | tee "${OUT:-$(mktemp -d)}/gpu_tests.log" || status=1
echo "gpu_check: bf16 throughput, memory, MFU and LIF kernels"
timeout 380 "$python" -m benchmarks.bench_gpu --output_dir "$results" || status=1
echo "gpu_check: done (status $status); results in $results/gpu.json"
exit $status
