"""Where and how the benchmarks write their results: a JSON file with the machine they ran on, and a Markdown
table for the README, side by side in benchmarks/results/."""

import json
import os
import platform
import time

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
