#!/usr/bin/env python
"""Fine-tune ASH-Nets for NLVR2: is one statement true of a pair of images?

Runs with `python` and with `accelerate launch`. Data:

* `--dataset easy-vqa` (default, offline): pairs of easy-VQA images with statements such as
  "exactly one image contains a red shape", half true and half false.
* `--dataset nlvr2`: the official files (`--train_file train.json`, `--eval_file dev.json`) and the image root
  (`--image_root`, holding `train/<directory>/`, `dev/`, `test1/`).
* `--dataset <Hub id or local copy>`, e.g. `HuggingFaceM4/NLVR2`.

Writes the model, processor, `eval_results.json` (accuracy) and `train_results.json`.
"""

import argparse
import sys

from modeling_ashnets import AshNetsForImagesAndTextClassification, get_task
from modeling_ashnets.training import add_training_arguments, build_model_and_processor, run_training


TASK = get_task("nlvr2")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default="easy-vqa", help="easy-vqa, nlvr2, or a Hub dataset id / local copy")
    data.add_argument("--train_file", nargs="+", help="NLVR2 train.json")
    data.add_argument("--eval_file", nargs="+", help="NLVR2 dev.json (or test1.json)")
    data.add_argument("--image_root", help="folder holding the train/, dev/ and test1/ image folders")
    data.add_argument("--train_split", default="train")
    data.add_argument("--eval_split", default="validation")
    data.add_argument("--streaming", action="store_true", help="stream the training set (needs --max_train_steps)")
    add_training_arguments(parser)
    return parser.parse_args(argv)


def load_data(args):
    if args.dataset == "easy-vqa":
        load = TASK.loader("builtin")
        return load("train"), load("test")
    if args.dataset == "nlvr2":
        if not (args.train_file and args.eval_file and args.image_root):
            raise SystemExit("--dataset nlvr2 needs --train_file, --eval_file and --image_root.")
        load = TASK.loader("files")
        return load(args.train_file, args.image_root, streaming=args.streaming), load(args.eval_file, args.image_root)
    load = TASK.loader("hub")
    return (load(args.dataset, TASK.name, args.train_split, streaming=args.streaming),
            load(args.dataset, TASK.name, args.eval_split))


def main(argv=None) -> dict:
    args = parse_args(argv)
    train, evaluation = load_data(args)
    model, processor = build_model_and_processor(args, AshNetsForImagesAndTextClassification)
    return run_training(args, TASK.name, model, processor, train, evaluation)


if __name__ == "__main__":
    main(sys.argv[1:])
