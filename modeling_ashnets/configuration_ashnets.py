"""ASH-Nets configuration: one dataclass for the CNN, the SNN, the summary ratio and the fusion transformer."""

import math

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig, ResNetConfig

from .tasks import TASKS


__all__ = ["AshNetsConfig", "ASHNETS_AUTO_MAP", "PROCESSOR_CODE_FILES", "RESNET_BACKBONES"]

# Depths and block types of the ResNet family (He et al. 2016), as transformers' ResNetConfig spells them.
RESNET_BACKBONES = {
    "resnet-18": {"depths": [2, 2, 2, 2], "layer_type": "basic", "hidden_sizes": [64, 128, 256, 512]},
    "resnet-34": {"depths": [3, 4, 6, 3], "layer_type": "basic", "hidden_sizes": [64, 128, 256, 512]},
    "resnet-50": {"depths": [3, 4, 6, 3], "layer_type": "bottleneck", "hidden_sizes": [256, 512, 1024, 2048]},
    "resnet-101": {"depths": [3, 4, 23, 3], "layer_type": "bottleneck", "hidden_sizes": [256, 512, 1024, 2048]},
    "resnet-152": {"depths": [3, 8, 36, 3], "layer_type": "bottleneck", "hidden_sizes": [256, 512, 1024, 2048]},
}
CUSTOM_BACKBONE = "resnet-custom"
SNN_INPUT_MODES = ("repeat", "similar")
VQA_LOSSES = ("bce", "softmax")
CONTRASTIVE_SUMMARIES = ("pooler", "layer_norm")
SNN_NEURONS = ("lif", "relu")
SNN_SURROGATES = ("sigmoid", "atan")

# Every Auto class a saved ASH-Nets folder serves through remote code (module.Class inside the folder).
ASHNETS_AUTO_MAP = {
    "AutoConfig": "configuration_ashnets.AshNetsConfig",
    "AutoModel": "modeling_ashnets.AshNetsModel",
    **{task.auto_class: f"modeling_ashnets.{task.head}" for task in TASKS.values() if task.auto_class},
    "AutoImageProcessor": {
        "pil": "image_processing_ashnets.AshNetsImageProcessor",
        "torchvision": "image_processing_ashnets.AshNetsImageProcessorTorchvision",
    },
    "AutoProcessor": "processing_ashnets.AshNetsProcessor",
}
# The files behind the AutoProcessor / AutoImageProcessor entries above (and what they import), which every saved
# folder carries so that those entries resolve.
PROCESSOR_CODE_FILES = (
    "processing_ashnets.py",
    "image_processing_ashnets.py",
    "image_inputs.py",
    "configuration_ashnets.py",
    "tasks.py",
)

_PRESETS = {
    # The paper's model: ResNet-152, T = 10, BERT-base fusion (docs/model.md section 2.5).
    "ashnets-base": {},
    # CPU-sized: a 4-stage basic-block ResNet on 64x64 images, 2 fusion layers of width 128, T = 4.
    "ashnets-tiny": {
        "hidden_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 512,
        "max_position_embeddings": 128,
        "image_size": 64,
        "backbone": CUSTOM_BACKBONE,
        "backbone_config": {
            "embedding_size": 32,
            "hidden_sizes": [32, 64, 128, 256],
            "depths": [1, 1, 1, 1],
            "layer_type": "basic",
        },
        "snn_time_steps": 4,
        "snn_num_layers": 2,
        "snn_hidden_size": 128,
        "projection_dim": 128,
        "visual_dictionary_size": 256,
    },
}


@strict
class AshNetsConfig(PreTrainedConfig):
    r"""
    Configuration of an ASH-Nets model (arXiv 2308.09455). Defaults give `ashnets-base`; use
    [`AshNetsConfig.from_preset`] for named sizes.

    Fusion transformer (BERT names, so that a BERT checkpoint initialises it):
        vocab_size (`int`, defaults to 30522): size of the WordPiece vocabulary (bert-base-uncased).
        hidden_size (`int`, defaults to 768): width of the fusion transformer and of the visual tokens.
        num_hidden_layers (`int`, defaults to 12): number of fusion transformer layers.
        num_attention_heads (`int`, defaults to 12): attention heads per layer; must divide `hidden_size`.
        intermediate_size (`int`, defaults to 3072): width of each layer's feed-forward block.
        hidden_act (`str`, defaults to `"gelu"`): activation of the feed-forward block.
        hidden_dropout_prob (`float`, defaults to 0.1): dropout on embeddings and layer outputs.
        attention_probs_dropout_prob (`float`, defaults to 0.1): dropout on attention probabilities.
        max_position_embeddings (`int`, defaults to 512): longest text (in tokens) the model accepts.
        type_vocab_size (`int`, defaults to 2): number of text segment ids (BERT's token types).
        layer_norm_eps (`float`, defaults to 1e-12): epsilon of every LayerNorm.
        initializer_range (`float`, defaults to 0.02): std of the normal init of linear and embedding weights.
        pad_token_id (`int`, defaults to 0): id of `[PAD]`.

    Visual concrete encoder (ANN):
        backbone (`str`, defaults to `"resnet-152"`): one of `resnet-18/34/50/101/152`, or `"resnet-custom"`
            together with an explicit `backbone_config`.
        backbone_config (`dict` or `ResNetConfig`, *optional*): transformers ResNet configuration of the CNN;
            built from `backbone` when not given.
        image_size (`int`, defaults to 384): side of the square images the processor produces.
        visual_pool_size (`int`, defaults to 1): max-pool window on the last CNN stage (2 is SOHO's 2x2 pool).

    Semantic abstract encoder (SNN):
        snn_time_steps (`int`, defaults to 10): time window T over which the SNN integrates its input.
        snn_num_layers (`int`, defaults to 2): number of linear -> tdBN -> LIF blocks.
        snn_hidden_size (`int`, defaults to 768): number of spiking neurons per token in each block.
        snn_tau (`float`, defaults to 2.0): LIF membrane time constant (must be > 1).
        snn_v_threshold (`float`, defaults to 1.0): LIF firing threshold.
        snn_v_reset (`float`, defaults to 0.0): membrane potential after a spike (hard reset).
        snn_surrogate (`str`, defaults to `"sigmoid"`): surrogate gradient of the spike, `"sigmoid"` or `"atan"`.
        snn_surrogate_alpha (`float`, defaults to 4.0): sharpness of the surrogate gradient.
        snn_detach_reset (`bool`, defaults to `True`): stop gradients through the reset (as SpikeCLIP does).
        snn_tdbn_alpha (`float`, defaults to 1.0): tdBN's alpha; its scale starts at `alpha * v_threshold`.
        snn_neuron (`str`, defaults to `"lif"`): `"lif"` spiking neurons; `"relu"` gives the ANN twin (ReLU in place
            of LIF, with `snn_time_steps=1`), the analog baseline of the energy comparison.
        snn_input_mode (`str`, defaults to `"repeat"`): `"repeat"` presents the same features at every step;
            `"similar"` presents the image at step 0 and its most similar images of the batch afterwards.

        use_snn (`bool`, defaults to `True`): `False` leaves the spiking branch (SNN and summary ratio) out, so the
            visual tokens are the CNN's alone, `V = F_ann`: the ANN-only ablation. Pre-training then needs
            `stua_weight=0` (STUA aligns the SNN's summary with the text).

    Summary ratio and contrastive embeddings:
        use_summary_ratio (`bool`, defaults to `True`): `V = F_ann + r * W rate(S)` with a learned per-channel
            `r`; `False` is the paper's ablation `V = F_ann + W rate(S)`.
        summary_ratio_init (`float`, defaults to 0.1): initial value of every channel of `r` (>= 0).
        projection_dim (`int`, defaults to 256): size of the text and image embeddings used for contrastive
            learning and retrieval.
        contrastive_summary (`str`, defaults to `"pooler"`): what the text and image projections read in the
            single-modality passes: `"pooler"`, the dense + tanh pooler over the `[CLS]` state (text) or the visual
            tokens' mean (image), as ViLT's heads; or `"layer_norm"`, that summary LayerNormed (its own LayerNorm),
            as CLIP projects its final token.
        logit_scale_init_value (`float`, defaults to 2.6592): initial log of the learned contrastive temperature's
            inverse (CLIP's log(1 / 0.07)); the retrieval head's `logits_per_image` are scaled by its exponential.

    Task heads:
        vqa_loss (`str`, defaults to `"bce"`): the VQA head's loss. `"bce"` is ViLT's multi-label binary
            cross-entropy on the soft scores (times the number of answers); `"softmax"` is the cross-entropy of a
            softmax over the answers against the soft scores normalised to sum 1 (plain cross-entropy when each
            question has one answer, as in easy-VQA, where it learns faster: README, "Does it look?").

    Input checks:
        check_input_values (`bool`, defaults to `True`): a model also checks values (token ids within the
            vocabulary, finite pixels, labels within range; reading the tensors waits for the device) until one
            call has passed them, and shapes and dtypes only after that. The processor and the collator check
            every batch where data enters. `False` skips the model's value checks altogether.

    Pre-training (`AshNetsForPreTraining`):
        mask_token_id (`int`, defaults to 103): id of `[MASK]` (bert-base-uncased's).
        tie_word_embeddings (`bool`, defaults to `True`): the MLM decoder shares the word embedding matrix (BERT).
        mlm_probability (`float`, defaults to 0.15): share of text tokens masked for MLM.
        visual_dictionary_size (`int`, defaults to 2048): entries of MVM's visual dictionary (SOHO's 2,048).
        visual_dictionary_decay (`float`, defaults to 0.99): moving-average decay of the dictionary's update.
        mvm_probability (`float`, defaults to 0.15): share of visual tokens masked for MVM (each token on its own;
            this project's choice, see `AshNetsForPreTraining`).
        itc_weight, itm_weight, mlm_weight, mvm_weight, stua_weight (`float`, default 1.0 each): weights of the
            objectives in the total loss; 0 switches an objective off (it is then not computed).
        stl_weight, pair_weight (`float`, default 0.0 each; GSHN's defaults are 1.0): GSHN's objectives, which
            work on ASH-Nets too. STL (Spiked Text Learning): the caption's token states, presented to the same SNN,
            give a spiking text summary that the image's SNN summary is aligned with by InfoNCE (text guides the
            discrete semantics). Pairs: the max-violation triplet loss over the batch's image and caption embeddings.
        pair_margin (`float`, defaults to 0.2): the pairs objective's margin in cosine similarity.
    """

    model_type = "ashnets"
    sub_configs_defaults = {"backbone_config": ResNetConfig}

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int | None = 0

    backbone: str = "resnet-152"
    backbone_config: dict | PreTrainedConfig | None = None
    image_size: int = 384
    visual_pool_size: int = 1

    snn_time_steps: int = 10
    snn_num_layers: int = 2
    snn_hidden_size: int = 768
    snn_tau: float | int = 2.0
    snn_v_threshold: float | int = 1.0
    snn_v_reset: float | int = 0.0
    snn_surrogate: str = "sigmoid"
    snn_surrogate_alpha: float | int = 4.0
    snn_detach_reset: bool = True
    snn_tdbn_alpha: float | int = 1.0
    snn_input_mode: str = "repeat"
    snn_neuron: str = "lif"

    use_snn: bool = True
    use_summary_ratio: bool = True
    summary_ratio_init: float | int = 0.1
    projection_dim: int = 256
    contrastive_summary: str = "pooler"
    logit_scale_init_value: float | int = 2.6592
    vqa_loss: str = "bce"
    check_input_values: bool = True
    mask_token_id: int = 103
    tie_word_embeddings: bool = True
    mlm_probability: float | int = 0.15
    visual_dictionary_size: int = 2048
    visual_dictionary_decay: float | int = 0.99
    mvm_probability: float | int = 0.15
    itc_weight: float | int = 1.0
    itm_weight: float | int = 1.0
    mlm_weight: float | int = 1.0
    mvm_weight: float | int = 1.0
    stua_weight: float | int = 1.0
    stl_weight: float | int = 0.0
    pair_weight: float | int = 0.0
    pair_margin: float | int = 0.2

    def __post_init__(self, **kwargs):
        if isinstance(self.backbone_config, dict):
            self.backbone_config = dict(self.backbone_config)
            model_type = self.backbone_config.pop("model_type", "resnet")
            if model_type != "resnet":
                raise ValueError(
                    f"Unknown backbone model_type {model_type!r}: ASH-Nets' visual concrete encoder is a "
                    "transformers ResNet; give a ResNetConfig (model_type 'resnet')."
                )
            self.backbone_config = ResNetConfig(**self.backbone_config)
        elif self.backbone_config is None and self.backbone in RESNET_BACKBONES:
            self.backbone_config = ResNetConfig(embedding_size=64, **RESNET_BACKBONES[self.backbone])
        elif self.backbone_config is None and self.backbone == CUSTOM_BACKBONE:
            raise ValueError(f"backbone={CUSTOM_BACKBONE!r} needs an explicit backbone_config (a ResNetConfig).")
        if getattr(self, "auto_map", None) is None and "auto_map" not in kwargs:
            self.auto_map = {key: value for key, value in ASHNETS_AUTO_MAP.items()}
        super().__post_init__(**kwargs)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "AshNetsConfig":
        """Build a named configuration (`"ashnets-base"` or `"ashnets-tiny"`), then apply `overrides`."""
        presets = cls.presets()
        if name not in presets:
            raise ValueError(f"Unknown {cls.__name__} preset {name!r}; choose one of {sorted(presets)}.")
        values = {**presets[name], **overrides}
        if "backbone" in overrides and "backbone_config" not in overrides:
            values.pop("backbone_config", None)
        return cls(**values)

    @classmethod
    def presets(cls) -> dict:
        """The named configurations `from_preset` knows (a model family built on this one has its own)."""
        return _PRESETS

    @property
    def visual_grid_size(self) -> int:
        """Side of the visual token grid for `image_size` inputs: the ResNet's stride-2 steps and the optional pool
        all round up (padding, `ceil_mode`)."""
        return math.ceil(math.ceil(self.image_size / self.backbone_stride) / self.visual_pool_size)

    @property
    def backbone_stride(self) -> int:
        """Total stride of the CNN: 4 for the stem (conv + max-pool), 2 for every stage after the first (and for the
        first when it downsamples). 32 for the four-stage ResNets."""
        stages = len(self.backbone_config.hidden_sizes)
        first = 2 if getattr(self.backbone_config, "downsample_in_first_stage", False) else 1
        return 4 * first * 2 ** (stages - 1)

    @property
    def num_visual_tokens(self) -> int:
        return self.visual_grid_size**2

    @property
    def backbone_out_channels(self) -> int:
        return self.backbone_config.hidden_sizes[-1]

    def validate_architecture(self):
        """Fusion transformer sizes."""
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}); e.g. hidden_size=768 with 12 heads."
            )
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "projection_dim", "image_size", "visual_pool_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")

    def validate_backbone(self):
        """The CNN must be a known ResNet or an explicit ResNetConfig."""
        known = [*RESNET_BACKBONES, CUSTOM_BACKBONE]
        if self.backbone not in known:
            raise ValueError(f"Unknown backbone {self.backbone!r}; choose one of {known}.")
        if self.backbone_config is None:
            raise ValueError(f"backbone={CUSTOM_BACKBONE!r} needs an explicit backbone_config (a ResNetConfig).")
        if getattr(self.backbone_config, "model_type", None) != "resnet":
            raise ValueError(
                f"Unknown backbone config type {type(self.backbone_config).__name__}; give a ResNetConfig."
            )

    def validate_snn(self):
        """Semantic abstract encoder settings."""
        if self.snn_time_steps < 1:
            raise ValueError(f"snn_time_steps (T) must be >= 1, got {self.snn_time_steps}.")
        if self.snn_num_layers < 1 or self.snn_hidden_size < 1:
            raise ValueError(
                f"snn_num_layers and snn_hidden_size must be >= 1, got {self.snn_num_layers} and "
                f"{self.snn_hidden_size}."
            )
        if self.snn_neuron not in SNN_NEURONS:
            raise ValueError(f"Unknown snn_neuron {self.snn_neuron!r}; choose one of {list(SNN_NEURONS)}.")
        if self.snn_neuron == "relu" and self.snn_time_steps != 1:
            raise ValueError(
                f"The ANN twin (snn_neuron='relu') has no time dimension: set snn_time_steps=1, got {self.snn_time_steps}."
            )
        if self.snn_input_mode not in SNN_INPUT_MODES:
            raise ValueError(f"Unknown snn_input_mode {self.snn_input_mode!r}; choose one of {list(SNN_INPUT_MODES)}.")
        if self.snn_surrogate not in SNN_SURROGATES:
            raise ValueError(f"Unknown snn_surrogate {self.snn_surrogate!r}; choose one of {list(SNN_SURROGATES)}.")
        if self.snn_tau <= 1.0:
            raise ValueError(f"snn_tau must be > 1 (the LIF decay is 1/tau), got {self.snn_tau}.")
        if self.snn_v_threshold <= self.snn_v_reset:
            raise ValueError(
                f"snn_v_threshold ({self.snn_v_threshold}) must be above snn_v_reset ({self.snn_v_reset})."
            )

    def validate_heads(self):
        """Task head options."""
        if self.vqa_loss not in VQA_LOSSES:
            raise ValueError(f"Unknown vqa_loss {self.vqa_loss!r}; choose one of {list(VQA_LOSSES)}.")
        if self.contrastive_summary not in CONTRASTIVE_SUMMARIES:
            raise ValueError(
                f"Unknown contrastive_summary {self.contrastive_summary!r}; choose one of {list(CONTRASTIVE_SUMMARIES)}."
            )

    def validate_ratios(self):
        """Ratios, probabilities and scales that must not be negative."""
        if self.summary_ratio_init < 0:
            raise ValueError(f"summary_ratio_init must be >= 0, got {self.summary_ratio_init}.")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value}.")
        for name in ("mlm_probability", "mvm_probability"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}.")
        if not 0 <= self.visual_dictionary_decay < 1:
            raise ValueError(f"visual_dictionary_decay must be in [0, 1), got {self.visual_dictionary_decay}.")
        if self.visual_dictionary_size < 2:
            raise ValueError(f"visual_dictionary_size must be >= 2, got {self.visual_dictionary_size}.")
        for name in ("itc_weight", "itm_weight", "mlm_weight", "mvm_weight", "stua_weight", "stl_weight",
                     "pair_weight", "pair_margin"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 switches the objective off), got {getattr(self, name)}.")
        for name in ("snn_surrogate_alpha", "snn_tdbn_alpha"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}.")
