"""SpikeCLIP's recipe end to end on the built-in data: a teacher, the spiking student and its ANN twin, all offline.

easy-VQA images are classified into their 24 colour-shape classes ("red circle", ...) by prompts. The script

1. trains the teacher, an ASH-Nets retrieval model (`examples/run_retrieval.py`, contrastive + matching on easy-VQA
   captions);
2. distils the spiking student (`spikeclip-tiny`) from it in SpikeCLIP's three stages (`examples/
   run_spikeclip_distillation.py`: text distillation, image alignment, dual-loss fine-tuning), and the student's
   ANN twin (ReLU for LIF, T = 1) with the same stages and steps;
3. measures each model's zero-shot accuracy on the 1,000 test images, the image encoder's operations and energy by
   the package's convention (SOPs at 0.9 pJ, MACs at 4.6 pJ), inference throughput, and the wall-clock time of
   every stage on this machine's CPU threads;
4. writes benchmarks/results/spikeclip.{json,md} and two pictures in docs/images: the image encoder's spike raster
   and the energy per component against the twin.

Targets (issue 14): student accuracy >= 95 % of the teacher's; the student's image-encoder energy <= 1/4 of the
twin's; the whole recipe (teacher included) within 15 minutes on 2 CPU cores.

    python -m benchmarks.bench_spikeclip                  # the whole recipe, about 15 minutes
    python -m benchmarks.bench_spikeclip --report_only    # rewrite the table and pictures from the JSON
"""

import argparse
import json
import os
import time
from pathlib import Path

import torch

from benchmarks.results_files import machine, write_results
from modeling_ashnets.energy import estimate_spikeclip_energy


ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"accuracy_ratio": 0.95, "energy_ratio": 0.25, "recipe_minutes": 15.0}


def images_per_second(encode, pixel_values: torch.Tensor, repeats: int = 3) -> float:
    """Median throughput of `encode(pixel_values)` over `repeats` timed calls after one warm-up."""
    with torch.no_grad():
        encode(pixel_values)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            encode(pixel_values)
            times.append(time.perf_counter() - start)
    return pixel_values.shape[0] / sorted(times)[len(times) // 2]


def energy_of(model, pixel_values: torch.Tensor) -> dict:
    """The image encoder's per-image operations and energy, and every LIF layer's firing rate."""
    report = estimate_spikeclip_energy(model, {"pixel_values": pixel_values})
    return {"macs": report.macs.get("image_encoder", 0.0), "sops": report.sops.get("image_encoder", 0.0),
            "energy_pj": report.energy_pj.get("image_encoder", 0.0), "time_steps": report.time_steps,
            "firing_rates": report.firing_rate_per_block, "firing_rates_per_step": report.firing_rate_per_step}


@torch.no_grad()
def spike_raster(model, pixel_values: torch.Tensor, neurons_per_layer: int = 48) -> list[dict]:
    """For one image: the spikes (time steps x neurons) of the first `neurons_per_layer` neurons of the first token in
    every LIF layer of the image encoder, in forward order."""
    from spikingjelly.activation_based import neuron

    layers, handles = [], []
    for name, module in model.vision_model.named_modules():
        if isinstance(module, neuron.BaseNode):
            handles.append(module.register_forward_hook(
                lambda m, args, out, name=name: layers.append((name, out[:, 0]))))
    was_training = model.training
    model.eval()
    try:
        model.get_image_features(pixel_values=pixel_values[:1])
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    raster = []
    for name, spikes in layers:  # (T, ...) of image 0
        flat = spikes.reshape(spikes.shape[0], -1) if spikes.dim() == 2 else spikes.flatten(1)
        if spikes.dim() == 4 and name.startswith("tokenizer"):  # (T, C, H, W): one pixel's channels
            flat = spikes[:, :, 0, 0]
        elif spikes.dim() == 3:  # (T, N, C): token 0's channels
            flat = spikes[:, 0]
        raster.append({"layer": name, "spikes": flat[:, :neurons_per_layer].int().tolist()})
    return raster


def plot_raster(raster: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    blocks = [np.array(layer["spikes"], dtype=float).T for layer in raster]  # (neurons, T) per layer
    height = max(block.shape[0] for block in blocks)  # narrower layers are padded with blanks
    blocks = [np.pad(block, ((0, height - block.shape[0]), (0, 0)), constant_values=np.nan) for block in blocks]
    gap = np.full((height, 1), np.nan)
    image = np.concatenate([part for block in blocks for part in (block, gap)][:-1], axis=1)
    figure, axis = plt.subplots(figsize=(11, 3.2))
    axis.imshow(image, aspect="auto", cmap="Greys", interpolation="nearest", vmin=0, vmax=1)
    steps = blocks[0].shape[1]
    axis.set_xticks([i * (steps + 1) + (steps - 1) / 2 for i in range(len(blocks))])
    axis.set_xticklabels([layer["layer"].replace("blocks.", "b").replace("tokenizer.", "tok.") for layer in raster],
                         rotation=70, fontsize=6)
    axis.set_ylabel("neuron")
    axis.set_title(f"Spikes of the student's image encoder for one easy-VQA image (each layer: {steps} time steps)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def plot_energy(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    student, twin = results["models"]["student"]["energy"], results["models"]["twin"]["energy"]
    labels = ["MACs (4.6 pJ)", "SOPs (0.9 pJ)", "total"]
    values = {"spiking student": [student["macs"] * 4.6e-6, student["sops"] * 0.9e-6, student["energy_pj"] * 1e-6],
              "ANN twin": [twin["macs"] * 4.6e-6, twin["sops"] * 0.9e-6, twin["energy_pj"] * 1e-6]}
    figure, axis = plt.subplots(figsize=(6, 3.4))
    width = 0.38
    for offset, (name, numbers) in zip((-width / 2, width / 2), values.items()):
        bars = axis.bar([i + offset for i in range(len(labels))], numbers, width, label=name)
        axis.bar_label(bars, fmt="%.1f", fontsize=7)
    axis.set_xticks(range(len(labels)))
    axis.set_xticklabels(labels)
    axis.set_ylabel("image encoder energy per image (uJ)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


TEACHER_RECIPE = ["--preset", "ashnets-tiny", "--per_device_train_batch_size", "64", "--per_device_eval_batch_size",
                  "256", "--learning_rate", "1e-3", "--warmup_ratio", "0.05", "--image_cache_size", "5000",
                  "--logging_steps", "50", "--config_overrides",
                  "initializer_range=0.05,hidden_dropout_prob=0,attention_probs_dropout_prob=0"]
STUDENT_RECIPE = ["--per_device_train_batch_size", "64", "--learning_rate", "1e-3", "--warmup_ratio", "0.05",
                  "--logging_steps", "20"]


def _timed(run) -> tuple[object, float]:
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


def train_teacher(out: Path, args) -> tuple[str, float]:
    """The ASH-Nets retrieval teacher on easy-VQA captions: (its folder, its wall-clock seconds). With `--teacher`, an
    existing one and the training time its train_results.json records."""
    if args.teacher:
        recorded = json.loads((Path(args.teacher) / "train_results.json").read_text())
        return args.teacher, recorded.get("train_runtime", float("nan"))
    from examples import run_retrieval

    arguments = [*TEACHER_RECIPE, "--seed", str(args.seed), "--num_train_epochs", str(args.teacher_epochs),
                 "--output_dir", str(out / "teacher")]
    return str(out / "teacher"), _timed(lambda: run_retrieval.main(arguments))[1]


def distil(out: Path, name: str, args, teacher: str, twin: bool) -> dict:
    """SpikeCLIP's three stages for the student (or its ANN twin); seconds and the last stage's evaluation."""
    from examples import run_spikeclip_distillation

    common = [*STUDENT_RECIPE, "--seed", str(args.seed), "--teacher", teacher,
              "--teacher_cache_dir", str(out / "teacher-features")]
    previous, seconds = [], {}
    for stage, epochs in (("text", args.text_epochs), ("image", args.image_epochs), ("dual", args.dual_epochs)):
        folder = out / name / stage
        arguments = [*common, "--stage", stage, "--num_train_epochs", str(epochs), "--output_dir", str(folder),
                     *previous, *(["--ann_twin"] if twin and stage == "text" else [])]
        seconds[stage] = _timed(lambda: run_spikeclip_distillation.main(arguments))[1]
        previous = ["--model_name_or_path", str(folder)]
    evaluation = json.loads((out / name / "dual" / "eval_results.json").read_text())
    return {"folder": str(out / name / "dual"), "seconds": seconds, "eval": evaluation}


def blank_image_accuracy(model, processor, labels: list[int]) -> float:
    """The control: every test image replaced by a blank white one. A model that reads the image falls to the share
    of the one class it then predicts."""
    from PIL import Image

    from modeling_ashnets.zero_shot import classify_images, get_prompt_set

    prompts = get_prompt_set("easy-vqa")
    names = list(prompts.class_names)
    best = classify_images(model, processor, [Image.new("RGB", (64, 64), "white")], names, prompts.templates, 1)
    predicted = names.index(best[0][0]["label"])
    return sum(label == predicted for label in labels) / len(labels)


def measure(folder: str, args, test_images) -> dict:
    """Zero-shot accuracy (prompt ensemble) and the blank-image control, the image encoder's energy, and inference
    throughput of one model."""
    from transformers import AutoProcessor

    from modeling_ashnets import AshNetsModel, SpikeClipModel
    from modeling_ashnets.zero_shot import evaluate_zero_shot, get_prompt_set

    config = json.loads((Path(folder) / "config.json").read_text())
    model_class = SpikeClipModel if config["model_type"] == "spikeclip" else AshNetsModel
    model = model_class.from_pretrained(folder).eval()
    processor = AutoProcessor.from_pretrained(folder, backend="pil")
    metrics = evaluate_zero_shot(model, processor, test_images, get_prompt_set("easy-vqa"))
    pixels = processor(images=list(test_images["image"][: args.throughput_batch]), return_tensors="pt")["pixel_values"]
    result = {"accuracy": metrics["accuracy"], "top5_accuracy": metrics["top5_accuracy"],
              "blank_image_accuracy": blank_image_accuracy(model, processor, list(test_images["label"])),
              "parameters": sum(p.numel() for p in model.parameters()),
              "images_per_second": images_per_second(lambda px: model.get_image_features(pixel_values=px), pixels)}
    if model_class is SpikeClipModel:
        result["energy"] = energy_of(model, pixels[: args.energy_images])
    return result


def run_seed(args, seed: int, out: Path) -> dict:
    """The whole recipe and every measurement for one seed."""
    from transformers import AutoProcessor

    from modeling_ashnets import SpikeClipModel
    from modeling_ashnets.data import load_easy_vqa_classification

    args.seed = seed
    run = {"seed": seed, "seconds": {}, "models": {}}
    teacher, run["seconds"]["teacher"] = train_teacher(out, args)
    arms = (("student", False),) if args.no_twin else (("student", False), ("twin", True))
    for name, twin in arms:
        distilled = distil(out, name, args, teacher, twin)
        run["seconds"][name], run[f"{name}_distillation_eval"] = distilled["seconds"], distilled["eval"]
    test_images = load_easy_vqa_classification("test")
    folders = {"teacher": Path(teacher), **{name: out / name / "dual" for name, _ in arms}}
    for name, folder in folders.items():
        run["models"][name] = measure(str(folder), args, test_images)
    student = SpikeClipModel.from_pretrained(str(out / "student" / "dual")).eval()
    processor = AutoProcessor.from_pretrained(str(out / "student" / "dual"), backend="pil")
    pixels = processor(images=[test_images[0]["image"]], return_tensors="pt")["pixel_values"]
    run["raster"] = spike_raster(student, pixels)
    labels = list(test_images["label"])
    run["majority_class_share"] = max(labels.count(label) for label in set(labels)) / len(labels)
    return run


def _ratios(run: dict) -> dict:
    """One seed's numbers behind the targets."""
    models, seconds = run["models"], run["seconds"]
    ratios = {"accuracy_ratio": models["student"]["accuracy"] / models["teacher"]["accuracy"],
              "recipe_minutes": (seconds["teacher"] + sum(seconds["student"].values())) / 60}
    if "twin" in models:
        ratios["energy_ratio"] = models["student"]["energy"]["energy_pj"] / models["twin"]["energy"]["energy_pj"]
    return ratios


def verdicts(runs: list[dict]) -> dict:
    """Each target on the mean over seeds, with the worst seed beside it."""
    per_seed = [_ratios(run) for run in runs]
    found = {}
    for key, label, target, worst in (
        ("accuracy_ratio", "student accuracy / teacher accuracy", ">= 0.95", min),
        ("energy_ratio", "student image-encoder energy / twin's", "<= 0.25", max),
        ("recipe_minutes", "recipe time in minutes (teacher + three student stages)", "<= 15", max),
    ):
        values = [ratios[key] for ratios in per_seed if key in ratios]
        if not values:
            continue
        mean = sum(values) / len(values)
        met = mean >= TARGETS[key] if key == "accuracy_ratio" else mean <= TARGETS[key]
        found[label] = {"mean": mean, "worst": worst(values), "per_seed": values, "target": target, "met": met}
    return found


def _mean_worst(values: list[float], worst=min, scale: float = 100.0, digits: int = 1) -> str:
    mean = sum(values) / len(values)
    return f"{scale * mean:.{digits}f} ({scale * worst(values):.{digits}f})"


def _model_row(label: str, name: str, runs: list[dict], training: str) -> str:
    models = [run["models"][name] for run in runs]
    ratios = [model["accuracy"] / run["models"]["teacher"]["accuracy"] for model, run in zip(models, runs)]
    seconds = [sum(run["seconds"][name].values()) if isinstance(run["seconds"][name], dict) else run["seconds"][name]
               for run in runs]
    energies = [model.get("energy") for model in models]
    if energies[0] is None:
        ops = joules = rate = "-"
    else:
        ops = (f"{sum(e['macs'] for e in energies) / len(energies) / 1e6:.1f} M / "
               f"{sum(e['sops'] for e in energies) / len(energies) / 1e6:.1f} M")
        joules = f"{sum(e['energy_pj'] for e in energies) / len(energies) / 1e6:.1f}"
        rates = [sum(e["firing_rates"]) / len(e["firing_rates"]) for e in energies if e["firing_rates"]]
        rate = f"{sum(rates) / len(rates):.3f}" if rates else "-"
    return (f"| {label} | {models[0]['parameters'] / 1e6:.2f} M | {_mean_worst([m['accuracy'] for m in models])} | "
            f"{_mean_worst(ratios)} % | {_mean_worst([m['top5_accuracy'] for m in models])} | "
            f"{_mean_worst([m.get('blank_image_accuracy', float('nan')) for m in models], max)} | {ops} | {joules} | "
            f"{rate} | {sum(m['images_per_second'] for m in models) / len(models):.0f} | "
            f"{sum(seconds) / len(seconds) / 60:.1f} min{training} |")


def write_report(results: dict, results_dir: str, name: str) -> str:
    runs = [results["runs"][seed] for seed in sorted(results["runs"], key=int)]
    arguments = results["arguments"]
    rows = ["| model | parameters | zero-shot accuracy (%) | of the teacher's | top-5 (%) | blank-image control (%) | "
            "image encoder MACs / SOPs per image | image encoder energy (uJ) | mean firing rate | images/s | "
            "training time |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            _model_row("teacher: ASH-Nets retrieval (ashnets-tiny)", "teacher", runs,
                       "" if not arguments.get("teacher") else " (recorded)"),
            _model_row("spiking student (spikeclip-tiny, T = 4)", "student", runs, ""),
            *([_model_row("its ANN twin (ReLU, T = 1)", "twin", runs, "")] if "twin" in runs[0]["models"] else []),
            ""]
    for label, verdict in results["verdicts"].items():
        outcome = "met" if verdict["met"] else "missed"
        per_seed = ", ".join(f"{value:.3f}" for value in verdict["per_seed"])
        rows.append(f"- {label}: mean {verdict['mean']:.3f}, worst {verdict['worst']:.3f} (per seed {per_seed}; "
                    f"target {verdict['target']}): **{outcome}**")
    machine_ = results["machine"]
    teacher = (f"the teacher trained {arguments['teacher_epochs']:g} epochs in the run" if not arguments.get("teacher")
               else "an existing teacher (its recorded training time)")
    rows.append(f"\nMean over {len(runs)} seed(s) (worst in brackets; for the blank-image control, the highest). "
                f"24 colour-shape classes, 1,000 easy-VQA test images, 36 prompt templates per class; chance is "
                f"4.2 % and the most frequent class is {100 * runs[0]['majority_class_share']:.1f} % of the test "
                f"images (the text-only prior: a model that cannot see predicts one class). {teacher.capitalize()}; student "
                f"stages: "
                f"text {arguments['text_epochs']:g}, image {arguments['image_epochs']:g}, dual "
                f"{arguments['dual_epochs']:g} epochs; {machine_['cpu_threads']} CPU threads, {machine_['date']}.")
    table = "\n".join(rows) + "\n"
    write_results(results_dir, name, results, table)
    return table


def _stored_runs(path: Path) -> dict:
    """The seeds already measured (a single-seed file of the first version counts as its seed's run)."""
    if not path.exists():
        return {}
    stored = json.loads(path.read_text())
    if "runs" in stored:
        return stored["runs"]
    run = {key: stored[key] for key in ("seconds", "models", "raster") if key in stored}
    run.update(seed=stored["arguments"]["seed"], majority_class_share=stored.get("majority_class_share", 0.0))
    return {str(stored["arguments"]["seed"]): run}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="spikeclip", help="the results files' name (benchmarks/results/NAME.*)")
    parser.add_argument("--teacher", help="an existing retrieval checkpoint as the teacher (not trained in the run)")
    parser.add_argument("--no_twin", action="store_true", help="skip the ANN twin (and the energy verdict)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--teacher_epochs", type=float, default=10.0)
    parser.add_argument("--text_epochs", type=float, default=30.0)
    parser.add_argument("--image_epochs", type=float, default=2.0)
    parser.add_argument("--dual_epochs", type=float, default=3.0)
    parser.add_argument("--throughput_batch", type=int, default=64)
    parser.add_argument("--energy_images", type=int, default=64)
    parser.add_argument("--output_dir", default=str(ROOT / "runs" / "benchmark-spikeclip"))
    parser.add_argument("--results_dir", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--rerun", action="store_true", help="train the seeds the results already hold again")
    parser.add_argument("--report_only", action="store_true", help="train nothing: rewrite the table and pictures")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    path = Path(args.results_dir) / f"{args.name}.json"
    runs = {} if args.rerun else _stored_runs(path)
    arguments = {key: value for key, value in vars(args).items() if key not in ("seeds", "rerun", "report_only")}
    for key in ("output_dir", "results_dir", "teacher"):  # recorded relative to the repository: no machine's paths
        if arguments[key] and os.path.isabs(arguments[key]):
            arguments[key] = os.path.relpath(arguments[key], ROOT)
    if args.report_only:  # the arguments the runs were made with
        arguments = json.loads(path.read_text())["arguments"]
    results = {"arguments": arguments, "runs": runs}
    for seed in ([] if args.report_only else args.seeds):
        if str(seed) not in runs:
            runs[str(seed)] = run_seed(args, seed, Path(args.output_dir) / f"seed-{seed}")
            results.update(machine=machine(), verdicts=verdicts(list(runs.values())))
            write_report(results, args.results_dir, args.name)  # after every seed: a killed run keeps its seeds
    results.update(machine=machine(), verdicts=verdicts([runs[seed] for seed in sorted(runs, key=int)]))
    print(write_report(results, args.results_dir, args.name))
    first = runs[min(runs, key=int)]
    images_dir = ROOT / "docs" / "images"
    plot_raster(first["raster"], images_dir / f"{args.name}_raster.png")
    if "twin" in first["models"]:
        plot_energy(first, images_dir / f"{args.name}_energy.png")


if __name__ == "__main__":
    main()
