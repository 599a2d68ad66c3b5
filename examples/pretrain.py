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

import sys
from dataclasses import dataclass, field

from modeling_ashnets import AshNetsForPreTraining, get_task
from modeling_ashnets.data import pretraining as corpus
from modeling_ashnets.training import TrainingResult, build_model_and_processor, run_training
from modeling_ashnets.training_args import AshNetsTrainingArguments, ModelArguments, parse_script_arguments


TASK = get_task("pretraining")


@dataclass
class DataArguments:
    """The pre-training sources and how they are mixed."""

    coco_captions: str | None = field(default=None, metadata={"help": "COCO captions JSON (captions_train2017.json)"})
    coco_images: str | None = field(
        default=None, metadata={"help": "folder of the COCO images the captions file names"})
    vg_regions: str | None = field(default=None, metadata={"help": "Visual Genome region_descriptions.json"})
    vg_images: list[str] | None = field(
        default=None, metadata={"help": "Visual Genome image folders (VG_100K VG_100K_2)"})
    webdataset: list[str] = field(default_factory=list, metadata={"help": "webdataset tar shards or glob patterns"})
    hub_dataset: list[str] = field(default_factory=list, metadata={"help": "Hub data set ids (or local copies)"})
    hub_split: str = "train"
    hub_image_column: str = "image"
    hub_text_column: str = "caption"
    mixing_weights: list[float] | None = field(
        default=None, metadata={"help": "one weight per source (default: equal)"})
    streaming: bool = field(default=False, metadata={"help": "stream the sources (needs --max_train_steps)"})


def parse_args(argv=None) -> tuple[ModelArguments, DataArguments, AshNetsTrainingArguments]:
    return parse_script_arguments((ModelArguments, DataArguments, AshNetsTrainingArguments), argv, __doc__,
                                  warmup_ratio=0.05, lr_scheduler_type="cosine")


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


def main(argv=None) -> TrainingResult:
    model_args, data_args, training_args = parse_args(argv)
    train = corpus.mix_pretraining_sources(load_sources(data_args), data_args.mixing_weights, seed=training_args.seed)
    model, processor = build_model_and_processor(model_args, AshNetsForPreTraining, training_args.seed)
    return run_training(training_args, TASK.name, model, processor, train, script_arguments=(model_args, data_args))


if __name__ == "__main__":
    main(sys.argv[1:])
