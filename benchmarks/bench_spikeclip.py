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

    blocks = [np.array(layer["spikes"]).T for layer in raster]  # (neurons, T) per layer
    gap = np.full((blocks[0].shape[0], 1), np.nan)
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
