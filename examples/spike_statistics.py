#!/usr/bin/env python
"""Spikes and energy of a checkpoint on easy-VQA test questions, against its ANN twin.

    python examples/spike_statistics.py --model runs/easy-vqa --twin runs/easy-vqa-ann-twin --output_dir docs/images

Writes `energy.json` (per-sample operations and energy by component, firing rates, both models' accuracy from their
eval_results.json) and three pictures: `spike_raster.png` (every spike of the last spiking block for one image),
`firing_rate_map.png` (the image next to each visual token's firing rate) and `energy_breakdown.png` (pJ per
component, ASH-Nets against the ANN twin). The twin is the same model with ReLU for LIF and T = 1
(`--config_overrides snn_neuron=relu --snn_time_steps 1` in the training scripts).
"""

import json
import os
import sys
from dataclasses import dataclass, field

import torch

from modeling_ashnets.training_args import parse_script_arguments


@dataclass
class SpikeStatisticsArguments:
    """The checkpoints to compare and what to average over."""

    model: str = field(
        default="runs/easy-vqa", metadata={"help": "an ASH-Nets checkpoint (make demo writes runs/easy-vqa)"})
    twin: str | None = field(default=None, metadata={"help": "its ANN twin's checkpoint, for the comparison (optional)"})
    num_samples: int = field(default=256, metadata={"help": "test questions the averages are taken over"})
    image_index: int = field(default=0, metadata={"help": "test question whose image the pictures show"})
    output_dir: str = "runs/spike-statistics"


def parse_args(argv=None) -> SpikeStatisticsArguments:
    (args,) = parse_script_arguments((SpikeStatisticsArguments,), argv, __doc__)
    return args


def _accuracy(folder: str) -> float | None:
    path = os.path.join(folder, "eval_results.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle).get("eval_accuracy")


def main(argv=None) -> dict:
    args = parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from modeling_ashnets.data.easy_vqa import load_easy_vqa
    from modeling_ashnets.energy import estimate_energy
    from modeling_ashnets.hub_export import load_checkpoint

    test = load_easy_vqa("test")
    averaged, shown = test.select(range(args.num_samples)), test[args.image_index]
    os.makedirs(args.output_dir, exist_ok=True)
    results = {}
    for name, folder in (("ash-nets", args.model), ("ann-twin", args.twin)):
        if folder is None:
            continue
        model, processor, _ = load_checkpoint(folder)
        if not model.config.use_snn:
            raise SystemExit(f"{folder} has no spiking branch (use_snn=False): there are no spikes to count.")
        model.eval()
        batch = processor(images=list(averaged["image"]), text=list(averaged["question"]), return_tensors="pt")
        report = estimate_energy(model, dict(batch))
        results[name] = {**report.to_dict(), "eval_accuracy": _accuracy(folder), "checkpoint": folder}
        if name == "ash-nets":
            one = processor(images=[shown["image"]], text=[shown["question"]], return_tensors="pt")
            with torch.no_grad():
                spikes = model.ashnets(**one, output_spikes=True).snn_spikes
    if "ann-twin" in results:
        ours, twin = results["ash-nets"], results["ann-twin"]
        results["ratios_ash_nets_over_twin"] = {
            "visual_semantic_branch_energy": ours["visual_semantic_branch_pj"] / twin["visual_semantic_branch_pj"],
            "total_energy": ours["total_pj"] / twin["total_pj"],
        }
    with open(os.path.join(args.output_dir, "energy.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
        handle.write("\n")

    last = spikes[-1][:, 0]  # (T, N, d) of the last block, first (only) image
    time_steps, tokens, width = last.shape
    figure, axis = plt.subplots(figsize=(7, 4))
    t, neuron = torch.nonzero(last.reshape(time_steps, tokens * width), as_tuple=True)
    axis.scatter(t.numpy(), neuron.numpy(), marker="|", s=40, color="black")
    for boundary in range(1, tokens):
        axis.axhline(boundary * width - 0.5, color="tab:blue", linewidth=0.5)
    axis.set(xlabel="time step", ylabel="neuron (visual token x channel)", xticks=range(time_steps),
             title=f"Spikes of the last spiking block, one image ({int(last.sum())} spikes, "
                   f"rate {float(last.float().mean()):.3f})")
    figure.tight_layout()
    figure.savefig(os.path.join(args.output_dir, "spike_raster.png"), dpi=120)
    plt.close(figure)

    side = int(tokens ** 0.5)
    rates = torch.stack([s[:, 0].float().mean(dim=(0, 2)) for s in spikes]).reshape(len(spikes), side, side)
    figure, axes = plt.subplots(1, len(spikes) + 1, figsize=(3.2 * (len(spikes) + 1), 3.2))
    axes[0].imshow(Image.open(shown["image"]).convert("RGB"))
    axes[0].set(title="image", xticks=[], yticks=[])
    for block, axis in enumerate(axes[1:]):
        shown = axis.imshow(rates[block].numpy(), cmap="magma", vmin=0, vmax=float(rates.max()))
        axis.set(title=f"block {block}: firing rate per token", xticks=[], yticks=[])
        figure.colorbar(shown, ax=axis, fraction=0.046)
    figure.tight_layout()
    figure.savefig(os.path.join(args.output_dir, "firing_rate_map.png"), dpi=120)
    plt.close(figure)

    components = ["cnn", "snn", "summary_ratio", "fusion", "head"]
    figure, axis = plt.subplots(figsize=(7, 3.6))
    names = [name for name in ("ash-nets", "ann-twin") if name in results]
    for offset, name in enumerate(names):
        values = [results[name]["energy_pj"].get(c, 0.0) / 1e6 for c in components]
        axis.bar([i + 0.4 * offset for i in range(len(components))], values, width=0.4, label=name)
    axis.set_xticks([i + 0.2 * (len(names) - 1) for i in range(len(components))], components)
    axis.set(yscale="log", ylabel="energy per sample (µJ, log scale)",
             title="Estimated energy at 45 nm (MAC 4.6 pJ, AC 0.9 pJ)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(os.path.join(args.output_dir, "energy_breakdown.png"), dpi=120)
    plt.close(figure)
    print(json.dumps({name: {"energy_pj": r["energy_pj"], "firing_rate_per_block": r["firing_rate_per_block"],
                             "eval_accuracy": r["eval_accuracy"]} for name, r in results.items() if "energy_pj" in r},
                     indent=2))
    if "ratios_ash_nets_over_twin" in results:
        print("ASH-Nets / ANN twin:", json.dumps(results["ratios_ash_nets_over_twin"]))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
