"""SpikeCLIP's distillation recipe (arXiv 2310.06488; docs/model.md section 7) as parts for `run_training`: the frozen
teacher's features, the student's inputs, the three stages' losses and the zero-shot evaluation.
`examples/run_spikeclip_distillation.py` wires them into one stage per run.

Why everything is computed before training: the teacher is frozen and the images are not augmented (the teacher's
features are those of the image as it is), so every training sample is a fixed pair (student input, teacher target).
The teacher, the larger model, then runs once per image and text instead of once per epoch, images are decoded
once, and a batch is a tensor lookup (`TensorCollator`). `TeacherFeatures` can also keep the teacher's features on
disk, so that the image and dual stages (and reruns) reuse the image features the first stage computed.
"""

import functools
import hashlib
import json
import os
import time
from dataclasses import dataclass

import torch
from torch import nn
from transformers.utils import ModelOutput

from .data.collators import SkippedSample, decode_image_cell
from .losses import cosine_distillation_loss, dual_distillation_loss
from .zero_shot import class_prompt_matrix


__all__ = [
    "DistillationLoss",
    "DistillationOutput",
    "PreparedImages",
    "TeacherFeatures",
    "TensorCollator",
    "ZeroShotEvaluation",
    "load_teacher",
    "prepare_images",
    "train_only",
]


def _feature_model(model, name: str):
    """`model`, or its base model, whichever has `get_image_features` and `get_text_features` (a checkpoint whose
    AutoModel class is a head without them)."""
    for candidate in (model, getattr(model, "base_model", None)):
        if all(callable(getattr(candidate, method, None)) for method in ("get_image_features", "get_text_features")):
            return candidate
    raise ValueError(
        f"The teacher {name!r} loads as {type(model).__name__}, which has no get_image_features / get_text_features: "
        "pass a dual encoder (transformers' CLIPModel, an ASH-Nets retrieval checkpoint, a SpikeCLIP model)."
    )


def load_teacher(name_or_path: str, device: torch.device | str | None = None):
    """(model, processor) of a frozen teacher: `AutoModel` / `AutoProcessor.from_pretrained(..., trust_remote_code=
    True)`, in eval mode, without gradients. An ASH-Nets retrieval checkpoint loads as `AshNetsModel`, which keeps
    the retrieval head's projections (its ITM head and logit scale are not needed)."""
    from transformers import AutoModel, AutoProcessor

    model = _feature_model(AutoModel.from_pretrained(name_or_path, trust_remote_code=True), name_or_path)
    processor = AutoProcessor.from_pretrained(name_or_path, trust_remote_code=True)
    if not hasattr(processor, "image_processor"):
        raise ValueError(f"The teacher {name_or_path!r} has no image processor beside its tokenizer: save one with it "
                         "(a CLIPProcessor, an AshNetsProcessor, ...).")
    model.eval().requires_grad_(False)
    if device is not None:
        model.to(device)
    return model, processor


def _files_identity(name_or_path: str) -> list:
    """What identifies a teacher for the feature cache: a local folder's weight and config files (name, size,
    modification time), else the Hub id."""
    if not os.path.isdir(name_or_path):
        return [name_or_path]
    return [os.path.abspath(name_or_path)] + sorted(
        (entry.name, entry.stat().st_size, entry.stat().st_mtime_ns) for entry in os.scandir(name_or_path)
        if entry.is_file() and entry.name.endswith((".safetensors", ".bin", ".json"))
    )


def _text_limit(model, tokenizer) -> dict:
    """`max_length` for the teacher's tokenizer when its own limit exceeds the teacher's text positions (a CLIP
    text tower with 77 positions behind a 512-token BERT tokenizer); nothing otherwise."""
    config = getattr(model.config, "text_config", None) or model.config
    positions = getattr(config, "max_position_embeddings", None)
    if positions and getattr(tokenizer, "model_max_length", 0) > positions:
        return {"max_length": positions}
    return {}


class TeacherFeatures:
    """The frozen teacher's image and text features (float32, on the CPU), each computed once per run, under
    `torch.no_grad`, in batches of `batch_size`; with `cache_dir`, also read from and written to
    `cache_dir/<kind>-<key>.pt`, keyed by the teacher's files, its processor and the data."""

    def __init__(self, model, processor, name_or_path: str, batch_size: int = 256, cache_dir: str | None = None,
                 write_cache: bool = True):
        self.model, self.processor, self.batch_size = model, processor, batch_size
        self.device = next(model.parameters()).device
        self.cache_dir, self.write_cache = cache_dir, write_cache
        tokenizer = processor.tokenizer
        # CLIPProcessor does not pad by default; every teacher is fed padded, truncated batches.
        self.text_kwargs = {"padding": True, "truncation": True, **_text_limit(model, tokenizer)}
        self.text_processor = functools.partial(processor, **self.text_kwargs)
        self._identity = {
            "teacher": _files_identity(name_or_path),
            "image_processor": processor.image_processor.to_dict(),
            "tokenizer": [type(tokenizer).__name__, len(tokenizer), self.text_kwargs],
        }
        self._memory = {}

    @classmethod
    def load(cls, name_or_path: str, device=None, **kwargs) -> "TeacherFeatures":
        return cls(*load_teacher(name_or_path, device), name_or_path, **kwargs)

    def _key(self, kind: str, data) -> str:
        payload = json.dumps({"kind": kind, "data": data, **self._identity}, sort_keys=True, default=str)
        return f"{kind}-{hashlib.sha256(payload.encode()).hexdigest()[:20]}"

    def _cached(self, key: str):
        if key in self._memory:
            return self._memory[key]
        path = os.path.join(self.cache_dir, f"{key}.pt") if self.cache_dir else None
        if path and os.path.isfile(path):
            self._memory[key] = torch.load(path, weights_only=True)
            return self._memory[key]
        return None

    def _store(self, key: str, value: dict) -> None:
        self._memory[key] = value
        if self.cache_dir and self.write_cache:
            os.makedirs(self.cache_dir, exist_ok=True)
            path = os.path.join(self.cache_dir, f"{key}.pt")
            torch.save(value, f"{path}.{os.getpid()}.tmp")
            os.replace(f"{path}.{os.getpid()}.tmp", path)  # a reader never sees half a file

    @staticmethod
    def _pooled(features) -> torch.Tensor:
        return getattr(features, "pooler_output", features).float().cpu()

    @torch.no_grad()
    def text_features(self, texts: list[str]) -> torch.Tensor:
        """(len(texts), dim)."""
        key = self._key("texts", hashlib.sha256("\n".join(texts).encode()).hexdigest())
        cached = self._cached(key)
        if cached is not None:
            return cached["features"]
        parts = []
        for start in range(0, len(texts), self.batch_size):
            inputs = self.text_processor(text=texts[start : start + self.batch_size], return_tensors="pt")
            inputs = {name: value.to(self.device) for name, value in inputs.items()
                      if name in ("input_ids", "attention_mask", "token_type_ids")}
            parts.append(self._pooled(self.model.get_text_features(**inputs)))
        features = torch.cat(parts)
        self._store(key, {"features": features})
        return features

    @torch.no_grad()
    def image_features(self, images: list) -> torch.Tensor:
        """(len(images), dim) of decoded RGB images."""
        pixel_values = self.processor.image_processor(images, return_tensors="pt")["pixel_values"]
        return self._pooled(self.model.get_image_features(pixel_values=pixel_values.to(self.device)))

    def cached_image_features(self, data_key: str | None):
        """The stored image features and kept rows of `data_key`'s images ({"features", "kept"}), or None."""
        return None if data_key is None else self._cached(self._key("images", data_key))

    def store_image_features(self, data_key: str | None, features: torch.Tensor, kept: list[int]) -> None:
        if data_key is not None:
            self._store(self._key("images", data_key), {"features": features, "kept": torch.tensor(kept)})

    def class_matrix(self, class_names, templates) -> torch.Tensor:
        """(num_classes, dim): the teacher's normalised class-prompt embeddings (`zero_shot.class_prompt_matrix`)."""
        return class_prompt_matrix(self.model, self.text_processor, class_names, templates, self.batch_size).cpu()


@dataclass
class PreparedImages:
    """A split's images, decoded once: the student's pixels, the teacher's features (None when not asked for), the
    rows they come from, and the rows skipped because their image could not be read."""

    pixel_values: torch.Tensor
    teacher_features: torch.Tensor | None
    kept: list[int]
    skipped: list[SkippedSample]


def prepare_images(cells, student_image_processor, teacher: TeacherFeatures | None = None,
                   data_key: str | None = None, batch_size: int = 256, log=print) -> PreparedImages:
    """Decode each image cell (a path, `{"bytes", "path"}` or a PIL image) once, process it for the student and,
    unless `teacher` is None or holds `data_key`'s features already, run the teacher on it. A missing or unreadable
    image skips its row (reported, as the task collators do)."""
    started = time.perf_counter()
    cached = teacher.cached_image_features(data_key) if teacher is not None else None
    run_teacher = teacher is not None and cached is None
    pixels, features, kept, skipped = [], [], [], []
    for start in range(0, len(cells), batch_size):
        images = []
        for index, cell in enumerate(cells[start : start + batch_size], start):
            try:
                images.append(decode_image_cell(cell))
                kept.append(index)
            except (ValueError, OSError, TypeError) as error:
                path = cell if isinstance(cell, str) else cell.get("path") if isinstance(cell, dict) else None
                where = str(path) if path else f"row {index}"
                skipped.append(SkippedSample(where=where, reason=str(error)))
        if not images:
            continue
        pixels.append(student_image_processor(images, return_tensors="pt")["pixel_values"])
        if run_teacher:
            features.append(teacher.image_features(images))
    if skipped:
        log(f"skipped {len(skipped)} of {len(cells)} images, e.g. {skipped[0].where}: {skipped[0].reason}")
    if not kept:
        raise ValueError(f"None of the {len(cells)} images could be read.")
    teacher_features = None
    if run_teacher:
        teacher_features = torch.cat(features)
        teacher.store_image_features(data_key, teacher_features, kept)
        log(f"teacher features of {len(kept)} images in {time.perf_counter() - started:.1f}s")
    elif cached is not None:
        if cached["kept"].tolist() != kept:
            raise ValueError(f"The cached teacher features of {data_key!r} are of other rows: clear the cache folder.")
        teacher_features = cached["features"]
    return PreparedImages(torch.cat(pixels), teacher_features, kept, skipped)


class TensorCollator:
    """Rows `{"index": i, ...}` -> the i-th rows of precomputed tensors, in `run_training`'s batch format."""

    drop_last = False

    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.tensors = tensors

    def __call__(self, rows: list[dict]) -> dict:
        index = torch.tensor([row["index"] for row in rows])
        return {"inputs": {name: tensor[index] for name, tensor in self.tensors.items()}, "skipped": []}


@dataclass
class DistillationOutput(ModelOutput):
    """What a distillation step logs: `loss`, and the dual stage's two terms."""

    loss: torch.Tensor | None = None
    ce_loss: torch.Tensor | None = None
    kl_loss: torch.Tensor | None = None


def train_only(model, stage: str) -> None:
    """Freeze all but the stage's tower: the text encoder (text stage), or the image encoder and its projection
    (image and dual stages; the dual stage's class-prompt matrix comes from the distilled text encoder, fixed, as in
    SpikeCLIP's code). The logit scale stays as it is: the losses use a fixed one. Every trainable parameter then
    takes part in every step, which a distributed run needs."""
    model.requires_grad_(False)
    towers = [model.text_model] if stage == "text" else [model.vision_model, model.visual_projection]
    for tower in towers:
        tower.requires_grad_(True)


class DistillationLoss:
    """`compute_loss(model, inputs)` of one stage for `run_training`. The model is called (not its methods), so
    that a distributed run synchronises its gradients.

    * text: cosine distillation of the text embedding to `teacher_embeds`;
    * image: cosine distillation of the image embedding to `teacher_embeds`;
    * dual: `logit_scale` x cosine of the image embedding to each row of `class_matrix` (the student's class
      prompts) are the logits; cross-entropy against `labels` plus `kl_weight` x KL to `teacher_logits`."""

    def __init__(self, stage: str, class_matrix: torch.Tensor | None = None, logit_scale: float = 100.0,
                 kl_weight: float = 1.0, temperature: float = 1.0):
        if stage == "dual" and class_matrix is None:
            raise ValueError("The dual stage needs the class-prompt matrix.")
        self.stage, self.class_matrix = stage, class_matrix
        self.logit_scale, self.kl_weight, self.temperature = logit_scale, kl_weight, temperature

    def __call__(self, model, inputs: dict) -> DistillationOutput:
        if self.stage == "text":
            outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
            return DistillationOutput(loss=cosine_distillation_loss(outputs.text_embeds, inputs["teacher_embeds"]))
        outputs = model(pixel_values=inputs["pixel_values"])
        if self.stage == "image":
            return DistillationOutput(loss=cosine_distillation_loss(outputs.image_embeds, inputs["teacher_embeds"]))
        if self.class_matrix.device != outputs.image_embeds.device:
            self.class_matrix = self.class_matrix.to(outputs.image_embeds.device)
        logits = self.logit_scale * outputs.image_embeds.float() @ self.class_matrix.t()
        losses = dual_distillation_loss(logits, inputs["labels"], inputs["teacher_logits"], self.kl_weight,
                                        self.temperature)
        return DistillationOutput(loss=losses.loss, ce_loss=losses.ce_loss, kl_loss=losses.kl_loss)


def _normalized(features: torch.Tensor) -> torch.Tensor:
    return nn.functional.normalize(features.float(), dim=-1)


class ZeroShotEvaluation:
    """`evaluate_fn(model, eval_dataset)` for `run_training`: the student's zero-shot accuracy (top-1 and top-5) on the
    eval images (rows `{"index": i}` of the prepared tensors) with its own class-prompt matrix, the teacher's (once,
    for reference), how often both predict the same class, and the mean cosine similarity of the student's image,
    text and class-prompt embeddings to the teacher's."""

    def __init__(self, processor, class_names, templates, pixel_values: torch.Tensor, labels: torch.Tensor,
                 teacher_image_features: torch.Tensor, teacher_class_matrix: torch.Tensor, text_inputs: dict,
                 teacher_text_features: torch.Tensor, batch_size: int = 256):
        self.processor, self.class_names, self.templates = processor, list(class_names), list(templates)
        self.pixel_values, self.labels, self.text_inputs = pixel_values, labels, text_inputs
        self.teacher_images = _normalized(teacher_image_features)
        self.teacher_texts = _normalized(teacher_text_features)
        self.teacher_matrix = teacher_class_matrix.float()
        self.teacher_predictions = (self.teacher_images @ self.teacher_matrix.t()).argmax(dim=-1)
        self.batch_size = batch_size

    @torch.no_grad()
    def _embed(self, model, method: str, **tensors) -> torch.Tensor:
        """Normalised `model.<method>(**tensors)` (get_image_features / get_text_features), batch by batch."""
        device = next(model.parameters()).device
        count = next(iter(tensors.values())).shape[0]
        parts = []
        for start in range(0, count, self.batch_size):
            batch = {name: value[start : start + self.batch_size].to(device) for name, value in tensors.items()}
            features = getattr(model, method)(**batch)
            parts.append(_normalized(getattr(features, "pooler_output", features)).cpu())
        return torch.cat(parts)

    def __call__(self, model, eval_dataset) -> dict:
        model.eval()
        index = torch.tensor(eval_dataset["index"])
        images = self._embed(model, "get_image_features", pixel_values=self.pixel_values[index])
        texts = self._embed(model, "get_text_features", **self.text_inputs)
        matrix = class_prompt_matrix(model, self.processor, self.class_names, self.templates, self.batch_size).cpu()
        similarities = images @ matrix.t()
        predictions = similarities.argmax(dim=-1)
        labels, teacher = self.labels[index], self.teacher_predictions[index]
        top5 = similarities.topk(min(5, len(self.class_names)), dim=-1).indices
        return {
            "eval_zero_shot_accuracy": float((predictions == labels).float().mean()),
            "eval_zero_shot_top5_accuracy": float((top5 == labels[:, None]).any(dim=-1).float().mean()),
            "eval_teacher_zero_shot_accuracy": float((teacher == labels).float().mean()),
            "eval_teacher_agreement": float((predictions == teacher).float().mean()),
            "eval_image_cosine": float((images * self.teacher_images[index]).sum(dim=-1).mean()),
            "eval_text_cosine": float((texts * self.teacher_texts).sum(dim=-1).mean()),
            "eval_class_prompt_cosine": float((matrix * self.teacher_matrix).sum(dim=-1).mean()),
            "eval_samples": len(index),
            "eval_texts": texts.shape[0],
        }
