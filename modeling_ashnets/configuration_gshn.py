"""GSHN configuration (arXiv 2501.19069): ASH-Nets' configuration with panoptic segments as the visual tokens.

GSHN keeps ASH-Nets' CNN, SNN, summary ratio, fusion transformer and heads; what changes is where the visual tokens
come from. Each segment's mask pools the CNN's feature map into a graph node, a graph attention network over the nodes
gives the continuous features and the SNN over the same nodes the discrete ones, merged as `V' = r * E_snn + F_gat`.
So `GshnConfig` is an `AshNetsConfig` with the segment and graph settings added.
"""

from huggingface_hub.dataclasses import strict

from .configuration_ashnets import AshNetsConfig
from .tasks import TASKS


__all__ = ["GSHN_AUTO_MAP", "GSHN_PROCESSOR_CODE_FILES", "GshnConfig"]

# Every Auto class a saved GSHN folder serves through remote code (module.Class inside the folder).
GSHN_AUTO_MAP = {
    "AutoConfig": "configuration_gshn.GshnConfig",
    "AutoModel": "modeling_gshn.GshnModel",
    **{task.auto_class: f"modeling_gshn.{task.head_for('Gshn')}" for task in TASKS.values() if task.auto_class},
    "AutoImageProcessor": {
        "pil": "image_processing_gshn.GshnImageProcessor",
        "torchvision": "image_processing_gshn.GshnImageProcessorTorchvision",
    },
    "AutoProcessor": "processing_gshn.GshnProcessor",
}
# The files behind the AutoProcessor / AutoImageProcessor entries above and what they import.
GSHN_PROCESSOR_CODE_FILES = (
    "processing_gshn.py",
    "processing_ashnets.py",
    "image_processing_gshn.py",
    "image_processing_ashnets.py",
    "image_inputs.py",
    "segments.py",
    "configuration_gshn.py",
    "configuration_ashnets.py",
    "tasks.py",
)

_PRESETS = {
    # The paper's scale: ResNet-152 and BERT-base fusion, as ashnets-base; up to 32 segments per image.
    "gshn-base": {"max_segments": 32},
    # CPU-sized: ashnets-tiny with a 3-stage ResNet (stride 16) on 96-pixel images, so that the feature map is fine
    # enough for the masks to pool different cells for different objects.
    "gshn-tiny": {
        **AshNetsConfig.presets()["ashnets-tiny"],
        "image_size": 96,
        "backbone_config": {
            "embedding_size": 32,
            "hidden_sizes": [32, 64, 128],
            "depths": [1, 1, 1],
            "layer_type": "basic",
        },
        "max_segments": 8,
        "graph_num_layers": 1,
    },
}


@strict
class GshnConfig(AshNetsConfig):
    r"""
    Configuration of a GSHN model (arXiv 2501.19069). Everything of [`AshNetsConfig`] applies (the CNN, SNN, summary
    ratio, fusion transformer, heads and pre-training objectives); defaults give `gshn-base`; use
    [`GshnConfig.from_preset`] for named sizes (`"gshn-base"`, `"gshn-tiny"`).

    Segments and graph:
        max_segments (`int`, defaults to 32): segments per image the model takes (`segment_ids` hold indices in
            `[0, max_segments)`, or -1 for pixels in no segment). Images with fewer segments fill the remaining
            node slots with a learned "no segment" token; the processor merges or drops segments beyond the limit.
        graph_num_layers (`int`, defaults to 2): graph attention layers over the nodes (0 gives the ablation without
            the graph: the continuous features are the pooled segment features).
        graph_num_heads (`int`, defaults to 4): attention heads per graph layer; must divide `hidden_size`.
        graph_dropout (`float`, defaults to 0.1): dropout on the graph attention coefficients and outputs.
        graph_global_node (`bool`, defaults to `True`): add a node pooled over the whole image, linked to every
            segment, so that information crosses the graph in two hops whatever the segments' adjacency.
        segment_outline_size (`int`, defaults to 8): each segment's mask, cropped to its bounding box and resampled
            to this size squared, is projected into its token beside its geometry: the segment's shape, which pooling
            the CNN's cells inside the mask loses at a coarse feature map. 0 leaves it out (the paper's nodes).

    Pre-training: GSHN's objectives are on by default (`stl_weight=1.0`, `pair_weight=1.0`; see AshNetsConfig).
    """

    model_type = "gshn"

    max_segments: int = 32
    graph_num_layers: int = 2
    graph_num_heads: int = 4
    graph_dropout: float | int = 0.1
    graph_global_node: bool = True
    segment_outline_size: int = 8
    stl_weight: float | int = 1.0
    pair_weight: float | int = 1.0

    def __post_init__(self, **kwargs):
        if getattr(self, "auto_map", None) is None and "auto_map" not in kwargs:
            self.auto_map = {key: value for key, value in GSHN_AUTO_MAP.items()}
        super().__post_init__(**kwargs)

    @classmethod
    def presets(cls) -> dict:
        return _PRESETS

    @property
    def num_visual_tokens(self) -> int:
        """One token per segment slot, plus the global node."""
        return self.max_segments + int(self.graph_global_node)

    def validate_graph(self):
        """Segment and graph attention settings."""
        if self.max_segments < 1:
            raise ValueError(f"max_segments must be >= 1, got {self.max_segments}.")
        if self.graph_num_layers < 0:
            raise ValueError(f"graph_num_layers must be >= 0 (0 leaves the graph out), got {self.graph_num_layers}.")
        if self.graph_num_heads < 1 or self.hidden_size % self.graph_num_heads != 0:
            raise ValueError(
                f"graph_num_heads ({self.graph_num_heads}) must be >= 1 and divide hidden_size ({self.hidden_size})."
            )
        if self.segment_outline_size < 0:
            raise ValueError(f"segment_outline_size must be >= 0 (0 leaves it out), got {self.segment_outline_size}.")
        if not 0 <= self.graph_dropout < 1:
            raise ValueError(f"graph_dropout must be in [0, 1), got {self.graph_dropout}.")
        if self.snn_input_mode != "repeat":
            raise ValueError(
                f"GSHN's SNN reads each image's own segments (snn_input_mode='repeat'): node i of another image is "
                f"another object, so ASH-Nets' 'similar' mode does not apply; got {self.snn_input_mode!r}."
            )
