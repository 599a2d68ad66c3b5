#!/usr/bin/env bash
# Wheels for the GPU machine, which has torch, transformers and most of our dependencies in its python3 but no network:
# the packages it lacks (or holds at another version than requirements.lock), for Python 3.12 on x86-64, into .whl/
# (ignored by git). Then: the device call's carry = [".whl"] and its command `bash scripts/gpu_check.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
pinned() { grep -m1 -E "^$1==" requirements.lock | cut -d' ' -f1; }
rm -rf .whl && mkdir .whl
for package in spikingjelly loguru transformers nir nirtorch; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform any -d .whl "$(pinned $package)"
done
du -sh .whl && ls .whl
