"""Does pre-training pay on easy-VQA? Pre-train then fine-tune, against fine-tuning from scratch, at equal compute,
over several seeds.

* scratch: ashnets-tiny fine-tuned on easy-VQA with the demo's recipe (`make demo`) for `--num_train_epochs`,
  taking T seconds of training.
* pretrained: `examples/pretrain.py` on the built-in easy-VQA corpus (captions and region phrases of the training
  images; all five objectives) for a share `--pretrain_share` of T, then the demo's recipe for the steps that fit in
  the rest of T (scratch's steps scaled by the remaining time).
* control: from scratch with only the pre-trained arm's fine-tuning steps (is pre-training worth more than the
  fine-tuning steps it costs?).
* `--ablations`: the pre-trained arm again with each objective switched off in turn (first seed only).
* `--variant NAME OVERRIDES`: the pre-trained arm again with other pre-training options (e.g. `temperature-0.2
  logit_scale_init_value=1.6094`), over every seed.

T, the pre-training steps and the fine-tuning steps are fixed by the first seed (a 15-step probe times pre-training)
and kept for the others, so every seed runs the same steps. Compute is wall-clock training time on this machine
(evaluation and set-up are not counted). Every arm is evaluated on the full easy-VQA test split every
`--eval_steps` fine-tuning steps, which gives the curves and the first step at 99 %. Writes
benchmarks/results/pretraining.json and pretraining.md (the README table).
Run: `python -m benchmarks.bench_pretraining [--seeds 0 1 2] [--ablations]`.
"""

import argparse
import json
import os
from pathlib import Path

import torch

from benchmarks.results_files import machine, write_results
from examples import demo_easy_vqa, pretrain, run_vqa

ROOT = Path(__file__).resolve().parents[1]

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


def _pretrain(output_dir: str, steps: int, seed: int, extra_overrides: str | None = None):
    overrides = RECIPE_OVERRIDES + (f",{extra_overrides}" if extra_overrides else "")
    return pretrain.main([*PRETRAIN_ARGUMENTS, "--config_overrides", overrides, "--max_train_steps", str(steps),
                          "--seed", str(seed), "--output_dir", output_dir])


def _fine_tune(output_dir: str, args, seed: int, steps: int | None = None, start_from: str | None = None) -> dict:
    arguments = [*demo_easy_vqa.DEMO_ARGUMENTS, "--num_train_epochs", args.num_train_epochs, "--seed", str(seed),
                 "--eval_steps", str(args.eval_steps), "--output_dir", output_dir]
    if steps is not None:
        arguments += ["--max_train_steps", str(steps)]
    if start_from is not None:
        arguments += ["--model_name_or_path", start_from]
    result = run_vqa.main(arguments)
    trained = result.train_metrics
    curve = [{"step": entry["step"], **{k: v for k, v in entry.items() if k.startswith("eval_accuracy")}}
             for entry in result.log_history if "eval_accuracy" in entry]
    final = {k: v for k, v in result.eval_metrics.items() if k.startswith("eval_accuracy")}
    return {**final, "train_steps": trained["train_steps"], "train_runtime_s": trained["train_runtime"],
            "curve": [*curve, {"step": trained["train_steps"], **final}]}


def _final_losses(log_history: list[dict]) -> dict:
    losses = [entry for entry in log_history if "loss" in entry]
    first, last = (losses[0], losses[-1]) if losses else ({}, {})
    return {
        "first_logged": {k: v for k, v in first.items() if k.endswith("loss") or k.startswith("firing_rate")},
        "last_logged": {k: v for k, v in last.items() if k.endswith("loss") or k.startswith("firing_rate")},
    }


def first_step_at(curve: list[dict], accuracy: float = 0.99) -> int | None:
    """The first evaluated fine-tuning step whose test accuracy reaches `accuracy`."""
    return next((point["step"] for point in curve if point["eval_accuracy"] >= accuracy), None)


def _mean_worst(values: list[float]) -> str:
    return f"{100 * sum(values) / len(values):.2f} ({100 * min(values):.2f})"


def _write(results: dict, args) -> None:
    """The JSON and the README table of the runs so far (rewritten after every run, so a cut-short benchmark keeps
    what it measured)."""
    arms = results["arms"]
    results["machine"] = machine()
    rows = ["| arm | seeds | pre-training | fine-tuning | total training time | test accuracy | color | shape | "
            "yes/no | first step at 99 % (per seed) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, runs in arms.items():
        runs = [runs[seed] for seed in sorted(runs, key=int)]
        seconds = sum(run["train_runtime_s"] + run.get("pretrain_runtime_s", 0.0) for run in runs) / len(runs)
        pre = (f"{runs[0]['pretrain_steps']} steps, {sum(r['pretrain_runtime_s'] for r in runs) / len(runs):.0f} s"
               if "pretrain_steps" in runs[0] else "none")
        fine = f"{runs[0]['train_steps']} steps, {sum(r['train_runtime_s'] for r in runs) / len(runs):.0f} s"
        firsts = ", ".join(str(first_step_at(run["curve"]) or "-") for run in runs)
        rows.append(
            f"| {name.replace('_', ' ')} | {len(runs)} | {pre} | {fine} | {seconds:.0f} s | "
            f"{_mean_worst([r['eval_accuracy'] for r in runs])} | "
            + " | ".join(_mean_worst([r.get(f"eval_accuracy_{kind}", 0.0) for r in runs])
                         for kind in ("color", "shape", "yes_no"))
            + f" | {firsts} |"
        )
    rows.append("")
    if "pretrained" in arms and "scratch" in arms:
        paired = [arms["pretrained"][seed]["eval_accuracy"] / arms["scratch"][seed]["eval_accuracy"]
                  for seed in arms["pretrained"] if seed in arms["scratch"]]
        results["ratio_pretrained_over_scratch_accuracy"] = sum(paired) / len(paired)
        rows.append(f"pre-trained / scratch accuracy, mean over {len(paired)} seeds: "
                    f"x{results['ratio_pretrained_over_scratch_accuracy']:.4f} (per seed "
                    + ", ".join(f"x{ratio:.4f}" for ratio in paired) + ").")
    rows.append(f"Mean over seeds (worst in brackets), in %; budget {args.num_train_epochs} demo epochs; "
                f"{results['machine']['cpu_threads']} CPU threads, {results['machine']['date']}.")
    write_results(args.results_dir, "pretraining", results, "\n".join(rows) + "\n")
    plot(results, ROOT / "docs" / "images" / "pretraining.png")
    print("\n".join(rows))


def plot(results: dict, path: Path) -> None:
    """Overall and shape test accuracy against total training time (pre-training included), one line per seed:
    equal compute is equal x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (name, runs), colour in zip(results["arms"].items(), colours):
        for number, run in enumerate(runs.values()):
            seconds_per_step = run["train_runtime_s"] / run["train_steps"]
            start = run.get("pretrain_runtime_s", 0.0)
            times = [start + point["step"] * seconds_per_step for point in run["curve"]]
            for axis, key in zip(axes, ("eval_accuracy", "eval_accuracy_shape")):
                axis.plot(times, [100 * point.get(key, 0.0) for point in run["curve"]], color=colour, alpha=0.8,
                          marker=".", label=name.replace("_", " ") if number == 0 else None)
    for axis, title in zip(axes, ("all questions", "shape questions")):
        axis.set_title(title)
        axis.set_xlabel("training time, pre-training included (s)")
    axes[0].set_ylabel("easy-VQA test accuracy (%)")
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--num_train_epochs", default="3", help="the scratch arm's epochs of the demo's recipe")
    parser.add_argument("--pretrain_share", type=float, default=0.5, help="share of the budget spent pre-training")
    parser.add_argument("--eval_steps", type=int, default=300, help="evaluate the fine-tuning every N steps")
    parser.add_argument("--ablations", action="store_true", help="also pre-train with each objective off in turn")
    parser.add_argument("--variant", nargs=2, action="append", default=[], metavar=("NAME", "OVERRIDES"),
                        help="also the pre-trained arm with these pre-training config overrides (name=value,...), "
                             "as the arm pretrained_NAME; repeatable")
    parser.add_argument("--output_dir", default=str(ROOT / "runs" / "benchmark-pretraining"))
    parser.add_argument("--results_dir", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--reuse_results", action="store_true",
                        help="keep the runs already in the results file and run only the missing ones")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    out = Path(args.output_dir)

    results = {"arms": {}}
    saved = os.path.join(args.results_dir, "pretraining.json")
    if args.reuse_results and os.path.isfile(saved):
        with open(saved, encoding="utf-8") as handle:
            results = json.load(handle)
    arms, variants = results["arms"], dict(args.variant)

    def arm(name: str, seed: int, run) -> dict:
        """Run one arm for one seed unless the results already hold it; record it and rewrite the results."""
        runs = arms.setdefault(name, {})
        if str(seed) not in runs:
            runs[str(seed)] = run()
            print(f"{name}, seed {seed}: accuracy {runs[str(seed)]['eval_accuracy']:.4f}", flush=True)
            _write(results, args)
        return runs[str(seed)]

    def pretrain_then_fine_tune(name: str, seed: int, extra_overrides: str | None = None) -> dict:
        plan = results["plan"]
        folder = out / f"seed-{seed}" / name
        pretrained = _pretrain(str(folder), plan["pretrain_steps"], seed, extra_overrides)
        result = _fine_tune(str(folder) + "-vqa", args, seed, plan["fine_tuning_steps"], str(folder))
        return {**result, "pretrain_steps": plan["pretrain_steps"],
                "pretrain_runtime_s": pretrained.train_metrics["train_runtime"],
                **_final_losses(pretrained.log_history)}

    for seed in args.seeds:
        scratch = arm("scratch", seed, lambda: _fine_tune(str(out / f"seed-{seed}" / "scratch"), args, seed))
        if "plan" not in results:  # fixed by the first seed, kept for all
            budget = scratch["train_runtime_s"]
            probe = _pretrain(str(out / "probe"), 15, seed).train_metrics
            steps = max(1, int(probe["train_steps"] / probe["train_runtime"] * args.pretrain_share * budget))
            results["plan"] = {"budget_s": budget, "pretrain_steps": steps,
                               "fine_tuning_steps": max(1, int(scratch["train_steps"] * (1 - args.pretrain_share)))}
        arm("pretrained", seed, lambda: pretrain_then_fine_tune("pretrained", seed))
        # The control: no pre-training, and only the fine-tuning steps the pre-trained arm had.
        arm("scratch_same_fine_tuning_steps", seed, lambda: _fine_tune(
            str(out / f"seed-{seed}" / "scratch-short"), args, seed, results["plan"]["fine_tuning_steps"]))
        for name, overrides in variants.items():
            arm(f"pretrained_{name}", seed, lambda: pretrain_then_fine_tune(f"pretrained-{name}", seed, overrides))
    if args.ablations:  # each objective off in turn, first seed, same steps as the full run
        for objective in OBJECTIVES:
            arm(f"without_{objective}", args.seeds[0],
                lambda: pretrain_then_fine_tune(f"without-{objective}", args.seeds[0], f"{objective}_weight=0"))


if __name__ == "__main__":
    main()
