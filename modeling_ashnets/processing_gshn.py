"""GshnProcessor: the GSHN image processor (pixels and segments) and a BERT WordPiece tokenizer behind one call."""

import functools

from transformers import BatchFeature

from .configuration_gshn import GSHN_AUTO_MAP, GSHN_PROCESSOR_CODE_FILES
from .image_inputs import flatten_image_batch, to_rgb_image
from .processing_ashnets import AshNetsProcessor
from .segments import panoptic_model_segments


__all__ = ["GshnProcessor"]


class GshnProcessor(AshNetsProcessor):
    """`processor(images=..., text=..., segments=None)` -> `input_ids`, `attention_mask`, `token_type_ids`,
    `pixel_values`, `segment_ids`.

    Segments come from, in this order: the call's `segments` (one id map per image), the panoptic model set with
    `use_panoptic_model`, or the image processor's `segment_source` (superpixels or flat-colour regions, offline).
    """

    code_files = GSHN_PROCESSOR_CODE_FILES
    auto_map = GSHN_AUTO_MAP
    segmenter = None  # images -> id maps; not saved with the processor (set it again after loading)

    def use_panoptic_model(self, model, image_processor, **options) -> "GshnProcessor":
        """Compute segments with a transformers universal-segmentation model (`AutoModelForUniversalSegmentation`,
        e.g. Mask2Former) and its image processor's `post_process_panoptic_segmentation`; `None` goes back to the
        image processor's own `segment_source`."""
        self.segmenter = None if model is None else functools.partial(
            panoptic_model_segments, model=model, image_processor=image_processor,
            max_segments=self.image_processor.max_segments, **options)
        return self

    def __call__(self, images=None, text=None, segments=None, **kwargs) -> BatchFeature:
        """images: one image, a list, or a list of NLVR2 pairs; text: a string or a list of strings, one per image
        (or pair); segments: optional id maps, one per image, at the image's resolution."""
        if segments is not None:
            if images is None:
                raise ValueError("segments belong to images: pass the images too.")
            kwargs["images_kwargs"] = {**kwargs.get("images_kwargs", {}), "segments": segments}
        return super().__call__(images, text, **kwargs)

    def _image_features(self, images, images_kwargs: dict) -> dict:
        if images_kwargs.get("segments") is None and self.segmenter is not None:
            flat, _ = flatten_image_batch(images)
            images_kwargs = {**images_kwargs, "segments": self.segmenter([to_rgb_image(image) for image in flat])}
        return super()._image_features(images, images_kwargs)
