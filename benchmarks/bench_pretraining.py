"""Does pre-training pay on easy-VQA? Pre-train then fine-tune, against fine-tuning from scratch, at equal compute.

* scratch: ashnets-tiny fine-tuned on easy-VQA with the demo's recipe (`make demo`), taking T seconds of training.
* pre-trained: `examples/pretrain.py` on the built-in easy-VQA corpus (captions and region phrases of the training
  images; all five objectives) for a share `--pretrain_share` of T, then the demo's recipe for the steps that fit in
  the rest of T (scratch's steps scaled by the remaining time).
* control: from scratch with only the pre-trained arm's fine-tuning steps (is pre-training worth more than the
  fine-tuning steps it costs?).
* `--ablations`: the pre-trained arm again with each objective switched off in turn (same steps as the full run).

Compute is wall-clock training time on this machine (both arms run here, one after the other; evaluation and set-up
are not counted). Every arm is evaluated on the full easy-VQA test split. Writes benchmarks/results/pretraining.json
and pretraining.md (the README table). Run: `python benchmarks/bench_pretraining.py [--ablations]`.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import demo_easy_vqa  # noqa: E402
import pretrain  # noqa: E402
import run_vqa  # noqa: E402
from results_files import machine, write_results  # noqa: E402

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
    results["machine"] = machine()
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
    write_results(args.results_dir, "pretraining", results, table)
    print(table)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_train_epochs", default="4", help="the scratch arm's epochs (the demo's)")
    parser.add_argument("--pretrain_share", type=float, default=0.5, help="share of the budget spent pre-training")
    parser.add_argument("--ablations", action="store_true", help="also pre-train with each objective off in turn")
    parser.add_argument("--output_dir", default=str(ROOT / "runs" / "benchmark-pretraining"))
    parser.add_argument("--results_dir", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--reuse_results", action="store_true",
                        help="keep the arms already in the results file and run only the missing ones")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    out = Path(args.output_dir)

    results = {}
    saved = os.path.join(args.results_dir, "pretraining.json")
    if args.reuse_results and os.path.isfile(saved):
        with open(saved, encoding="utf-8") as handle:
            results = json.load(handle)

    def arm(name: str, run) -> dict:
        """Run an arm unless --reuse_results already holds it; record it and rewrite the results."""
        if name not in results:
            results[name] = run()
            print(f"{name}: {json.dumps(results[name])}")
            if "pretrained" in results:
                _write(results, args)
        return results[name]

    scratch = arm("scratch", lambda: _fine_tune(str(out / "scratch"), args.num_train_epochs))
    budget = scratch["train_runtime_s"]

    def pretrain_then_fine_tune(name: str, steps: int | None, switched_off: str | None = None) -> dict:
        if steps is None:  # the full run: as many pre-training steps as fit in the budget's share
            probe = _pretrain(str(out / "probe"), 15)
            steps = max(1, int(probe["train_steps"] / probe["train_runtime"] * args.pretrain_share * budget))
        pretrained = _pretrain(str(out / name), steps, switched_off)
        remaining = max(0.0, budget - pretrained["train_runtime"])
        finetune_steps = results.get("pretrained", {}).get("train_steps") or max(
            1, int(scratch["train_steps"] * remaining / budget)
        )
        result = _fine_tune(str(out / f"{name}-vqa"), args.num_train_epochs, finetune_steps, str(out / name))
        return {**result, "pretrain_steps": steps, "pretrain_runtime_s": pretrained["train_runtime"],
                **_final_losses(pretrained)}

    full = arm("pretrained", lambda: pretrain_then_fine_tune("pretrained", None))
    # The control: no pre-training, and only the fine-tuning steps the pre-trained arm had.
    arm("scratch_same_fine_tuning_steps",
        lambda: _fine_tune(str(out / "scratch-short"), args.num_train_epochs, full["train_steps"]))
    if args.ablations:  # each objective off in turn, same pre-training and fine-tuning steps as the full run
        for objective in OBJECTIVES:
            arm(f"without_{objective}",
                lambda: pretrain_then_fine_tune(f"without-{objective}", full["pretrain_steps"], objective))


if __name__ == "__main__":
    main()
