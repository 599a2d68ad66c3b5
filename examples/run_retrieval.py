#!/usr/bin/env python
"""Fine-tune ASH-Nets for image-text retrieval (contrastive ITC + ITM on hard negatives), evaluate R@1/5/10.

Runs with `python` and with `accelerate launch`. Data:

* `--dataset easy-vqa` (default, offline): easy-VQA images captioned "a small red circle at the top left"; the test
  gallery keeps one image per distinct caption.
* `--dataset karpathy`: the Karpathy split JSON of COCO or Flickr30K (`--karpathy_file dataset_coco.json`) and the
  image root (`--image_root`); trains on train (+ restval), evaluates on `--eval_split` (test by default).
* `--dataset <Hub id or local copy>`, e.g. `nlphuji/flickr30k` or `yerevann/coco-karpathy`.

Evaluation ranks every caption against every image by ITC similarity; `--rerank_k K` re-scores each query's top K
with the ITM head. Writes the model, processor, `eval_results.json` (eval_tr_r@K: image->text, eval_ir_r@K:
text->image, eval_r_mean) and `train_results.json`.
"""

import argparse
import sys

from modeling_ashnets import AshNetsForRetrieval, get_task
from modeling_ashnets.training import add_training_arguments, build_model_and_processor, run_training


TASK = get_task("retrieval")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default="easy-vqa", help="easy-vqa, karpathy, or a Hub dataset id / local copy")
    data.add_argument("--karpathy_file", help="dataset_coco.json or dataset_flickr30k.json")
    data.add_argument("--image_root", help="image root of the Karpathy JSON's file paths")
    data.add_argument("--train_split", default="train")
    data.add_argument("--eval_split", default="test")
    data.add_argument("--rerank_k", type=int, default=0, help="re-rank each query's top K candidates with ITM")
    data.add_argument("--streaming", action="store_true", help="stream the training set (needs --max_train_steps)")
    add_training_arguments(parser)
    return parser.parse_args(argv)


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
    if args.dataset == "karpathy":
        if not (args.karpathy_file and args.image_root):
            raise SystemExit("--dataset karpathy needs --karpathy_file and --image_root.")
        load = TASK.loader("files")
        return (load(args.karpathy_file, args.image_root, split=args.train_split, pairs=True, streaming=args.streaming),
                load(args.karpathy_file, args.image_root, split=args.eval_split))
    load = TASK.loader("hub")
    train = load(args.dataset, TASK.name, args.train_split, streaming=args.streaming)
    return _caption_pairs(train), load(args.dataset, TASK.name, args.eval_split)


def main(argv=None) -> dict:
    args = parse_args(argv)
    train, evaluation = load_data(args)
    model, processor = build_model_and_processor(args, AshNetsForRetrieval)
    return run_training(args, TASK.name, model, processor, train, evaluation, forward_kwargs={"return_loss": True})


if __name__ == "__main__":
    main(sys.argv[1:])
