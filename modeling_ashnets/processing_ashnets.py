"""AshNetsProcessor: the image processor and a BERT WordPiece tokenizer behind one call."""

import json
import os
import shutil
import sys

from transformers import BatchFeature, ProcessorMixin

from .configuration_ashnets import ASHNETS_AUTO_MAP, PROCESSOR_CODE_FILES
from .image_inputs import flatten_image_batch


__all__ = ["AshNetsProcessor"]

# Call arguments that belong to the tokenizer; everything else goes to the image processor.
_TEXT_KWARGS = {
    "add_special_tokens", "padding", "truncation", "max_length", "stride", "pad_to_multiple_of", "padding_side",
    "return_token_type_ids", "return_attention_mask", "return_overflowing_tokens", "return_special_tokens_mask",
    "return_offsets_mapping", "return_length", "verbose", "is_split_into_words",
}


class AshNetsProcessor(ProcessorMixin):
    """`processor(images=..., text=...)` -> `input_ids`, `attention_mask`, `token_type_ids`, `pixel_values`.

    Text is padded to the longest in the batch and truncated to `max_text_length` tokens (40, as ViLT).
    """

    def __init__(self, image_processor=None, tokenizer=None, max_text_length: int = 40, **kwargs):
        super().__init__(image_processor, tokenizer)
        self.max_text_length = max_text_length

    def __call__(self, images=None, text=None, return_tensors: str | None = "pt", **kwargs) -> BatchFeature:
        """images: one image, a list, or a list of NLVR2 pairs; text: a string or a list of strings."""
        if images is None and text is None:
            raise ValueError("Pass images, text or both.")
        text_options = {key: kwargs.pop(key) for key in list(kwargs) if key in _TEXT_KWARGS}
        data = {}
        if text is not None:
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
                num_samples = len(flat) // per_sample
                if num_samples != len(texts):
                    raise ValueError(
                        f"Batch sizes differ: {len(texts)} texts but {num_samples} images (or image pairs); "
                        "pass one image (or one pair) per text."
                    )
            text_kwargs = {"padding": "longest", "truncation": True, "max_length": self.max_text_length, **text_options}
            data.update(self.tokenizer(list(texts), return_tensors=return_tensors, **text_kwargs))
        if images is not None:
            data.update(self.image_processor(images, return_tensors=return_tensors, **kwargs))
        return BatchFeature(data, tensor_type=return_tensors)

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """Also writes this package's processing code and an `auto_map`, so that
        `AutoProcessor.from_pretrained(folder, trust_remote_code=True)` works where the package is not installed."""
        result = super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)
        # Loaded through remote code, this class and the image processor may live in different module folders.
        folders = {
            os.path.dirname(os.path.abspath(sys.modules[type(obj).__module__].__file__))
            for obj in (self, self.image_processor)
        }
        for name in PROCESSOR_CODE_FILES:
            source = next((os.path.join(f, name) for f in folders if os.path.isfile(os.path.join(f, name))), None)
            if source is None:
                raise FileNotFoundError(f"Cannot find {name} next to the processor code in {sorted(folders)}.")
            if os.path.abspath(source) != os.path.abspath(os.path.join(save_directory, name)):
                shutil.copyfile(source, os.path.join(save_directory, name))
        _add_auto_map(os.path.join(save_directory, "processor_config.json"), ASHNETS_AUTO_MAP)
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
