#!/usr/bin/env python
"""Fine-tune ASH-Nets for visual entailment: does the image entail, leave open or contradict the sentence?

Runs with `python` and with `accelerate launch`. Data:

* `--dataset easy-vqa` (default, offline): entailment statements derived from easy-VQA images
  ("there is a red circle made of paper" is neutral when the image shows a red circle).
* `--dataset snli-ve`: the official jsonl files (`--train_file`, `--eval_file`) and the Flickr30K image folder
  (`--image_dir`).
* `--dataset <Hub id or local copy>`, e.g. `HuggingFaceM4/SNLI-VE`.

Writes the model, processor, `eval_results.json` (accuracy overall and per class) and `train_results.json`.
"""

import argparse
import sys

from modeling_ashnets import AshNetsForEntailment, get_task
from modeling_ashnets.training import add_training_arguments, build_model_and_processor, run_training


TASK = get_task("entailment")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default="easy-vqa", help="easy-vqa, snli-ve, or a Hub dataset id / local copy")
    data.add_argument("--train_file", nargs="+", help="snli_ve_train.jsonl")
    data.add_argument("--eval_file", nargs="+", help="snli_ve_dev.jsonl (or snli_ve_test.jsonl)")
    data.add_argument("--image_dir", help="the Flickr30K image folder")
    data.add_argument("--train_split", default="train")
    data.add_argument("--eval_split", default="validation")
    data.add_argument("--streaming", action="store_true", help="stream the training set (needs --max_train_steps)")
    add_training_arguments(parser)
    return parser.parse_args(argv)


def load_data(args):
    if args.dataset == "easy-vqa":
        load = TASK.loader("builtin")
        return load("train"), load("test")
    if args.dataset == "snli-ve":
        if not (args.train_file and args.eval_file and args.image_dir):
            raise SystemExit("--dataset snli-ve needs --train_file, --eval_file and --image_dir.")
        load = TASK.loader("files")
        return load(args.train_file, args.image_dir, streaming=args.streaming), load(args.eval_file, args.image_dir)
    load = TASK.loader("hub")
    return (load(args.dataset, TASK.name, args.train_split, streaming=args.streaming),
            load(args.dataset, TASK.name, args.eval_split))


def main(argv=None) -> dict:
    args = parse_args(argv)
    train, evaluation = load_data(args)
    model, processor = build_model_and_processor(args, AshNetsForEntailment)
    return run_training(args, TASK.name, model, processor, train, evaluation)


if __name__ == "__main__":
    main(sys.argv[1:])
