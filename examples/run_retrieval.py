#!/usr/bin/env python
"""Fine-tune ASH-Nets for image-text retrieval (contrastive ITC + ITM on hard negatives), evaluate R@1/5/10.

Runs with `python` and with `accelerate launch`. Data:

* `--dataset easy-vqa` (default, offline): easy-VQA images captioned "a small red circle at the top left"; the test
  gallery keeps one image per distinct caption.
* `--dataset shape-scenes` (offline): scenes of 2-5 shapes captioned "a red circle left of a blue square, and a green
  triangle"; in the test gallery every caption has exactly one correct image.
* `--dataset karpathy`: the Karpathy split JSON of COCO or Flickr30K (`--karpathy_file dataset_coco.json`) and the
  image root (`--image_root`); trains on train (+ restval), evaluates on `--eval_split` (test by default).
* `--dataset <Hub id or local copy>`, e.g. `nlphuji/flickr30k` or `yerevann/coco-karpathy`.

Evaluation ranks every caption against every image by ITC similarity; `--rerank_k K` re-scores each query's top K
with the ITM head. Writes the model, processor, `eval_results.json` (eval_tr_r@K: image->text, eval_ir_r@K:
text->image, eval_r_mean) and `train_results.json`.
"""

import sys
from dataclasses import dataclass, field

from modeling_ashnets import AshNetsForRetrieval, get_task
from modeling_ashnets.training import TrainingResult, build_model_and_processor, run_training
from modeling_ashnets.training_args import RetrievalTrainingArguments, ModelArguments, parse_script_arguments


TASK = get_task("retrieval")


@dataclass
class DataArguments:
    """Which images and captions to train and evaluate on."""

    dataset: str = field(
        default="easy-vqa", metadata={"help": "easy-vqa, shape-scenes, karpathy, or a Hub dataset id / local copy"})
    karpathy_file: str | None = field(default=None, metadata={"help": "dataset_coco.json or dataset_flickr30k.json"})
    image_root: str | None = field(default=None, metadata={"help": "image root of the Karpathy JSON's file paths"})
    train_split: str = "train"
    eval_split: str = "test"
    streaming: bool = field(default=False, metadata={"help": "stream the training set (needs --max_train_steps)"})


def parse_args(argv=None) -> tuple[ModelArguments, DataArguments, RetrievalTrainingArguments]:
    return parse_script_arguments((ModelArguments, DataArguments, RetrievalTrainingArguments), argv, __doc__)


def _caption_pairs(gallery):
    """One (image, caption) row per caption of an image-per-row data set."""
    return gallery.map(
        lambda batch: {
            "image_id": [i for i, captions in zip(batch["image_id"], batch["captions"]) for _ in captions],
            "image": [image for image, captions in zip(batch["image"], batch["captions"]) for _ in captions],
            "caption": [caption for captions in batch["captions"] for caption in captions],
        },
        batched=True,
        remove_columns=gallery.column_names,
    )


def load_data(args):
    """(training pairs, evaluation gallery)."""
    if args.dataset == "easy-vqa":
        load = TASK.loader("builtin")
        return load("train", pairs=True), load("test")
    if args.dataset == "shape-scenes":
        load = TASK.loader("shape-scenes")
        return load("train", pairs=True), load("test")
    if args.dataset == "karpathy":
        if not (args.karpathy_file and args.image_root):
            raise SystemExit("--dataset karpathy needs --karpathy_file and --image_root.")
        load = TASK.loader("files")
        return (load(args.karpathy_file, args.image_root, split=args.train_split, pairs=True, streaming=args.streaming),
                load(args.karpathy_file, args.image_root, split=args.eval_split))
    load = TASK.loader("hub")
    train = load(args.dataset, TASK.name, args.train_split, streaming=args.streaming)
    return _caption_pairs(train), load(args.dataset, TASK.name, args.eval_split)


def main(argv=None) -> TrainingResult:
    model_args, data_args, training_args = parse_args(argv)
    train, evaluation = load_data(data_args)
    model, processor = build_model_and_processor(model_args, AshNetsForRetrieval, training_args.seed)
    return run_training(training_args, TASK.name, model, processor, train, evaluation,
                        forward_kwargs={"return_loss": True}, script_arguments=(model_args, data_args))


if __name__ == "__main__":
    main(sys.argv[1:])
