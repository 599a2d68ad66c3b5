"""ASH-Nets for transformers. Importing this package registers its classes with the Auto classes."""

import transformers
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForZeroShotImageClassification,
    AutoProcessor,
)
from transformers.pipelines import PIPELINE_REGISTRY

from . import modeling_ashnets, modeling_gshn, pipeline_ashnets
from .configuration_ashnets import AshNetsConfig
from .configuration_gshn import GshnConfig
from .configuration_spikeclip import SpikeClipConfig, SpikeClipTextConfig, SpikeClipVisionConfig
from .image_processing_ashnets import AshNetsImageProcessor, AshNetsImageProcessorTorchvision
from .image_processing_gshn import GshnImageProcessor, GshnImageProcessorTorchvision
from .modeling_ashnets import (
    ENTAILMENT_LABELS,
    NLVR2_LABELS,
    AshNetsClassificationOutput,
    AshNetsForEntailment,
    AshNetsForImagesAndTextClassification,
    AshNetsForPreTraining,
    AshNetsForQuestionAnswering,
    AshNetsForRetrieval,
    AshNetsModel,
    AshNetsModelOutput,
    AshNetsPreTrainedModel,
    AshNetsPreTrainingOutput,
    AshNetsQuestionAnsweringOutput,
    AshNetsRetrievalOutput,
)
from .modeling_gshn import (
    GshnForEntailment,
    GshnForImagesAndTextClassification,
    GshnForPreTraining,
    GshnForQuestionAnswering,
    GshnForRetrieval,
    GshnModel,
    GshnPreTrainedModel,
)
from .pipeline_ashnets import AshNetsImageTextRetrievalPipeline, AshNetsVisualQuestionAnsweringPipeline
from .pretrained_parts import init_backbone_from_resnet, init_fusion_from_bert
from .image_processing_spikeclip import SpikeClipImageProcessor, SpikeClipImageProcessorTorchvision
from .modeling_spikeclip import SpikeClipModel, SpikeClipOutput, SpikeClipPreTrainedModel
from .processing_ashnets import AshNetsProcessor
from .processing_gshn import GshnProcessor
from .processing_spikeclip import SpikeClipProcessor
from .tasks import TASKS, TaskSpec, get_task


__version__ = "0.1.0.dev0"

__all__ = [
    "ENTAILMENT_LABELS",
    "GshnConfig",
    "GshnImageProcessor",
    "GshnImageProcessorTorchvision",
    "GshnProcessor",
    "GshnForEntailment",
    "GshnForImagesAndTextClassification",
    "GshnForPreTraining",
    "GshnForQuestionAnswering",
    "GshnForRetrieval",
    "GshnModel",
    "GshnPreTrainedModel",
    "NLVR2_LABELS",
    "AshNetsClassificationOutput",
    "AshNetsConfig",
    "AshNetsForEntailment",
    "AshNetsForImagesAndTextClassification",
    "AshNetsForPreTraining",
    "AshNetsForQuestionAnswering",
    "AshNetsForRetrieval",
    "AshNetsImageProcessor",
    "AshNetsImageTextRetrievalPipeline",
    "AshNetsImageProcessorTorchvision",
    "AshNetsModel",
    "AshNetsModelOutput",
    "AshNetsPreTrainedModel",
    "AshNetsPreTrainingOutput",
    "AshNetsProcessor",
    "AshNetsQuestionAnsweringOutput",
    "AshNetsRetrievalOutput",
    "AshNetsVisualQuestionAnsweringPipeline",
    "SpikeClipConfig",
    "SpikeClipImageProcessor",
    "SpikeClipImageProcessorTorchvision",
    "SpikeClipModel",
    "SpikeClipOutput",
    "SpikeClipPreTrainedModel",
    "SpikeClipProcessor",
    "SpikeClipTextConfig",
    "SpikeClipVisionConfig",
    "TASKS",
    "TaskSpec",
    "get_task",
    "init_backbone_from_resnet",
    "init_fusion_from_bert",
]


def _register_auto_classes():
    AutoConfig.register(AshNetsConfig.model_type, AshNetsConfig, exist_ok=True)
    AutoModel.register(AshNetsConfig, AshNetsModel, exist_ok=True)
    AutoImageProcessor.register(
        AshNetsConfig,
        image_processor_classes={"pil": AshNetsImageProcessor, "torchvision": AshNetsImageProcessorTorchvision},
        exist_ok=True,
    )
    AutoProcessor.register(AshNetsConfig, AshNetsProcessor, exist_ok=True)
    # Model and config classes copy their code into every folder that save_pretrained writes.
    AshNetsConfig.register_for_auto_class()
    AshNetsModel.register_for_auto_class("AutoModel")
    for task in TASKS.values():  # each head with an Auto class, and its pipeline
        if task.auto_class is None:
            continue
        auto_class, head = getattr(transformers, task.auto_class), getattr(modeling_ashnets, task.head)
        auto_class.register(AshNetsConfig, head, exist_ok=True)
        head.register_for_auto_class(task.auto_class)
        if task.pipeline:
            name, pipeline_class = task.pipeline
            PIPELINE_REGISTRY.register_pipeline(
                name, pipeline_class=getattr(pipeline_ashnets, pipeline_class), pt_model=auto_class, type="multimodal"
            )



def _register_spikeclip():
    """SpikeCLIP serves AutoModel and, as transformers' CLIP does, zero-shot image classification."""
    AutoConfig.register(SpikeClipConfig.model_type, SpikeClipConfig, exist_ok=True)
    AutoModel.register(SpikeClipConfig, SpikeClipModel, exist_ok=True)
    AutoModelForZeroShotImageClassification.register(SpikeClipConfig, SpikeClipModel, exist_ok=True)
    AutoImageProcessor.register(
        SpikeClipConfig,
        image_processor_classes={"pil": SpikeClipImageProcessor, "torchvision": SpikeClipImageProcessorTorchvision},
        exist_ok=True,
    )
    AutoProcessor.register(SpikeClipConfig, SpikeClipProcessor, exist_ok=True)
    SpikeClipConfig.register_for_auto_class()
    SpikeClipModel.register_for_auto_class("AutoModel")


def _register_gshn():
    """GSHN takes ASH-Nets' Auto classes and pipelines, with its own config, heads and processor."""
    AutoConfig.register(GshnConfig.model_type, GshnConfig, exist_ok=True)
    AutoModel.register(GshnConfig, GshnModel, exist_ok=True)
    AutoImageProcessor.register(
        GshnConfig,
        image_processor_classes={"pil": GshnImageProcessor, "torchvision": GshnImageProcessorTorchvision},
        exist_ok=True,
    )
    AutoProcessor.register(GshnConfig, GshnProcessor, exist_ok=True)
    GshnConfig.register_for_auto_class()
    GshnModel.register_for_auto_class("AutoModel")
    for task in TASKS.values():
        if task.auto_class is not None:
            head = getattr(modeling_gshn, task.head_for("Gshn"))
            getattr(transformers, task.auto_class).register(GshnConfig, head, exist_ok=True)
            head.register_for_auto_class(task.auto_class)


_register_auto_classes()
_register_spikeclip()
_register_gshn()
