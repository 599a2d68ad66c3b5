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
    card = build_model_card(args.easy_vqa, f"{args.namespace}/ashnets-tiny-easy-vqa", dataset="easy-vqa")
    os.makedirs(os.path.join(HERE, "ashnets-tiny-easy-vqa"), exist_ok=True)
    card.save(os.path.join(HERE, "ashnets-tiny-easy-vqa", "README.md"))
    with open(os.path.join(args.easy_vqa, "eval_results.json"), encoding="utf-8") as handle:
        print("easy-VQA accuracy on the card:", json.load(handle)["eval_accuracy"])


if __name__ == "__main__":
    main()
