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


def measure(folder: str, args, test_images) -> dict:
    """Zero-shot accuracy (prompt ensemble), the image encoder's energy, and inference throughput of one model."""
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
              "parameters": sum(p.numel() for p in model.parameters()),
              "images_per_second": images_per_second(lambda px: model.get_image_features(pixel_values=px), pixels)}
    if model_class is SpikeClipModel:
        result["energy"] = energy_of(model, pixels[: args.energy_images])
    return result


def _row(name: str, model: dict, teacher: dict, seconds: float) -> str:
    energy = model.get("energy")
    ops = "-" if energy is None else f"{energy['macs'] / 1e6:.1f} M / {energy['sops'] / 1e6:.1f} M"
    joules = "-" if energy is None else f"{energy['energy_pj'] / 1e6:.1f}"
    rates = [] if energy is None else energy["firing_rates"]
    rate = f"{sum(rates) / len(rates):.3f}" if rates else "-"
    return (f"| {name} | {model['parameters'] / 1e6:.2f} M | {100 * model['accuracy']:.1f} | "
            f"{100 * model['accuracy'] / teacher['accuracy']:.1f} % | {100 * model['top5_accuracy']:.1f} | {ops} | "
            f"{joules} | {rate} | {model['images_per_second']:.0f} | {seconds / 60:.1f} min |")


def write_report(results: dict, results_dir: str) -> str:
    models, verdicts = results["models"], results["verdicts"]
    teacher = models["teacher"]
    rows = ["| model | parameters | zero-shot accuracy (%) | of the teacher's | top-5 (%) | image encoder MACs / SOPs "
            "per image | image encoder energy (uJ) | mean firing rate | images/s | training time |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            _row("teacher: ASH-Nets retrieval (ashnets-tiny)", teacher, teacher, results["seconds"]["teacher"]),
            _row("spiking student (spikeclip-tiny, T = 4)", models["student"], teacher,
                 sum(results["seconds"]["student"].values())),
            *([_row("its ANN twin (ReLU, T = 1)", models["twin"], teacher, sum(results["seconds"]["twin"].values()))]
              if "twin" in models else []),
            ""]
    for key, verdict in verdicts.items():
        outcome = "met" if verdict["met"] else "missed"
        rows.append(f"- {key}: {verdict['value']} (target {verdict['target']}): **{outcome}**")
    machine_, arguments = results["machine"], results["arguments"]
    teacher = (f"the teacher trained {arguments['teacher_epochs']:g} epochs in the run" if not arguments.get("teacher")
               else "an existing teacher (its recorded training time)")
    rows.append(f"\n24 colour-shape classes, 1,000 easy-VQA test images, 36 prompt templates per class; {teacher}; "
                f"student stages: text {arguments['text_epochs']:g}, image {arguments['image_epochs']:g}, dual "
                f"{arguments['dual_epochs']:g} epochs; {machine_['cpu_threads']} CPU threads, {machine_['date']}; "
                f"seed {arguments['seed']}.")
    table = "\n".join(rows) + "\n"
    write_results(results_dir, arguments.get("name", "spikeclip"), results, table)
    return table


def verdicts(results: dict) -> dict:
    models, seconds = results["models"], results["seconds"]
    accuracy_ratio = models["student"]["accuracy"] / models["teacher"]["accuracy"]
    recipe_minutes = (seconds["teacher"] + sum(seconds["student"].values())) / 60
    found = {
        "student accuracy / teacher accuracy": {"value": f"{accuracy_ratio:.3f}", "target": ">= 0.95",
                                                "met": accuracy_ratio >= TARGETS["accuracy_ratio"]},
        "recipe time (teacher + three student stages)": {"value": f"{recipe_minutes:.1f} min", "target": "<= 15 min",
                                                         "met": recipe_minutes <= TARGETS["recipe_minutes"]},
    }
    if "twin" in models:
        energy_ratio = models["student"]["energy"]["energy_pj"] / models["twin"]["energy"]["energy_pj"]
        found["student image-encoder energy / twin's"] = {"value": f"{energy_ratio:.3f}", "target": "<= 0.25",
                                                          "met": energy_ratio <= TARGETS["energy_ratio"]}
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="spikeclip", help="the results files' name (benchmarks/results/NAME.*)")
    parser.add_argument("--teacher", help="an existing retrieval checkpoint as the teacher (not trained in the run)")
    parser.add_argument("--no_twin", action="store_true", help="skip the ANN twin (and the energy verdict)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--teacher_epochs", type=float, default=4.0)
    parser.add_argument("--text_epochs", type=float, default=30.0)
    parser.add_argument("--image_epochs", type=float, default=2.0)
    parser.add_argument("--dual_epochs", type=float, default=3.0)
    parser.add_argument("--throughput_batch", type=int, default=64)
    parser.add_argument("--energy_images", type=int, default=64)
    parser.add_argument("--output_dir", default=str(ROOT / "runs" / "benchmark-spikeclip"))
    parser.add_argument("--results_dir", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--report_only", action="store_true", help="train nothing: rewrite the table and pictures")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    out = Path(args.output_dir)
    images_dir = ROOT / "docs" / "images"
    if args.report_only:
        results = json.loads((Path(args.results_dir) / f"{args.name}.json").read_text())
    else:
        from modeling_ashnets.data import load_easy_vqa_classification

        results = {"arguments": vars(args), "seconds": {}, "models": {}}
        teacher, results["seconds"]["teacher"] = train_teacher(out, args)
        arms = (("student", False),) if args.no_twin else (("student", False), ("twin", True))
        for name, twin in arms:
            run = distil(out, name, args, teacher, twin)
            results["seconds"][name], results[f"{name}_distillation_eval"] = run["seconds"], run["eval"]
        test_images = load_easy_vqa_classification("test")
        folders = {"teacher": Path(teacher), **{name: out / name / "dual" for name, _ in arms}}
        for name, folder in folders.items():
            results["models"][name] = measure(str(folder), args, test_images)
        from modeling_ashnets import SpikeClipModel
        from transformers import AutoProcessor

        student = SpikeClipModel.from_pretrained(str(out / "student" / "dual")).eval()
        processor = AutoProcessor.from_pretrained(str(out / "student" / "dual"), backend="pil")
        pixels = processor(images=[test_images[0]["image"]], return_tensors="pt")["pixel_values"]
        results["raster"] = spike_raster(student, pixels)
        results["machine"] = machine()
        results["verdicts"] = verdicts(results)
    print(write_report(results, args.results_dir))
    plot_raster(results["raster"], images_dir / f"{args.name}_raster.png")
    if "twin" in results["models"]:
        plot_energy(results, images_dir / f"{args.name}_energy.png")


if __name__ == "__main__":
    main()
