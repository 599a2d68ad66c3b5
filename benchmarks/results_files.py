"""Where and how the benchmarks write their results: a JSON file with the machine they ran on, and a Markdown
table for the README, side by side in benchmarks/results/."""

import json
import os
import platform
import time
from pathlib import Path

import torch


def machine() -> dict:
    return {"cpu_threads": torch.get_num_threads(), "torch": torch.__version__, "platform": platform.platform(),
            "date": time.strftime("%Y-%m-%d")}


def write_results(results_dir: str, name: str, results: dict, table: str) -> None:
    """`results_dir/name.json` (with `results["machine"]` set) and `results_dir/name.md` (`table`)."""
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, f"{name}.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
        handle.write("\n")
    with open(os.path.join(results_dir, f"{name}.md"), "w", encoding="utf-8") as handle:
        handle.write(table)


def stored_runs(path: Path, arguments: dict) -> dict[int, dict]:
    """The runs (by seed) already in a variant's results file, if it was run with these `arguments`: adding seeds
    to a variant then trains only the new ones."""
    if not path.exists():
        return {}
    result = json.loads(path.read_text())
    if any(result["arguments"].get(key) != value for key, value in arguments.items()):
        return {}
    return {run["seed"]: run for run in result["runs"]}


def write_variant(path: Path, result: dict, runs: dict[int, dict]) -> None:
    """A variant's results file: `result` with the machine and its runs in seed order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    result = {**result, "machine": machine(), "runs": [runs[seed] for seed in sorted(runs)]}
    path.write_text(json.dumps(result, indent=2) + "\n")
