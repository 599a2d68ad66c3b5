#!/usr/bin/env python
"""Fine-tune ASH-Nets for visual question answering (VQA as multi-label classification over an answer vocabulary).

Runs with `python examples/run_vqa.py ...` and with `accelerate launch examples/run_vqa.py ...`. Data:

* `--dataset easy-vqa` (default, offline): the easy-VQA PyPI package, 13 answers.
* `--dataset vqa-v2`: the official files, `--train_questions/--train_annotations/--train_images` and the same for
  `--eval_*`; the answer vocabulary is the `--num_answers` (3,129) most frequent training answers.
* `--dataset <Hub id or local copy>`, e.g. `HuggingFaceM4/VQAv2` or `lmms-lab/VQAv2`, with `--answer_vocabulary`
  (a JSON list of answers).

Writes the fine-tuned model and processor, `eval_results.json` (VQA accuracy overall and per answer type) and
`train_results.json` to `--output_dir`.
"""

import argparse
import json
import sys

from modeling_ashnets import AshNetsForQuestionAnswering, get_task
from modeling_ashnets.training import add_training_arguments, build_model_and_processor, run_training


TASK = get_task("vqa")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default="easy-vqa", help="easy-vqa, vqa-v2, or a Hub dataset id / local copy")
    for split in ("train", "eval"):
        data.add_argument(f"--{split}_questions", nargs="+", help=f"VQA v2 questions JSON file(s) ({split})")
        data.add_argument(f"--{split}_annotations", nargs="+", help=f"VQA v2 annotations JSON file(s) ({split})")
        data.add_argument(f"--{split}_images", nargs="+", help=f"COCO image folder(s) ({split})")
    data.add_argument("--num_answers", type=int, default=3129, help="size of the VQA v2 answer vocabulary")
    data.add_argument("--answer_vocabulary", help="JSON file with the list of answers (Hub data sets)")
    data.add_argument("--train_split", default="train")
    data.add_argument("--eval_split", default="validation")
    data.add_argument("--streaming", action="store_true", help="stream the training set (needs --max_train_steps)")
    add_training_arguments(parser)
    return parser.parse_args(argv)


def load_data(args):
    """(train set, eval set, answer vocabulary) in the VQA v2 loader's columns."""
    if args.dataset == "easy-vqa":
        from modeling_ashnets.data.easy_vqa import easy_vqa_answers

        load = TASK.loader("builtin")
        return load("train"), load("test"), easy_vqa_answers()
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


def main(argv=None) -> dict:
    args = parse_args(argv)
    train, evaluation, answers = load_data(args)
    id2label = dict(enumerate(answers))
    model, processor = build_model_and_processor(
        args, AshNetsForQuestionAnswering, id2label=id2label, label2id={a: i for i, a in id2label.items()}
    )
    return run_training(args, TASK.name, model, processor, train, evaluation)


if __name__ == "__main__":
    main(sys.argv[1:])
