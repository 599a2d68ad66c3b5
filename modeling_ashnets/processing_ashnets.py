"""AshNetsProcessor: the image processor and a BERT WordPiece tokenizer behind one call."""

import json
import os
import shutil
import sys
from typing import Unpack

from transformers import BatchFeature, ProcessorMixin
from transformers.image_utils import ImageInput
from transformers.processing_utils import ProcessingKwargs
from transformers.tokenization_utils_base import TextInput

from .configuration_ashnets import ASHNETS_AUTO_MAP, PROCESSOR_CODE_FILES
from .image_inputs import flatten_image_batch


__all__ = ["AshNetsProcessor"]


class AshNetsProcessor(ProcessorMixin):
    """`processor(images=..., text=...)` -> `input_ids`, `attention_mask`, `token_type_ids`, `pixel_values`.

    Keyword arguments go as in every transformers processor: flat (`padding="max_length"`), per modality
    (`text_kwargs={...}`, `images_kwargs={...}`) or for all (`common_kwargs={...}`); pass `return_tensors="pt"` for
    tensors. Where neither the call nor the tokenizer's own settings say otherwise, text is padded to the longest in
    the batch and truncated to 40 tokens (as ViLT).
    """

    # The lowest-priority defaults of `_merge_kwargs`: call arguments and the tokenizer's own settings win.
    text_kwargs = {"padding": "longest", "truncation": True, "max_length": 40}
    # The code every saved folder carries, and the auto_map that points at it (a model family's processor sets its own).
    code_files = PROCESSOR_CODE_FILES
    auto_map = ASHNETS_AUTO_MAP
    # One text per image (or pair): ASH-Nets fuses them. A dual encoder's processor takes any number of each.
    pairs_texts_with_images = True

    def __init__(self, image_processor=None, tokenizer=None, max_text_length: int | None = None):
        """`max_text_length`: how processors saved before the tokenizer's settings took precedence recorded their
        truncation (`processor_config.json`); it becomes the tokenizer's own `max_length`, so that such a
        checkpoint keeps truncating where it was trained to."""
        if max_text_length is not None and tokenizer is not None:
            tokenizer.init_kwargs["max_length"] = max_text_length
        super().__init__(image_processor, tokenizer)

    def __call__(
        self,
        images: ImageInput | None = None,
        text: TextInput | list[TextInput] | None = None,
        **kwargs: Unpack[ProcessingKwargs],
    ) -> BatchFeature:
        """images: one image, a list, or a list of NLVR2 pairs; text: a string or a list of strings, one per image
        (or pair)."""
        if images is None and text is None:
            raise ValueError("Pass images, text or both.")
        texts = None if text is None else _checked_texts(text, images if self.pairs_texts_with_images else None)
        options = self._merge_kwargs(tokenizer_init_kwargs=self.tokenizer.init_kwargs, **kwargs)
        data = {}
        if texts is not None:
            data.update(self.tokenizer(texts, **options["text_kwargs"]))
        if images is not None:
            data.update(self._image_features(images, options["images_kwargs"]))
        return BatchFeature(data, tensor_type=options["text_kwargs"].get("return_tensors"))

    def _image_features(self, images, images_kwargs: dict) -> dict:
        """The image processor's outputs for `images` (a family's processor adds inputs of its own here)."""
        return self.image_processor(images, **images_kwargs)

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """Also writes this package's processing code and an `auto_map`, so that
        `AutoProcessor.from_pretrained(folder, trust_remote_code=True)` works where the package is not installed."""
        result = super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)
        # Loaded through remote code, this class and the image processor may live in different module folders.
        folders = {
            os.path.dirname(os.path.abspath(sys.modules[type(obj).__module__].__file__))
            for obj in (self, self.image_processor)
        }
        for name in self.code_files:
            source = next((os.path.join(f, name) for f in folders if os.path.isfile(os.path.join(f, name))), None)
            if source is None:
                raise FileNotFoundError(f"Cannot find {name} next to the processor code in {sorted(folders)}.")
            if os.path.abspath(source) != os.path.abspath(os.path.join(save_directory, name)):
                shutil.copyfile(source, os.path.join(save_directory, name))
        _add_auto_map(os.path.join(save_directory, "processor_config.json"), self.auto_map)
        return result


def _add_auto_map(config_file: str, auto_map: dict) -> None:
    """Write auto_map into the saved processor config (top level and the nested image processor)."""
    with open(config_file, encoding="utf-8") as handle:
        config = json.load(handle)
    config["auto_map"] = {"AutoProcessor": auto_map["AutoProcessor"]}
    if isinstance(config.get("image_processor"), dict):
        config["image_processor"]["auto_map"] = {"AutoImageProcessor": auto_map["AutoImageProcessor"]}
    with open(config_file, "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2, sort_keys=True)
        handle.write("\n")


def _checked_texts(text, images) -> list[str]:
    """text as a list of non-empty strings, one per image (or image pair) when images are given."""
    texts = [text] if isinstance(text, str) else text
    if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"text must be a string or a list of strings, got {type(text).__name__}.")
    if len(texts) == 0:
        raise ValueError("Got an empty list of texts.")
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise ValueError(f"Empty text at batch position(s) {empty}: every sample needs a question or caption.")
    if images is not None:
        flat, per_sample = flatten_image_batch(images)
        if len(flat) // per_sample != len(texts):
            raise ValueError(
                f"Batch sizes differ: {len(texts)} texts but {len(flat) // per_sample} images (or image pairs); "
                "pass one image (or one pair) per text."
            )
    return list(texts)
