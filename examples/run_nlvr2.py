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

import sys
from dataclasses import dataclass, field

from modeling_ashnets import AshNetsForImagesAndTextClassification, get_task
from modeling_ashnets.training import TrainingResult, build_model_and_processor, run_training
from modeling_ashnets.training_args import AshNetsTrainingArguments, ModelArguments, parse_script_arguments


TASK = get_task("nlvr2")


@dataclass
class DataArguments:
    """Which image pairs and statements to train and evaluate on."""

    dataset: str = field(default="easy-vqa", metadata={"help": "easy-vqa, nlvr2, or a Hub dataset id / local copy"})
    train_file: list[str] | None = field(default=None, metadata={"help": "NLVR2 train.json"})
    eval_file: list[str] | None = field(default=None, metadata={"help": "NLVR2 dev.json (or test1.json)"})
    image_root: str | None = field(
        default=None, metadata={"help": "folder holding the train/, dev/ and test1/ image folders"})
    train_split: str = "train"
    eval_split: str = "validation"
    streaming: bool = field(default=False, metadata={"help": "stream the training set (needs --max_train_steps)"})


def parse_args(argv=None) -> tuple[ModelArguments, DataArguments, AshNetsTrainingArguments]:
    return parse_script_arguments((ModelArguments, DataArguments, AshNetsTrainingArguments), argv, __doc__)


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


def main(argv=None) -> TrainingResult:
    model_args, data_args, training_args = parse_args(argv)
    train, evaluation = load_data(data_args)
    model, processor = build_model_and_processor(model_args, AshNetsForImagesAndTextClassification, training_args.seed)
    return run_training(training_args, TASK.name, model, processor, train, evaluation,
                        script_arguments=(model_args, data_args))


if __name__ == "__main__":
    main(sys.argv[1:])
