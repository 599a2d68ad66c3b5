"""Does pre-training pay on easy-VQA? Pre-train then fine-tune, against fine-tuning from scratch, at equal compute.

* scratch: ashnets-tiny fine-tuned on easy-VQA with the demo's recipe (`make demo`), taking T seconds of training.
* pre-trained: `examples/pretrain.py` on the built-in easy-VQA corpus (captions and region phrases of the training
  images; all five objectives) for a share `--pretrain_share` of T, then the demo's recipe for the steps that fit in
  the rest of T (scratch's steps scaled by the remaining time).
* `--ablations`: the pre-trained arm again with each objective switched off in turn (same steps as the full run).

Compute is wall-clock training time on this machine (both arms run here, one after the other; evaluation and set-up
are not counted). Every arm is evaluated on the full easy-VQA test split. Writes benchmarks/results/pretraining.json
and pretraining.md (the README table). Run: `python benchmarks/bench_pretraining.py [--ablations]`.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import demo_easy_vqa  # noqa: E402
import pretrain  # noqa: E402
import run_vqa  # noqa: E402

RECIPE_OVERRIDES = "initializer_range=0.05,hidden_dropout_prob=0,attention_probs_dropout_prob=0"
PRETRAIN_ARGUMENTS = [
    "--preset", "ashnets-tiny",
    "--per_device_train_batch_size", "64",
    "--learning_rate", "1e-3",
    "--warmup_ratio", "0.05",
    "--image_cache_size", "5000",
    "--logging_steps", "20",
]
OBJECTIVES = ("itc", "itm", "mlm", "mvm", "stua")


def _train_results(folder: str) -> dict:
    with open(os.path.join(folder, "train_results.json"), encoding="utf-8") as handle:
        return json.load(handle)


def _pretrain(output_dir: str, steps: int, switched_off: str | None = None) -> dict:
    overrides = RECIPE_OVERRIDES + (f",{switched_off}_weight=0" if switched_off else "")
    pretrain.main([*PRETRAIN_ARGUMENTS, "--config_overrides", overrides, "--max_train_steps", str(steps),
                   "--output_dir", output_dir])
    return _train_results(output_dir)


def _fine_tune(output_dir: str, epochs: str, steps: int | None = None, start_from: str | None = None) -> dict:
    arguments = [*demo_easy_vqa.DEMO_ARGUMENTS, "--num_train_epochs", epochs, "--output_dir", output_dir]
    if steps is not None:
        arguments += ["--max_train_steps", str(steps)]
    if start_from is not None:
        arguments += ["--model_name_or_path", start_from]
    metrics = run_vqa.main(arguments)
    trained = _train_results(output_dir)
    return {
        "eval_accuracy": metrics["eval_accuracy"],
        **{k: v for k, v in metrics.items() if k.startswith("eval_accuracy_")},
        "train_steps": trained["train_steps"],
        "train_runtime_s": trained["train_runtime"],
    }


def _final_losses(pretrained: dict) -> dict:
    last = pretrained["log_history"][-1] if pretrained["log_history"] else {}
    first = pretrained["log_history"][0] if pretrained["log_history"] else {}
    return {
        "first_logged": {k: v for k, v in first.items() if k.endswith("loss") or k.startswith("firing_rate")},
        "last_logged": {k: v for k, v in last.items() if k.endswith("loss") or k.startswith("firing_rate")},
    }


def _write(results: dict, args) -> None:
    """The JSON and the README table of the arms run so far (rewritten after every arm, so a cut-short run keeps
    what it measured)."""
    results["ratio_pretrained_over_scratch_accuracy"] = (
        results["pretrained"]["eval_accuracy"] / results["scratch"]["eval_accuracy"]
    )
    results["machine"] = {"cpu_threads": torch.get_num_threads(), "torch": torch.__version__,
                          "platform": platform.platform(), "date": time.strftime("%Y-%m-%d")}
    os.makedirs(args.results_dir, exist_ok=True)
    with open(os.path.join(args.results_dir, "pretraining.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
        handle.write("\n")
    rows = ["| arm | pre-training | fine-tuning | total training time | test accuracy | yes/no | color | shape |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, arm in results.items():
        if not isinstance(arm, dict) or "eval_accuracy" not in arm:
            continue
        total = arm["train_runtime_s"] + arm.get("pretrain_runtime_s", 0.0)
        pre = f"{arm['pretrain_steps']} steps, {arm['pretrain_runtime_s']:.0f} s" if "pretrain_steps" in arm else "none"
        rows.append(
            f"| {name.replace('_', ' ')} | {pre} | {arm['train_steps']} steps, {arm['train_runtime_s']:.0f} s | "
            f"{total:.0f} s | {100 * arm['eval_accuracy']:.2f} % | {100 * arm.get('eval_accuracy_yes_no', 0):.2f} % | "
            f"{100 * arm.get('eval_accuracy_color', 0):.2f} % | {100 * arm.get('eval_accuracy_shape', 0):.2f} % |"
        )
    rows.append("")
    rows.append(f"pre-trained / scratch accuracy: x{results['ratio_pretrained_over_scratch_accuracy']:.3f} "
                f"({results['machine']['cpu_threads']} CPU threads, {results['machine']['date']}).")
    table = "\n".join(rows) + "\n"
    with open(os.path.join(args.results_dir, "pretraining.md"), "w", encoding="utf-8") as handle:
        handle.write(table)
    print(table)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_train_epochs", default="4", help="the scratch arm's epochs (the demo's)")
    parser.add_argument("--pretrain_share", type=float, default=0.5, help="share of the budget spent pre-training")
    parser.add_argument("--ablations", action="store_true", help="also pre-train with each objective off in turn")
    parser.add_argument("--output_dir", default=str(ROOT / "runs" / "benchmark-pretraining"))
    parser.add_argument("--results_dir", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    out = Path(args.output_dir)

    scratch = _fine_tune(str(out / "scratch"), args.num_train_epochs)
    budget = scratch["train_runtime_s"]
    print(f"scratch: {json.dumps(scratch)}")

    probe = _pretrain(str(out / "probe"), 15)
    pretrain_rate = probe["train_steps"] / probe["train_runtime"]
    pretrain_steps = max(1, int(pretrain_rate * args.pretrain_share * budget))
    pretrained = _pretrain(str(out / "pretrained"), pretrain_steps)
    remaining = max(0.0, budget - pretrained["train_runtime"])
    finetune_steps = max(1, int(scratch["train_steps"] * remaining / budget))
    with_pretraining = _fine_tune(str(out / "pretrained-vqa"), args.num_train_epochs, finetune_steps,
                                  str(out / "pretrained"))
    with_pretraining.update(pretrain_steps=pretrain_steps, pretrain_runtime_s=pretrained["train_runtime"],
                            **_final_losses(pretrained))
    print(f"pre-trained: {json.dumps(with_pretraining)}")
    results = {"scratch": scratch, "pretrained": with_pretraining}
    _write(results, args)

    if args.ablations:
        for objective in OBJECTIVES:
            folder = out / f"without-{objective}"
            ablated = _pretrain(str(folder), pretrain_steps, switched_off=objective)
            arm = _fine_tune(str(folder) + "-vqa", args.num_train_epochs, finetune_steps, str(folder))
            arm.update(pretrain_steps=pretrain_steps, pretrain_runtime_s=ablated["train_runtime"])
            results[f"without_{objective}"] = arm
            print(f"without {objective}: {json.dumps(arm)}")
            _write(results, args)


if __name__ == "__main__":
    main()
