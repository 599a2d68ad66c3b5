#!/usr/bin/env python
"""Fine-tune ASH-Nets for visual entailment: does the image entail, leave open or contradict the sentence?

Runs with `python` and with `accelerate launch`. Data:

* `--dataset easy-vqa` (default, offline): entailment statements derived from easy-VQA images
  ("there is a red circle made of paper" is neutral when the image shows a red circle).
* `--dataset shape-scenes` (offline): statements about the attributes, counts and relations of scenes of 2-5 shapes
  ("the red circle is above the blue square").
* `--dataset snli-ve`: the official jsonl files (`--train_file`, `--eval_file`) and the Flickr30K image folder
  (`--image_dir`).
* `--dataset <Hub id or local copy>`, e.g. `HuggingFaceM4/SNLI-VE`.

Writes the model, processor, `eval_results.json` (accuracy overall and per class) and `train_results.json`.
"""

import sys
from dataclasses import dataclass, field

from modeling_ashnets import AshNetsForEntailment, get_task
from modeling_ashnets.training import TrainingResult, build_model_and_processor, run_training
from modeling_ashnets.training_args import AshNetsTrainingArguments, ModelArguments, parse_script_arguments


TASK = get_task("entailment")


@dataclass
class DataArguments:
    """Which image-sentence pairs to train and evaluate on."""

    dataset: str = field(
        default="easy-vqa", metadata={"help": "easy-vqa, shape-scenes, snli-ve, or a Hub dataset id / local copy"})
    train_file: list[str] | None = field(default=None, metadata={"help": "snli_ve_train.jsonl"})
    eval_file: list[str] | None = field(default=None, metadata={"help": "snli_ve_dev.jsonl (or snli_ve_test.jsonl)"})
    image_dir: str | None = field(default=None, metadata={"help": "the Flickr30K image folder"})
    train_split: str = "train"
    eval_split: str = "validation"
    streaming: bool = field(default=False, metadata={"help": "stream the training set (needs --max_train_steps)"})


def parse_args(argv=None) -> tuple[ModelArguments, DataArguments, AshNetsTrainingArguments]:
    return parse_script_arguments((ModelArguments, DataArguments, AshNetsTrainingArguments), argv, __doc__)


def load_data(args):
    if args.dataset == "easy-vqa":
        load = TASK.loader("builtin")
        return load("train"), load("test")
    if args.dataset == "shape-scenes":
        load = TASK.loader("shape-scenes")
        return load("train"), load("test")
    if args.dataset == "snli-ve":
        if not (args.train_file and args.eval_file and args.image_dir):
            raise SystemExit("--dataset snli-ve needs --train_file, --eval_file and --image_dir.")
        load = TASK.loader("files")
        return load(args.train_file, args.image_dir, streaming=args.streaming), load(args.eval_file, args.image_dir)
    load = TASK.loader("hub")
    return (load(args.dataset, TASK.name, args.train_split, streaming=args.streaming),
            load(args.dataset, TASK.name, args.eval_split))


def main(argv=None) -> TrainingResult:
    model_args, data_args, training_args = parse_args(argv)
    train, evaluation = load_data(data_args)
    model, processor = build_model_and_processor(model_args, AshNetsForEntailment, training_args.seed)
    return run_training(training_args, TASK.name, model, processor, train, evaluation,
                        script_arguments=(model_args, data_args))


if __name__ == "__main__":
    main(sys.argv[1:])
