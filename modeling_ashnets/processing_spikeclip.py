"""SpikeClipProcessor: the SpikeCLIP image processor and a tokenizer behind one call. Text is padded and truncated to
the text encoder's fixed length (20 tokens) unless the call or the tokenizer's own settings say otherwise."""

from .configuration_spikeclip import SPIKECLIP_AUTO_MAP, SPIKECLIP_PROCESSOR_CODE_FILES
from .processing_ashnets import AshNetsProcessor


__all__ = ["SpikeClipProcessor"]


class SpikeClipProcessor(AshNetsProcessor):
    """`processor(images=..., text=...)` -> `input_ids`, `attention_mask`, `pixel_values`. Texts and images may come
    in different numbers (zero-shot classification: one image, many prompts)."""

    text_kwargs = {"padding": "max_length", "truncation": True, "max_length": 20, "return_token_type_ids": False}
    code_files = SPIKECLIP_PROCESSOR_CODE_FILES
    auto_map = SPIKECLIP_AUTO_MAP
    pairs_texts_with_images = False

    def __init__(self, image_processor=None, tokenizer=None, max_text_length: int | None = None):
        """`max_text_length` (the text encoder's `max_position_embeddings`) becomes the tokenizer's own `max_length`
        and `model_max_length`, so that the tokenizer alone (as pipelines call it) truncates there too."""
        if max_text_length is not None and tokenizer is not None:
            tokenizer.model_max_length = max_text_length
            tokenizer.init_kwargs["model_max_length"] = max_text_length
        super().__init__(image_processor, tokenizer, max_text_length)

    @property
    def unused_input_names(self) -> list[str]:
        """The BERT tokenizer lists `token_type_ids`, which the text encoder does not read (and the processor does not
        return): they are left out of `model_input_names`."""
        return ["token_type_ids"]
