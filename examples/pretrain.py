#!/usr/bin/env python
"""Pre-train ASH-Nets (ITC, ITM, MLM, MVM, STUA) on image-text pairs.

Runs with `python` and with `accelerate launch` (one or many processes, `--config_file` from
`examples/accelerate_configs/`). Sources, mixed by `--mixing_weights` (one per source, in the order below):

* `--coco_captions captions_train2017.json --coco_images train2017/`: COCO captions;
* `--vg_regions region_descriptions.json --vg_images VG_100K/ VG_100K_2/`: Visual Genome region phrases;
* `--webdataset 'shards/coco-*.tar' ...`: webdataset shards (`examples/convert_to_webdataset.py` writes them);
* `--hub_dataset <id> ...` with `--hub_image_column` / `--hub_text_column`: Hub data sets, streamed;
* none of these (the default): the built-in easy-VQA corpus, 4,000 images with 2 captions and 5 region phrases
  each, which pre-trains `ashnets-tiny` on a CPU in minutes.

Streaming (`--streaming`; always on for webdataset and Hub sources) gives each process its own shards and needs
`--max_train_steps`. Switch objectives off with `--config_overrides mvm_weight=0,stua_weight=0`. Writes checkpoints
(`--checkpointing_steps`, resume with `--resume_from_checkpoint latest`), TensorBoard logs of every loss and the
SNN firing rates (`--report_to tensorboard`), and finally the model and processor, which the task scripts load
with `--model_name_or_path`.
"""

import argparse
import sys

from modeling_ashnets import AshNetsForPreTraining, get_task
from modeling_ashnets.data.pretraining import mix_pretraining_sources
from modeling_ashnets.training import add_training_arguments, build_model_and_processor, run_training


TASK = get_task("pretraining")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--coco_captions", help="COCO captions JSON (captions_train2017.json)")
    data.add_argument("--coco_images", help="folder of the COCO images the captions file names")
    data.add_argument("--vg_regions", help="Visual Genome region_descriptions.json")
    data.add_argument("--vg_images", nargs="+", help="Visual Genome image folders (VG_100K VG_100K_2)")
    data.add_argument("--webdataset", nargs="+", default=[], help="webdataset tar shards or glob patterns")
    data.add_argument("--hub_dataset", nargs="+", default=[], help="Hub data set ids (or local copies)")
    data.add_argument("--hub_split", default="train")
    data.add_argument("--hub_image_column", default="image")
    data.add_argument("--hub_text_column", default="caption")
    data.add_argument("--mixing_weights", type=float, nargs="+", help="one weight per source (default: equal)")
    data.add_argument("--streaming", action="store_true", help="stream the sources (needs --max_train_steps)")
    add_training_arguments(parser)
    parser.set_defaults(warmup_ratio=0.05, lr_scheduler_type="cosine")
    return parser.parse_args(argv)


def load_sources(args) -> list:
    """The pre-training sources the arguments name, in order: COCO, Visual Genome, webdataset, Hub."""
    if bool(args.coco_captions) != bool(args.coco_images):
        raise SystemExit("--coco_captions and --coco_images go together.")
    if bool(args.vg_regions) != bool(args.vg_images):
        raise SystemExit("--vg_regions and --vg_images go together.")
    streaming = args.streaming or bool(args.webdataset or args.hub_dataset)
    sources = []
    if args.coco_captions:
        sources.append(TASK.loader("coco")(args.coco_captions, args.coco_images, streaming=streaming))
    if args.vg_regions:
        sources.append(TASK.loader("visual_genome")(args.vg_regions, args.vg_images, streaming=streaming))
    if args.webdataset:
        sources.append(TASK.loader("webdataset")(args.webdataset))
    for dataset_id in args.hub_dataset:
        sources.append(TASK.loader("hub")(dataset_id, args.hub_split, args.hub_image_column, args.hub_text_column))
    if not sources:
        sources.append(TASK.loader("builtin")("train", streaming=streaming))
    return sources


def main(argv=None) -> dict:
    args = parse_args(argv)
    train = mix_pretraining_sources(load_sources(args), args.mixing_weights, seed=args.seed)
    model, processor = build_model_and_processor(args, AshNetsForPreTraining)
    return run_training(args, TASK.name, model, processor, train)


if __name__ == "__main__":
    main(sys.argv[1:])
