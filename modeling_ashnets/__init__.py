"""ASH-Nets for transformers. Importing this package registers its classes with the Auto classes."""

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForVisualQuestionAnswering,
    AutoModelForZeroShotImageClassification,
    AutoProcessor,
)
from transformers.pipelines import PIPELINE_REGISTRY

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
    "init_backbone_from_resnet",
    "init_fusion_from_bert",
]


def _register_auto_classes():
    AutoConfig.register(AshNetsConfig.model_type, AshNetsConfig, exist_ok=True)
    AutoModel.register(AshNetsConfig, AshNetsModel, exist_ok=True)
    AutoModelForVisualQuestionAnswering.register(AshNetsConfig, AshNetsForQuestionAnswering, exist_ok=True)
    AutoImageProcessor.register(
        AshNetsConfig,
        image_processor_classes={"pil": AshNetsImageProcessor, "torchvision": AshNetsImageProcessorTorchvision},
        exist_ok=True,
    )
    AutoModelForZeroShotImageClassification.register(AshNetsConfig, AshNetsForRetrieval, exist_ok=True)
    AutoProcessor.register(AshNetsConfig, AshNetsProcessor, exist_ok=True)
    # Model and config classes copy their code into every folder that save_pretrained writes.
    AshNetsConfig.register_for_auto_class()
    AshNetsModel.register_for_auto_class("AutoModel")
    AshNetsForQuestionAnswering.register_for_auto_class("AutoModelForVisualQuestionAnswering")
    AshNetsForRetrieval.register_for_auto_class("AutoModelForZeroShotImageClassification")
    # transformers 5 has no visual-question-answering task any more; ours takes its name.
    PIPELINE_REGISTRY.register_pipeline(
        "visual-question-answering", pipeline_class=AshNetsVisualQuestionAnsweringPipeline,
        pt_model=AutoModelForVisualQuestionAnswering, type="multimodal",
    )
    PIPELINE_REGISTRY.register_pipeline(
        "image-text-retrieval", pipeline_class=AshNetsImageTextRetrievalPipeline,
        pt_model=AutoModelForZeroShotImageClassification, type="multimodal",
    )


_register_auto_classes()
