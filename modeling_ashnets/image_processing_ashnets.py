"""ASH-Nets image processors: resize to a square, rescale, ImageNet-normalise (the ResNet's training statistics).

`AshNetsImageProcessor` runs on PIL and NumPy everywhere; `AshNetsImageProcessorTorchvision` is its torchvision
twin (batched tensor ops). Both check and convert every input to RGB first (see `image_inputs.py`; with
`do_convert_rgb=False` an image keeps its own channels), and both turn a batch of NLVR2 image pairs into
`pixel_values` of shape (batch, 2, channels, height, width). As in transformers, `pixel_values` is a list unless
`return_tensors` asks for tensors.
"""

from transformers.image_processing_backends import PilBackend, TorchvisionBackend
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling

from .image_inputs import DEFAULT_MAX_IMAGE_PIXELS, decode_image, flatten_image_batch, to_rgb_image


__all__ = ["AshNetsImageProcessor", "AshNetsImageProcessorTorchvision"]


class _AshNetsImageInputsMixin:
    """Shared by both backends: input checking, the pixel limit, and NLVR2 pairs."""

    model_input_names = ["pixel_values"]
    resample = PILImageResampling.BICUBIC
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD
    size = {"height": 384, "width": 384}
    do_resize = True
    do_center_crop = False
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True

    def __init__(self, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, **kwargs):
        super().__init__(**kwargs)
        self.max_image_pixels = max_image_pixels

    def preprocess(self, images, *args, **kwargs):
        """images: one image, a list of images, or a list of (image, image) pairs (NLVR2).

        With `do_convert_rgb=False` images keep their own mode and channels (paths and bytes are still decoded)."""
        flat, per_sample = flatten_image_batch(images)
        do_convert_rgb = kwargs.get("do_convert_rgb")
        if do_convert_rgb is None:
            do_convert_rgb = self.do_convert_rgb
        convert = decode_image if do_convert_rgb is False else to_rgb_image
        flat = [convert(image, self.max_image_pixels) for image in flat]
        features = super().preprocess(flat, *args, **kwargs)
        if per_sample > 1:
            pixel_values = features["pixel_values"]
            if isinstance(pixel_values, list):
                features["pixel_values"] = [pixel_values[i : i + per_sample] for i in range(0, len(pixel_values), per_sample)]
            else:
                features["pixel_values"] = pixel_values.reshape(-1, per_sample, *pixel_values.shape[1:])
        return features


class AshNetsImageProcessor(_AshNetsImageInputsMixin, PilBackend):
    """PIL backend (portable; the reference)."""


class AshNetsImageProcessorTorchvision(_AshNetsImageInputsMixin, TorchvisionBackend):
    """Torchvision backend; saved under the same `image_processor_type` as the PIL class."""

    def to_dict(self):
        output = super().to_dict()
        output["image_processor_type"] = "AshNetsImageProcessor"
        return output
