#!/usr/bin/env python
"""Export the spiking parts of checkpoints (or, by default, of each family's tiny preset) as NIR graphs and draw them:
one row per graph, one box per node (synapse, LIF neuron), with its size.

    python examples/draw_nir_graphs.py --output_dir docs/images                  # the tiny presets' graphs
    python examples/draw_nir_graphs.py --models runs/easy-vqa runs/spikeclip --output_dir runs/nir

Writes `<name>.nir` for each model (several files for SpikeCLIP, one per part) and `nir_graphs.png`. The layers and
sizes come from the files as written, read back with `nir.read`, so the picture shows what a neuromorphic tool sees.
"""

import argparse
import os

import nir

from modeling_ashnets.nir_export import describe_graph, export_nir


PRESETS = ("ashnets-tiny", "gshn-tiny", "spikeclip-tiny")
COLOURS = {"Input": "#d9d9d9", "Output": "#d9d9d9", "LIF": "#f4a259", "Affine": "#5b8fb9", "Linear": "#5b8fb9",
           "Conv2d": "#7fb069"}


def preset_model(name: str):
    from modeling_ashnets import AshNetsConfig, AshNetsModel, GshnConfig, GshnModel, SpikeClipConfig, SpikeClipModel

    family = {"ashnets": (AshNetsConfig, AshNetsModel), "gshn": (GshnConfig, GshnModel),
              "spikeclip": (SpikeClipConfig, SpikeClipModel)}[name.split("-")[0]]
    return family[1](family[0].from_preset(name)).eval()


def draw(rows: list[tuple[str, list[str]]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = max(len(nodes) for _, nodes in rows)
    figure, axes = plt.subplots(figsize=(2.1 * width + 2.6, 0.72 * len(rows) + 0.5))
    for row, (title, nodes) in enumerate(rows):
        y = len(rows) - 1 - row
        axes.text(-0.15, y, title, ha="right", va="center", fontsize=8.5, fontweight="bold")
        for column, line in enumerate(nodes):
            name, description = line.split(": ", 1)
            kind, _, size = description.partition(" ")
            axes.add_patch(plt.Rectangle((column * 1.25, y - 0.3), 1.0, 0.6, color=COLOURS.get(kind, "#eeeeee")))
            axes.text(column * 1.25 + 0.5, y + 0.1, kind, ha="center", va="center", fontsize=8)
            axes.text(column * 1.25 + 0.5, y - 0.14, size.replace(" channels, kernel ", " ch, k"), ha="center",
                      va="center", fontsize=6.5)
            if column:
                axes.annotate("", xy=(column * 1.25, y), xytext=(column * 1.25 - 0.25, y),
                              arrowprops={"arrowstyle": "->", "lw": 0.8})
    axes.set_xlim(-2.6, width * 1.25)
    axes.set_ylim(-0.6, len(rows) - 0.4)
    axes.axis("off")
    axes.set_title("Exported NIR graphs: synapses (blue: Affine, green: Conv2d; norms folded in), LIF neurons "
                   "(orange); one graph per row", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=130)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", help="checkpoint folders (default: each family's tiny preset, "
                                                    "randomly initialised)")
    parser.add_argument("--output_dir", default="runs/nir")
    args = parser.parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    rows = []
    for source in args.models or PRESETS:
        if args.models:
            from modeling_ashnets.hub_export import load_model

            model = load_model(source).eval()
        else:
            model = preset_model(source)
        name = os.path.basename(os.path.normpath(source))
        for part in export_nir(model, os.path.join(args.output_dir, f"{name}.nir")):
            rows.append((f"{name}: {part['part']}", describe_graph(nir.read(part["file"]))))
    draw(rows, os.path.join(args.output_dir, "nir_graphs.png"))
    for title, nodes in rows:
        print(f"{title}: {' -> '.join(nodes)}")


if __name__ == "__main__":
    main()
