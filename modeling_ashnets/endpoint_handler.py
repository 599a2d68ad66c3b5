"""Inference Endpoints handler for an exported ASH-Nets checkpoint (copied to the repository root as `handler.py`).

Why: Hugging Face Inference Endpoints call `EndpointHandler(path)(data)` with the request's JSON. This handler needs
nothing but transformers and the checkpoint's own remote code (its `tasks.py` names the method that serves the
checkpoint's head), and answers:

* VQA: `{"inputs": {"image": <base64 | URL>, "question": "..."}, "parameters": {"top_k": 3}}`
  -> `[{"answer": ..., "score": ...}, ...]`
* retrieval / zero-shot: `{"inputs": {"image": ..., "candidate_labels": ["...", ...]}}` -> labels with their scores,
  best first; or `{"inputs": {"images": [...], "texts": [...]}}` -> both rankings.
* entailment: `{"inputs": {"image": ..., "hypothesis": "..."}}` -> the three labels with their probabilities.
* SpikeCLIP (config.json `model_type` "spikeclip"), as Hugging Face's zero-shot image classification endpoints:
  `{"inputs": <image: base64 | data URI | URL | bytes>, "parameters": {"candidate_labels": ["red circle", ...],
  "hypothesis_template": "a {}"}}` -> `[{"label": ..., "score": ...}, ...]`, best first: the scores of transformers'
  `zero-shot-image-classification` pipeline (with the checkpoint's reference PIL image processor). The template
  defaults to the pipeline's ("This is a photo of {}."); `{"inputs": {"image": ..., "candidate_labels": [...]}}` is
  accepted too.

Malformed payloads raise ValueError with a message that names the field and what was expected.
"""

import base64
import binascii
import json
import os

import torch
from transformers import AutoImageProcessor, AutoProcessor, pipeline
from transformers.dynamic_module_utils import get_class_from_dynamic_module


MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGES = 64
MAX_TEXTS = 256
# config.json model types served as zero-shot image classification by transformers' own pipeline.
ZERO_SHOT_MODEL_TYPES = ("spikeclip",)
ZERO_SHOT_TASK = "zero-shot-image-classification"
DEFAULT_HYPOTHESIS_TEMPLATE = "This is a photo of {}."  # the pipeline's


def _image(value, field: str) -> bytes | str:
    """A payload image (base64, data URI or http(s) URL) -> what the pipelines take; raises on anything else."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"'{field}' must be a base64-encoded image or an http(s) URL, got {type(value).__name__}.")
    if value.startswith(("http://", "https://")):
        return value
    payload = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
    if len(payload) * 3 // 4 > MAX_IMAGE_BYTES:
        raise ValueError(f"'{field}' is over the limit of {MAX_IMAGE_BYTES // 2**20} MiB.")
    try:
        return base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"'{field}' is not valid base64 (nor an http(s) URL).") from None


def _text(value, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"'{field}' must be a non-empty string.")
    return value


def _texts(value, field: str) -> list[str]:
    if not isinstance(value, list) or not value or len(value) > MAX_TEXTS:
        raise ValueError(f"'{field}' must be a list of 1 to {MAX_TEXTS} strings.")
    return [_text(item, f"{field}[{i}]") for i, item in enumerate(value)]


def _template(value, field: str) -> str:
    """A hypothesis template with exactly one `{}` for the label."""
    if not isinstance(value, str):
        raise ValueError(f"'{field}' must be a string with '{{}}' where the label goes, got {type(value).__name__}.")
    try:
        formatted = value.format("\0")
    except (IndexError, KeyError, ValueError):
        formatted = ""
    if "{}" not in value or formatted.count("\0") != 1:
        raise ValueError(f"'{field}' must contain exactly one '{{}}' where the label goes (and no other braces), "
                         f"e.g. \"a photo of a {{}}.\"; got {value!r}.")
    return value


# The file holding each fused family's heads in a saved folder (ASH-Nets' otherwise).
MODEL_FILES = {"gshn": "modeling_gshn"}


class EndpointHandler:
    def __init__(self, path: str = ""):
        with open(os.path.join(path, "config.json"), encoding="utf-8") as handle:
            config = json.load(handle)
        self.zero_shot = config.get("model_type") in ZERO_SHOT_MODEL_TYPES
        if self.zero_shot:
            self._init_zero_shot(path, config)
            return
        self.architecture = (config.get("architectures") or ["AshNetsModel"])[0]
        task = get_class_from_dynamic_module("tasks.task_of_head", path)(self.architecture)
        if task is None or task.endpoint is None:
            tasks = get_class_from_dynamic_module("tasks.TASKS", path)
            served = ", ".join(name for name, task in tasks.items() if task.endpoint)
            raise ValueError(f"No endpoint for a {self.architecture} checkpoint: export a model of one of the tasks "
                             f"{served}.")
        self.answer = getattr(self, task.endpoint)
        if task.pipeline:
            self.pipeline = pipeline(task.pipeline[0], model=path, trust_remote_code=True)
        else:
            module = MODEL_FILES.get(config.get("model_type"), "modeling_ashnets")  # the family's model code
            model_class = get_class_from_dynamic_module(f"{module}.{self.architecture}", path)
            self.model = model_class.from_pretrained(path).eval()
            self.processor = AutoProcessor.from_pretrained(path, trust_remote_code=True)
            self.load_image = get_class_from_dynamic_module("image_inputs.load_image_reference", path)

    def _init_zero_shot(self, path: str, config: dict) -> None:
        """transformers' zero-shot-image-classification pipeline over the checkpoint's remote code, with its PIL image
        processor (the reference the package's CLI and evaluation use)."""
        self.architecture = (config.get("architectures") or ["SpikeClipModel"])[0]
        image_processor = AutoImageProcessor.from_pretrained(path, trust_remote_code=True, backend="pil")
        self.pipeline = pipeline(ZERO_SHOT_TASK, model=path, image_processor=image_processor, trust_remote_code=True)
        self.pipeline.model.eval()
        self.max_text_length = (config.get("text_config") or {}).get("max_position_embeddings")
        self.load_image = get_class_from_dynamic_module("image_inputs.load_image_reference", path)

    def _zero_shot_image(self, value, field: str):
        """The request's image as a checked RGB PIL image: base64, a data URI or an http(s) URL (as `_image`), raw
        bytes (an image request body) or a PIL image (as the Inference Endpoints toolkit decodes one)."""
        if isinstance(value, (bytes, bytearray)):
            if not value or len(value) > MAX_IMAGE_BYTES:
                raise ValueError(f"'{field}' must be an encoded image of 1 byte to {MAX_IMAGE_BYTES // 2**20} MiB.")
            return self.load_image(bytes(value), max_bytes=MAX_IMAGE_BYTES)
        if hasattr(value, "convert") and hasattr(value, "size"):  # a PIL image
            return self.load_image(value)
        return self.load_image(_image(value, field), max_bytes=MAX_IMAGE_BYTES)

    def _classify(self, data) -> list[dict]:
        if not isinstance(data, dict) or "inputs" not in data:
            raise ValueError('The request must be a JSON object {"inputs": <image>, "parameters": {"candidate_labels": '
                             '[...], "hypothesis_template": "a {}"}}.')
        inputs, parameters = data["inputs"], data.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise ValueError("'parameters' must be a JSON object.")
        field = "inputs"
        if isinstance(inputs, dict):  # {"image": ..., "candidate_labels": [...]}, as the retrieval endpoint takes
            parameters = {**parameters, **{k: inputs[k] for k in ("candidate_labels", "hypothesis_template")
                                           if k in inputs}}
            inputs, field = inputs.get("image"), "inputs.image"
        if "candidate_labels" not in parameters:
            raise ValueError("'parameters.candidate_labels' is missing: pass the labels to score, e.g. "
                             '["red circle", "blue triangle"].')
        labels = _texts(parameters["candidate_labels"], "parameters.candidate_labels")
        template = _template(parameters.get("hypothesis_template", DEFAULT_HYPOTHESIS_TEMPLATE),
                             "parameters.hypothesis_template")
        top_k = parameters.get("top_k")
        if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
            raise ValueError(f"'parameters.top_k' must be a positive integer, got {top_k!r}.")
        image = self._zero_shot_image(inputs, field)
        if self.max_text_length:  # the text encoder reads a fixed length; the pipeline does not truncate
            prompts = [template.format(label) for label in labels]
            lengths = [len(ids) for ids in self.pipeline.tokenizer(prompts)["input_ids"]]
            too_long = [prompt for prompt, length in zip(prompts, lengths) if length > self.max_text_length]
            if too_long:
                raise ValueError(f"These prompts are longer than the model's {self.max_text_length} tokens: "
                                 f"{too_long[:3]}; shorten the labels or the hypothesis_template.")
        with torch.no_grad():
            scores = self.pipeline(image, candidate_labels=labels, hypothesis_template=template)
        return scores[:top_k] if top_k else scores

    def __call__(self, data: dict):
        if self.zero_shot:
            return self._classify(data)
        if not isinstance(data, dict) or not isinstance(data.get("inputs"), dict):
            raise ValueError('The request must be a JSON object {"inputs": {...}, "parameters": {...}}.')
        inputs, parameters = data["inputs"], data.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise ValueError("'parameters' must be a JSON object.")
        top_k = parameters.get("top_k")
        if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
            raise ValueError(f"'parameters.top_k' must be a positive integer, got {top_k!r}.")
        return self.answer(inputs, top_k)

    def _vqa(self, inputs: dict, top_k: int | None):
        image, question = _image(inputs.get("image"), "inputs.image"), _text(inputs.get("question"), "inputs.question")
        return self.pipeline(image, question, top_k=top_k or 5)

    def _retrieval(self, inputs: dict, top_k: int | None):
        if "candidate_labels" in inputs:
            image = _image(inputs.get("image"), "inputs.image")
            labels = _texts(inputs["candidate_labels"], "inputs.candidate_labels")
            ranking = self.pipeline(images=[image], texts=labels)
            scores = torch.tensor(ranking["logits_per_image"][0]).softmax(dim=-1)
            order = scores.argsort(descending=True)[: top_k or len(labels)]
            return [{"label": labels[i], "score": float(scores[i])} for i in order.tolist()]
        images = inputs.get("images")
        if not isinstance(images, list) or not images or len(images) > MAX_IMAGES:
            raise ValueError(f"'inputs.images' must be a list of 1 to {MAX_IMAGES} images (or give 'inputs.image' with "
                             "'inputs.candidate_labels').")
        images = [_image(item, f"inputs.images[{i}]") for i, item in enumerate(images)]
        return self.pipeline(images=images, texts=_texts(inputs.get("texts"), "inputs.texts"), top_k=top_k)

    def _entailment(self, inputs: dict, top_k: int | None):
        image = self.load_image(_image(inputs.get("image"), "inputs.image"))
        hypothesis = _text(inputs.get("hypothesis"), "inputs.hypothesis")
        batch = self.processor(images=image, text=hypothesis, return_tensors="pt")
        with torch.no_grad():
            probabilities = self.model(**batch).logits[0].softmax(dim=-1)
        labels = self.model.config.id2label
        return [{"label": labels[i], "score": float(p)} for i, p in enumerate(probabilities.tolist())]
