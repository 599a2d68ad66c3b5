"""SpikeCLIP configuration: a fully spiking image encoder and a spiking text encoder (arXiv 2310.06488).

Three classes, as transformers' CLIP: one per tower and one that holds both plus the shared projection size. The
neuron settings (LIF, T, surrogate) live in each tower's config, because a tower is a network of its own: the ANN twin
of the energy comparison swaps them in both (`SpikeClipConfig.ann_twin`).
"""

import math

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig


__all__ = [
    "SPIKECLIP_AUTO_MAP",
    "SPIKECLIP_PROCESSOR_CODE_FILES",
    "SpikeClipConfig",
    "SpikeClipTextConfig",
    "SpikeClipVisionConfig",
]

NEURONS = ("lif", "relu")

# Every Auto class a saved SpikeCLIP folder serves through remote code (module.Class inside the folder).
SPIKECLIP_AUTO_MAP = {
    "AutoConfig": "configuration_spikeclip.SpikeClipConfig",
    "AutoModel": "modeling_spikeclip.SpikeClipModel",
    "AutoModelForZeroShotImageClassification": "modeling_spikeclip.SpikeClipModel",
    "AutoImageProcessor": {
        "pil": "image_processing_spikeclip.SpikeClipImageProcessor",
        "torchvision": "image_processing_spikeclip.SpikeClipImageProcessorTorchvision",
    },
    "AutoProcessor": "processing_spikeclip.SpikeClipProcessor",
}
# The files behind the AutoProcessor / AutoImageProcessor entries above and what they import, which every saved folder
# carries so that those entries resolve (the processor builds on ASH-Nets' input checks).
SPIKECLIP_PROCESSOR_CODE_FILES = (
    "processing_spikeclip.py",
    "processing_ashnets.py",
    "image_processing_spikeclip.py",
    "image_processing_ashnets.py",
    "image_inputs.py",
    "configuration_spikeclip.py",
    "configuration_ashnets.py",
    "tasks.py",
)


def _validate_neurons(config) -> None:
    """The spiking settings shared by both towers."""
    if config.neuron not in NEURONS:
        raise ValueError(f"Unknown neuron {config.neuron!r}; choose one of {list(NEURONS)}.")
    if config.time_steps < 1:
        raise ValueError(f"time_steps (T) must be >= 1, got {config.time_steps}.")
    if config.neuron == "relu" and config.time_steps != 1:
        raise ValueError(
            f"The ANN twin (neuron='relu') has no time dimension: set time_steps=1, got {config.time_steps}."
        )
    if config.tau <= 1.0:
        raise ValueError(f"tau must be > 1 (the LIF decay is 1/tau), got {config.tau}.")
    if config.v_threshold <= config.v_reset:
        raise ValueError(f"v_threshold ({config.v_threshold}) must be above v_reset ({config.v_reset}).")
    if config.surrogate_alpha <= 0:
        raise ValueError(f"surrogate_alpha must be > 0, got {config.surrogate_alpha}.")


@strict
class SpikeClipVisionConfig(PreTrainedConfig):
    r"""
    The spiking image encoder (Spikingformer-style). Defaults are SpikeCLIP's public code.

        image_size (`int`, defaults to 32): side of the square input images.
        num_channels (`int`, defaults to 3): image channels.
        tokenizer_channels (`list[int]`, defaults to `[48, 96, 192, 384]`): output channels of the spiking
            convolutional tokenizer's four stages; a fifth convolution (the relative position embedding) keeps the
            last width. The last two stages max-pool by 2, so a 32x32 image gives 8x8 = 64 tokens.
        hidden_size (`int`, defaults to 384): token width; must equal `tokenizer_channels[-1]`.
        num_hidden_layers (`int`, defaults to 4): spiking self-attention + spiking MLP blocks.
        num_attention_heads (`int`, defaults to 8): heads of the spiking self-attention.
        mlp_ratio (`int`, defaults to 4): the spiking MLP's hidden width over `hidden_size`.
        attention_scale (`float`, defaults to 0.125): the constant that scales `Q K^T` (there is no softmax).
        attention_v_threshold (`float`, defaults to 0.5): threshold of the LIF after the attention product.
        time_steps, tau, v_threshold, v_reset, surrogate_alpha, detach_reset, neuron: see [`SpikeClipConfig`].
        initializer_range (`float`, defaults to 0.02): std of the normal init of embeddings.
    """

    model_type = "spikeclip_vision_model"
    base_config_key = "vision_config"

    image_size: int = 32
    num_channels: int = 3
    tokenizer_channels: list[int] | tuple[int, ...] = (48, 96, 192, 384)
    hidden_size: int = 384
    num_hidden_layers: int = 4
    num_attention_heads: int = 8
    mlp_ratio: int = 4
    attention_scale: float | int = 0.125
    attention_v_threshold: float | int = 0.5
    time_steps: int = 4
    tau: float | int = 2.0
    v_threshold: float | int = 1.0
    v_reset: float | int = 0.0
    surrogate_alpha: float | int = 4.0
    detach_reset: bool = True
    neuron: str = "lif"
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        self.tokenizer_channels = list(self.tokenizer_channels)
        super().__post_init__(**kwargs)

    @property
    def num_tokens(self) -> int:
        """Tokens per image: the last two tokenizer stages halve the side (max-pool, rounding up)."""
        return math.ceil(math.ceil(self.image_size / 2) / 2) ** 2

    def validate_architecture(self):
        if len(self.tokenizer_channels) != 4 or min(self.tokenizer_channels) < 1:
            raise ValueError(f"tokenizer_channels must list 4 positive widths, got {self.tokenizer_channels}.")
        if self.tokenizer_channels[-1] != self.hidden_size:
            raise ValueError(
                f"The tokenizer's last width ({self.tokenizer_channels[-1]}) must equal hidden_size "
                f"({self.hidden_size})."
            )
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})."
            )
        for name in ("image_size", "num_channels", "num_hidden_layers", "mlp_ratio"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.attention_v_threshold <= self.v_reset:
            raise ValueError(f"attention_v_threshold must be above v_reset, got {self.attention_v_threshold}.")
        _validate_neurons(self)


@strict
class SpikeClipTextConfig(PreTrainedConfig):
    r"""
    The spiking text encoder: token and position embeddings of a fixed-length text, flattened, then
    LIF -> Linear(max_position_embeddings * embedding_size, intermediate_size) -> LIF -> Linear(intermediate_size,
    hidden_size), and a learned weighting over time steps.

        vocab_size (`int`, defaults to 30522): tokenizer vocabulary (bert-base-uncased WordPiece; SpikeCLIP's code uses
            CLIP's 49,408-token BPE).
        max_position_embeddings (`int`, defaults to 20): the fixed text length; shorter texts are padded to it.
        embedding_size (`int`, defaults to 512): width of the token and position embeddings.
        intermediate_size (`int`, defaults to 2048): width of the spiking hidden layer.
        hidden_size (`int`, defaults to 512): output width; equals [`SpikeClipConfig`]'s `projection_dim`.
        pad_token_id (`int`, defaults to 0): id of the padding token.
        time_steps, tau, v_threshold, v_reset, surrogate_alpha, detach_reset, neuron: see [`SpikeClipConfig`].
        initializer_range (`float`, defaults to 0.02): std of the position embeddings' init.
    """

    model_type = "spikeclip_text_model"
    base_config_key = "text_config"

    vocab_size: int = 30522
    max_position_embeddings: int = 20
    embedding_size: int = 512
    intermediate_size: int = 2048
    hidden_size: int = 512
    pad_token_id: int | None = 0
    time_steps: int = 4
    tau: float | int = 2.0
    v_threshold: float | int = 1.0
    v_reset: float | int = 0.0
    surrogate_alpha: float | int = 4.0
    detach_reset: bool = True
    neuron: str = "lif"
    initializer_range: float = 0.02

    def validate_architecture(self):
        for name in ("vocab_size", "max_position_embeddings", "embedding_size", "intermediate_size", "hidden_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        _validate_neurons(self)


_PRESETS = {
    # SpikeCLIP's public code: 32x32 images, T = 4, a 384-wide 4-block image encoder, 20 tokens x 512 text.
    "spikeclip-base": {},
    # CPU-sized: a 128-wide 2-block image encoder and a 1024-wide text layer, same T and image size.
    "spikeclip-tiny": {
        "projection_dim": 128,
        "vision_config": {"tokenizer_channels": [16, 32, 64, 128], "hidden_size": 128, "num_hidden_layers": 2,
                          "num_attention_heads": 4},
        "text_config": {"embedding_size": 64, "intermediate_size": 1024, "hidden_size": 128},
    },
}


@strict
class SpikeClipConfig(PreTrainedConfig):
    r"""
    Configuration of a SpikeCLIP model. Defaults give `spikeclip-base`; use [`SpikeClipConfig.from_preset`] for named
    sizes and [`SpikeClipConfig.ann_twin`] for the analog baseline.

        text_config (`dict` or `SpikeClipTextConfig`, *optional*): the text encoder.
        vision_config (`dict` or `SpikeClipVisionConfig`, *optional*): the image encoder.
        projection_dim (`int`, defaults to 512): size of the shared embedding space (the teacher's, for distillation).
        logit_scale_init_value (`float`, defaults to 2.6592): initial log of the logit scale (CLIP's log(1 / 0.07)).
        initializer_range (`float`, defaults to 0.02): std of the normal init of embeddings.
        check_input_values (`bool`, defaults to `True`): check values (token ids within the vocabulary, finite
            pixels) until one call has passed them, then shapes and dtypes only (no device syncs when training).

    Each tower's neuron settings:
        time_steps (`int`, defaults to 4): T, the steps over which the input is presented.
        tau (`float`, defaults to 2.0): LIF membrane time constant; v_threshold (1.0) and v_reset (0.0, hard reset).
        surrogate_alpha (`float`, defaults to 4.0): sharpness of the sigmoid surrogate gradient.
        detach_reset (`bool`, defaults to `True`): no gradient through the reset.
        neuron (`str`, defaults to `"lif"`): `"relu"` with `time_steps=1` is the ANN twin.
    """

    model_type = "spikeclip"
    sub_configs = {"text_config": SpikeClipTextConfig, "vision_config": SpikeClipVisionConfig}

    text_config: dict | SpikeClipTextConfig | None = None
    vision_config: dict | SpikeClipVisionConfig | None = None
    projection_dim: int = 512
    logit_scale_init_value: float | int = 2.6592
    initializer_range: float = 0.02
    check_input_values: bool = True

    def __post_init__(self, **kwargs):
        if self.text_config is None:
            self.text_config = SpikeClipTextConfig(hidden_size=self.projection_dim)
        elif isinstance(self.text_config, dict):
            self.text_config = SpikeClipTextConfig(**{"hidden_size": self.projection_dim, **self.text_config})
        if self.vision_config is None:
            self.vision_config = SpikeClipVisionConfig()
        elif isinstance(self.vision_config, dict):
            self.vision_config = SpikeClipVisionConfig(**self.vision_config)
        if getattr(self, "auto_map", None) is None and "auto_map" not in kwargs:
            self.auto_map = dict(SPIKECLIP_AUTO_MAP)
        super().__post_init__(**kwargs)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "SpikeClipConfig":
        """Build a named configuration (`"spikeclip-base"` or `"spikeclip-tiny"`), then apply `overrides` (sub-config
        dicts are merged into the preset's)."""
        if name not in _PRESETS:
            raise ValueError(f"Unknown SpikeCLIP preset {name!r}; choose one of {sorted(_PRESETS)}.")
        values = {**_PRESETS[name], **overrides}
        for key in ("text_config", "vision_config"):
            if isinstance(overrides.get(key), dict):
                values[key] = {**_PRESETS[name].get(key, {}), **overrides[key]}
        return cls(**values)

    def ann_twin(self) -> "SpikeClipConfig":
        """The same architecture with ReLU in place of every LIF and one time step: the analog baseline of the
        energy comparison."""
        values = self.to_dict()
        for key in ("text_config", "vision_config"):
            values[key] = {**values[key], "neuron": "relu", "time_steps": 1}
        return SpikeClipConfig(**{k: v for k, v in values.items() if k not in ("model_type", "transformers_version")})

    def validate_architecture(self):
        if self.projection_dim < 1:
            raise ValueError(f"projection_dim must be >= 1, got {self.projection_dim}.")
        if self.text_config.hidden_size != self.projection_dim:
            raise ValueError(
                f"text_config.hidden_size ({self.text_config.hidden_size}) must equal projection_dim "
                f"({self.projection_dim}): the text encoder's last layer writes the shared embedding."
            )
