"""GSHN image processors: ASH-Nets' pixels, plus each image's segments as `segment_ids` (batch, height, width).

Segments come from `segment_source` unless the call passes them (`segments=`: one id map per image, e.g. read from
COCO panoptic PNGs with `segments.read_coco_panoptic`, or computed by a panoptic model, which `GshnProcessor` does):

* `"superpixels"` (the default): SLIC superpixels merged down to `max_segments`; works on any image, offline.
* `"pixels"`: flat-colour regions, exact on the built-in synthetic data (easy-VQA, the shape scenes).
* `"given"`: every call passes `segments=` (training on data with panoptic annotations: the collator reads them).

Segments are computed at the image's own resolution (or the output size, for larger images, so that large photos
cost no more than small ones) and resized to the output size with nearest neighbours, so that ids stay ids.
"""

import numpy as np
import torch
from PIL import Image
from transformers.image_processing_backends import PilBackend, TorchvisionBackend
from transformers.processing_utils import ImagesKwargs

from .image_inputs import decode_image, flatten_image_batch, to_rgb_image
from .image_processing_ashnets import _AshNetsImageInputsMixin
from .segments import SEGMENT_SOURCES as OFFLINE_SOURCES
from .segments import compute_segments, resize_segment_ids


__all__ = ["SEGMENT_SOURCES", "GshnImageProcessor", "GshnImageProcessorTorchvision"]

SEGMENT_SOURCES = (*OFFLINE_SOURCES, "given")


class GshnImageProcessorKwargs(ImagesKwargs, total=False):
    """The image keyword arguments a GSHN processor call routes to its image processor (transformers finds the
    class by the processor's name plus `Kwargs`)."""

    segments: object  # one id map per image (array or tensor, height x width), at the image's resolution


GshnImageProcessorTorchvisionKwargs = GshnImageProcessorKwargs


class _GshnSegmentsMixin(_AshNetsImageInputsMixin):
    model_input_names = ["pixel_values", "segment_ids"]
    valid_kwargs = GshnImageProcessorKwargs

    def __init__(self, segment_source: str = "superpixels", max_segments: int = 32, **kwargs):
        if segment_source not in SEGMENT_SOURCES:
            raise ValueError(f"Unknown segment_source {segment_source!r}; choose one of {list(SEGMENT_SOURCES)} (a "
                             "panoptic model's segments come through GshnProcessor.use_panoptic_model).")
        if max_segments < 1:
            raise ValueError(f"max_segments must be >= 1, got {max_segments}.")
        super().__init__(**kwargs)
        self.segment_source = segment_source
        self.max_segments = max_segments

    def preprocess(self, images, *args, segments=None, **kwargs):
        """images: one image, a list, or a list of NLVR2 pairs; `segments`: optional id maps, one per image (in the
        same nesting), at the image's resolution. Returns `pixel_values` and `segment_ids` (int64, -1 = none)."""
        flat, per_sample = flatten_image_batch(images)
        do_convert_rgb = kwargs.get("do_convert_rgb")
        convert = decode_image if do_convert_rgb is False else to_rgb_image
        decoded = [convert(image, self.max_image_pixels) for image in flat]
        given = None if segments is None else _flat_segments(segments, len(decoded))
        size = kwargs.get("size") or self.size
        height, width = size["height"], size["width"]
        maps = [
            self._segment_ids(image, None if given is None else given[index], height, width)
            for index, image in enumerate(decoded)
        ]
        features = super().preprocess(decoded if per_sample == 1 else _pairs(decoded, per_sample), *args, **kwargs)
        segment_ids = np.stack(maps)
        if per_sample > 1:
            segment_ids = segment_ids.reshape(-1, per_sample, height, width)
        tensors = kwargs.get("return_tensors")
        features["segment_ids"] = torch.from_numpy(segment_ids) if tensors == "pt" else list(segment_ids)
        return features

    def _segment_ids(self, image, given, height: int, width: int) -> np.ndarray:
        if given is None and not isinstance(image, Image.Image):  # do_convert_rgb=False kept the input's own form
            image = to_rgb_image(image, self.max_image_pixels)
        if given is None:
            if self.segment_source == "given":
                raise ValueError("This image processor takes each image's segments with the data "
                                 "(segment_source='given'): pass segments=, or set segment_source to one of "
                                 f"{list(OFFLINE_SOURCES)} to compute them.")
            if image.width * image.height > height * width:  # segment large photos at the output size
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            given = compute_segments(image, self.segment_source, self.max_segments)
        given = np.asarray(given)
        if given.ndim != 2 or given.dtype.kind not in "iu":
            raise ValueError(f"segments must be integer id maps (height, width), one per image; got an array of "
                             f"shape {given.shape} and dtype {given.dtype}.")
        if given.size and (given.min() < -1 or given.max() >= self.max_segments):
            raise ValueError(f"segments hold ids in [{given.min()}, {given.max()}], outside [-1, {self.max_segments}) "
                             "(max_segments): relabel them with segments.limit_segments.")
        if not (given >= 0).any():
            raise ValueError("An image's segments are empty (every id is -1): every image needs at least one segment.")
        return resize_segment_ids(given.astype(np.int64), (height, width))


def _pairs(images: list, per_sample: int) -> list:
    return [images[i : i + per_sample] for i in range(0, len(images), per_sample)]


def _flat_segments(segments, count: int) -> list:
    """`segments` as one id map per image, in the images' order (pairs flattened)."""
    if isinstance(segments, (np.ndarray, torch.Tensor)) and segments.ndim == 2:
        segments = [segments]
    flat = []
    for item in segments:
        is_map = isinstance(item, (np.ndarray, torch.Tensor)) and item.ndim == 2
        flat.extend([item] if is_map else list(item))
    if len(flat) != count:
        raise ValueError(f"segments must give one id map per image: {count} images but {len(flat)} id maps.")
    return [np.asarray(item) for item in flat]


class GshnImageProcessor(_GshnSegmentsMixin, PilBackend):
    """PIL backend (portable; the reference)."""


class GshnImageProcessorTorchvision(_GshnSegmentsMixin, TorchvisionBackend):
    """Torchvision backend; saved under the same `image_processor_type` as the PIL class."""

    def to_dict(self):
        output = super().to_dict()
        output["image_processor_type"] = "GshnImageProcessor"
        return output
