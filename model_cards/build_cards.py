"""Regenerate the cards in this folder from what exists: `python model_cards/build_cards.py [--easy_vqa runs/easy-vqa]`.

* `ashnets-base/README.md`: the paper-sized architecture (`AshNetsConfig.from_preset("ashnets-base")`, VQA v2's
  3,129 answers). No weights of this size have been trained by the project, and the card says so.
* `ashnets-tiny-easy-vqa/README.md`: the checkpoint `make demo` writes (runs/easy-vqa), with its eval_results.json.
"""

import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def _energy_text(path: str) -> str | None:
    """The card's energy paragraph from examples/spike_statistics.py's energy.json (None when it was not run)."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        measured = json.load(handle)
    ours, twin = measured["ash-nets"], measured.get("ann-twin")
    rates = " / ".join(f"{100 * r:.1f} %" for r in ours["firing_rate_per_block"])
    text = (f"Estimated per sample at 45 nm (MAC 4.6 pJ, AC 0.9 pJ; `examples/spike_statistics.py`, 256 easy-VQA test "
            f"questions): whole model {ours['total_pj'] / 1e6:.2f} µJ, of which the spiking branch (SNN and summary "
            f"projection) {ours['visual_semantic_branch_pj'] / 1e6:.3f} µJ; firing rates {rates} per spiking block.")
    if twin:
        text += (f" The ANN twin (ReLU for LIF, T = 1, same recipe, {100 * twin['eval_accuracy']:.2f} % accuracy) spends "
                 f"{twin['visual_semantic_branch_pj'] / 1e6:.3f} µJ in that branch and {twin['total_pj'] / 1e6:.2f} µJ in "
                 "all: the CNN and the fusion transformer are analog in both models and dominate the total.")
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--easy_vqa", default=os.path.join(HERE, "..", "runs", "easy-vqa"))
    parser.add_argument("--namespace", default="ashnets")
    args = parser.parse_args()
    from modeling_ashnets import AshNetsConfig
    from modeling_ashnets.model_card import build_model_card

    with tempfile.TemporaryDirectory() as folder:
        config = AshNetsConfig.from_preset("ashnets-base", id2label={i: f"answer {i}" for i in range(3129)})
        config.architectures = ["AshNetsForQuestionAnswering"]
        config.save_pretrained(folder)
        card = build_model_card(folder, f"{args.namespace}/ashnets-base", dataset="vqa-v2")
        os.makedirs(os.path.join(HERE, "ashnets-base"), exist_ok=True)
        card.save(os.path.join(HERE, "ashnets-base", "README.md"))
    if not os.path.isfile(os.path.join(args.easy_vqa, "eval_results.json")):
        sys.exit(f"{args.easy_vqa} has no eval_results.json: run `make demo` first.")
    card = build_model_card(args.easy_vqa, f"{args.namespace}/ashnets-tiny-easy-vqa", dataset="easy-vqa",
                            energy=_energy_text(os.path.join(HERE, "..", "docs", "images", "energy.json")))
    os.makedirs(os.path.join(HERE, "ashnets-tiny-easy-vqa"), exist_ok=True)
    card.save(os.path.join(HERE, "ashnets-tiny-easy-vqa", "README.md"))
    with open(os.path.join(args.easy_vqa, "eval_results.json"), encoding="utf-8") as handle:
        print("easy-VQA accuracy on the card:", json.load(handle)["eval_accuracy"])


if __name__ == "__main__":
    main()
