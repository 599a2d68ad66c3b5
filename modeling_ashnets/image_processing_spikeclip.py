"""SpikeCLIP image processors: ASH-Nets' checked RGB conversion, then a resize to 32x32 and CLIP's normalisation (the
statistics of the teachers SpikeCLIP distils from)."""

from transformers.image_processing_backends import PilBackend, TorchvisionBackend
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from .image_processing_ashnets import _AshNetsImageInputsMixin


__all__ = ["SpikeClipImageProcessor", "SpikeClipImageProcessorTorchvision"]


class _SpikeClipDefaults(_AshNetsImageInputsMixin):
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    size = {"height": 32, "width": 32}


class SpikeClipImageProcessor(_SpikeClipDefaults, PilBackend):
    """PIL backend (portable; the reference)."""


class SpikeClipImageProcessorTorchvision(_SpikeClipDefaults, TorchvisionBackend):
    """Torchvision backend; saved under the same `image_processor_type` as the PIL class."""

    def to_dict(self):
        output = super().to_dict()
        output["image_processor_type"] = "SpikeClipImageProcessor"
        return output
