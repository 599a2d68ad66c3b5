"""ASH-Nets for transformers. Importing this package registers its classes with the Auto classes."""

import transformers
from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoProcessor
from transformers.pipelines import PIPELINE_REGISTRY

from . import modeling_ashnets, pipeline_ashnets
from .configuration_ashnets import AshNetsConfig
from .image_processing_ashnets import AshNetsImageProcessor, AshNetsImageProcessorTorchvision
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
from .pipeline_ashnets import AshNetsImageTextRetrievalPipeline, AshNetsVisualQuestionAnsweringPipeline
from .pretrained_parts import init_backbone_from_resnet, init_fusion_from_bert
from .processing_ashnets import AshNetsProcessor
from .tasks import TASKS, TaskSpec, get_task


__version__ = "0.1.0.dev0"

__all__ = [
    "ENTAILMENT_LABELS",
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


_register_auto_classes()
