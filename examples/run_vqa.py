#!/usr/bin/env python
"""Fine-tune ASH-Nets for visual question answering (VQA as multi-label classification over an answer vocabulary).

Runs with `python examples/run_vqa.py ...` and with `accelerate launch examples/run_vqa.py ...`. Data:

* `--dataset easy-vqa` (default, offline): the easy-VQA PyPI package, 13 answers.
* `--dataset shape-scenes` (offline): 2-5 shapes per image, questions about attributes, counts and relations
  (`modeling_ashnets.data.shape_scenes`, drawn into a cache folder on first use), 17 answers.
* `--dataset vqa-v2`: the official files, `--train_questions/--train_annotations/--train_images` and the same for
  `--eval_*`; the answer vocabulary is the `--num_answers` (3,129) most frequent training answers.
* `--dataset <Hub id or local copy>`, e.g. `HuggingFaceM4/VQAv2` or `lmms-lab/VQAv2`, with `--answer_vocabulary`
  (a JSON list of answers).

Writes the fine-tuned model and processor, `eval_results.json` (VQA accuracy overall and per answer type) and
`train_results.json` to `--output_dir`.
"""

import json
import sys
from dataclasses import dataclass, field

from modeling_ashnets import AshNetsForQuestionAnswering, get_task
from modeling_ashnets.training import TrainingResult, build_model_and_processor, run_training
from modeling_ashnets.training_args import AshNetsTrainingArguments, ModelArguments, parse_script_arguments


TASK = get_task("vqa")


@dataclass
class DataArguments:
    """Which questions to train and evaluate on."""

    dataset: str = field(
        default="easy-vqa", metadata={"help": "easy-vqa, shape-scenes, vqa-v2, or a Hub dataset id / local copy"})
    train_questions: list[str] | None = field(default=None, metadata={"help": "VQA v2 questions JSON file(s) (train)"})
    train_annotations: list[str] | None = field(
        default=None, metadata={"help": "VQA v2 annotations JSON file(s) (train)"})
    train_images: list[str] | None = field(default=None, metadata={"help": "COCO image folder(s) (train)"})
    eval_questions: list[str] | None = field(default=None, metadata={"help": "VQA v2 questions JSON file(s) (eval)"})
    eval_annotations: list[str] | None = field(
        default=None, metadata={"help": "VQA v2 annotations JSON file(s) (eval)"})
    eval_images: list[str] | None = field(default=None, metadata={"help": "COCO image folder(s) (eval)"})
    num_answers: int = field(default=3129, metadata={"help": "size of the VQA v2 answer vocabulary"})
    answer_vocabulary: str | None = field(
        default=None, metadata={"help": "JSON file with the list of answers (Hub data sets)"})
    train_split: str = "train"
    eval_split: str = "validation"
    streaming: bool = field(default=False, metadata={"help": "stream the training set (needs --max_train_steps)"})


def parse_args(argv=None) -> tuple[ModelArguments, DataArguments, AshNetsTrainingArguments]:
    return parse_script_arguments((ModelArguments, DataArguments, AshNetsTrainingArguments), argv, __doc__)


def load_data(args):
    """(train set, eval set, answer vocabulary) in the VQA v2 loader's columns."""
    if args.dataset == "easy-vqa":
        from modeling_ashnets.data.easy_vqa import easy_vqa_answers

        load = TASK.loader("builtin")
        return load("train"), load("test"), easy_vqa_answers()
    if args.dataset == "shape-scenes":
        from modeling_ashnets.data.shape_scenes import shape_scenes_answers

        load = TASK.loader("shape-scenes")
        return load("train"), load("test"), shape_scenes_answers()
    if args.dataset == "vqa-v2":
        from modeling_ashnets.data.vqa_v2 import build_answer_vocabulary

        needed = ("train_questions", "train_annotations", "train_images", "eval_questions", "eval_annotations", "eval_images")
        missing = [f"--{name}" for name in needed if not getattr(args, name)]
        if missing:
            raise SystemExit(f"--dataset vqa-v2 needs {', '.join(missing)}.")
        answers = build_answer_vocabulary(args.train_annotations, top_k=args.num_answers)
        load = TASK.loader("files")
        train = load(args.train_questions, args.train_images, args.train_annotations, answers, streaming=args.streaming)
        evaluation = load(args.eval_questions, args.eval_images, args.eval_annotations, answers)
        return train, evaluation, answers
    if not args.answer_vocabulary:
        raise SystemExit("A Hub VQA data set needs --answer_vocabulary (a JSON list of answers).")
    with open(args.answer_vocabulary, encoding="utf-8") as handle:
        answers = json.load(handle)
    load = TASK.loader("hub")
    train = load(args.dataset, TASK.name, args.train_split, streaming=args.streaming, answer_vocabulary=answers)
    evaluation = load(args.dataset, TASK.name, args.eval_split, answer_vocabulary=answers)
    return train, evaluation, answers


def main(argv=None) -> TrainingResult:
    model_args, data_args, training_args = parse_args(argv)
    train, evaluation, answers = load_data(data_args)
    id2label = dict(enumerate(answers))
    model, processor = build_model_and_processor(
        model_args, AshNetsForQuestionAnswering, training_args.seed,
        id2label=id2label, label2id={a: i for i, a in id2label.items()},
    )
    return run_training(training_args, TASK.name, model, processor, train, evaluation,
                        script_arguments=(model_args, data_args))


if __name__ == "__main__":
    main(sys.argv[1:])
