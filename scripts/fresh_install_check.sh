#!/usr/bin/env bash
# A new user's first minutes: clone this repository's committed HEAD into a temporary folder and run the README's
# two commands there, with the default VENV and empty package caches (uv, pip, Hugging Face). Reports the set-up,
# test and demo times, the environment's size and what dominates it, and whether a second install from the lock
# gives the same `pip freeze`. Exits non-zero when any step fails.
#
#   bash scripts/fresh_install_check.sh            # or: make fresh-install-check
#   KEEP=1 bash scripts/fresh_install_check.sh     # keep the temporary folder (about 5.5 GB) for a look
#   SKIP_DEMO=1 ...                                # leave out make demo (about 6 minutes on 2 cores)
set -euo pipefail
source_repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/ashnets-fresh.XXXXXX")"
report="$work/report.txt"
cleanup() { if [ "${KEEP:-0}" != 1 ]; then rm -rf "$work"; fi; }
trap cleanup EXIT

# Empty caches: nothing that an earlier install left on this machine is reused.
export UV_CACHE_DIR="$work/cache/uv" PIP_CACHE_DIR="$work/cache/pip" XDG_CACHE_HOME="$work/cache"
unset VENV PYTEST_ARGS HF_HOME || true

say() { echo "$*" | tee -a "$report"; }
seconds() { local start=$1; echo $(( $(date +%s) - start )); }

git clone --quiet "$source_repo" "$work/ashnets"
cd "$work/ashnets"
say "fresh-install check of $(git rev-parse --short HEAD) ($(git log -1 --format=%s | cut -c1-80))"
say "python: $(python3 --version 2>&1); machine: $(uname -m), $(nproc) cores; date: $(date -u +%FT%TZ)"

start=$(date +%s)
make install > "$work/install.log" 2>&1 || { tail -n 30 "$work/install.log"; say "FAILED: make install"; exit 1; }
setup_s=$(seconds "$start")
say "set-up (venv + uv bootstrap + install from requirements.lock + editable install): ${setup_s} s"
say "environment: $(du -sh .venv | cut -f1) in .venv; largest packages:"
# awk reads all its input (head would close the pipe early, and pipefail would stop the script on sort's SIGPIPE).
du -sm .venv/lib/python3*/site-packages/* 2>/dev/null | sort -rn \
  | awk 'NR <= 8 {n = split($2, p, "/"); printf "  %6d MB  %s\n", $1, p[n]}' | tee -a "$report"
nvidia_mb=$(du -scm .venv/lib/python3*/site-packages/nvidia* .venv/lib/python3*/site-packages/cuda* \
  .venv/lib/python3*/site-packages/triton 2>/dev/null | tail -n 1 | cut -f1)
say "  of which CUDA libraries (nvidia*, cuda*, triton): ${nvidia_mb} MB"
.venv/bin/python -m pip freeze --all --exclude-editable | sort > "$work/freeze-1.txt"

start=$(date +%s)
make test > "$work/test.log" 2>&1 || { tail -n 40 "$work/test.log"; say "FAILED: make test"; exit 1; }
say "make test: $(seconds "$start") s; $(grep -E '^=+ .*(passed|failed).* =+$' "$work/test.log" | tail -n 1)"

if [ "${SKIP_DEMO:-0}" != 1 ]; then
  start=$(date +%s)
  make demo > "$work/demo.log" 2>&1 || { tail -n 30 "$work/demo.log"; say "FAILED: make demo"; exit 1; }
  say "make demo: $(seconds "$start") s"
  grep -A 4 "test accuracy" "$work/demo.log" | sed 's/^/  /' | tee -a "$report"
fi

# The same lock installed a second time (warm cache) must give the same environment.
rm -rf .venv
start=$(date +%s)
make install > "$work/install-2.log" 2>&1 || { tail -n 30 "$work/install-2.log"; say "FAILED: second make install"; exit 1; }
.venv/bin/python -m pip freeze --all --exclude-editable | sort > "$work/freeze-2.txt"
if cmp -s "$work/freeze-1.txt" "$work/freeze-2.txt"; then
  say "second install from the lock (warm cache): $(seconds "$start") s; pip freeze identical ($(wc -l < "$work/freeze-1.txt") packages)"
else
  diff "$work/freeze-1.txt" "$work/freeze-2.txt" | tee -a "$report"
  say "FAILED: pip freeze differs between two installs from the same lock"
  exit 1
fi
mkdir -p "$source_repo/runs"
cp "$report" "$source_repo/runs/fresh_install_check.txt"
say "report: runs/fresh_install_check.txt"
