"""SpikeCLIP (arXiv 2310.06488) for transformers: a fully spiking image encoder and a spiking text encoder whose
embeddings share one space, trained by distillation from a CLIP-style teacher and used for zero-shot classification.

Layout follows transformers' CLIP: one encoder per tower, `get_image_features` / `get_text_features`, and a forward
that returns `logits_per_image` (so that transformers' `zero-shot-image-classification` pipeline runs it as it runs
CLIP). The spec is docs/model.md's SpikeCLIP section (from SpikeCLIP's public code):

* neurons: spikingjelly multi-step LIF (tau 2, threshold 1, hard reset to 0, sigmoid surrogate, detached reset), the
  membranes reset at every forward, so each call is a pure function;
* image: the image is presented at each of T steps; a 5-convolution spiking tokenizer (BatchNorm after each, max-pool in
  the last two stages) gives tokens, then blocks of spiking self-attention (no softmax: `Q K^T V` times a constant) and
  spiking MLP, each residual branch starting with a LIF; readout = mean over tokens, a learned weighting over steps,
  a linear projection;
* text: token + position embeddings of a fixed-length text, flattened, LIF -> Linear -> LIF -> Linear, and the same
  weighting over steps.

`neuron="relu"` with T = 1 gives the ANN twin of the energy comparison (`SpikeClipConfig.ann_twin`).
"""

import math
import os
import sys
from dataclasses import dataclass

import torch
from spikingjelly.activation_based import functional, neuron, surrogate
from torch import nn
from transformers import PreTrainedModel, initialization as init
from transformers.dynamic_module_utils import custom_object_save
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput, can_return_tuple

from .configuration_spikeclip import (
    SPIKECLIP_PROCESSOR_CODE_FILES,
    SpikeClipConfig,
    SpikeClipTextConfig,
    SpikeClipVisionConfig,
)
from .input_values import check_input_values
from .losses import caption_keys, contrastive_loss
from .remote_code import carry_processor_code


__all__ = [
    "SpikeClipModel",
    "SpikeClipOutput",
    "SpikeClipPreTrainedModel",
    "SpikeClipSpikeProduct",
    "SpikeClipSynapticConv2d",
    "SpikeClipSynapticLinear",
    "SpikeClipTemporalWeighting",
    "SpikeClipTextEncoder",
    "SpikeClipVisionEncoder",
]


def spiking_neuron(config, v_threshold: float | None = None) -> nn.Module:
    """A multi-step LIF layer with the tower's settings, or a ReLU in the ANN twin."""
    if config.neuron == "relu":
        return nn.ReLU()
    return neuron.LIFNode(
        tau=config.tau,
        v_threshold=config.v_threshold if v_threshold is None else v_threshold,
        v_reset=config.v_reset,
        surrogate_function=surrogate.Sigmoid(alpha=config.surrogate_alpha),
        detach_reset=config.detach_reset,
        step_mode="m",
    )


class SpikeClipTemporalWeighting(nn.Module):
    """A learned weighted sum over the T steps: softmax of one logit per step, initialised to ln(0.1 * 2^t) (SpikeCLIP's
    ln 0.1, ln 0.2, ln 0.4, ln 0.8 for T = 4), so that later steps, whose membranes have settled, weigh more."""

    def __init__(self, time_steps: int):
        super().__init__()
        self.logits = nn.Parameter(self.initial_logits(time_steps))

    @staticmethod
    def initial_logits(time_steps: int) -> torch.Tensor:
        return torch.tensor([math.log(0.1 * 2**step) for step in range(time_steps)])

    def forward(self, per_step: torch.Tensor) -> torch.Tensor:
        """(T, ...) -> (...)."""
        weights = self.logits.softmax(dim=0).to(per_step.dtype)
        return torch.tensordot(weights, per_step, dims=1)


RATE_AT_INIT = 0.1


class SpikeClipSynapticLinear(nn.Linear):
    """A linear layer fed by spikes: initialised so that inputs firing at `RATE_AT_INIT` give unit-variance currents,
    which drive the next LIF over its threshold from the start (a plain variance-preserving init leaves the text
    encoder, which has no normalisation, silent, and an untrained image encoder silent in eval mode)."""


class SpikeClipSynapticConv2d(nn.Conv2d):
    """A convolution fed by spikes, initialised as `SpikeClipSynapticLinear`."""


class SpikeClipSpikeProduct(nn.Module):
    """`a @ b` as a module of its own, so that the energy count sees the attention's products (a spike in `a` costs one
    accumulate per column of `b`)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b


class SpikeClipLinearNorm(nn.Module):
    """Linear then BatchNorm over the channels of a (T, B, N, C) sequence (BatchNorm folds into the linear at
    inference)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = SpikeClipSynapticLinear(in_features, out_features, bias=False)
        self.norm = nn.BatchNorm1d(out_features)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        projected = self.linear(hidden)
        return self.norm(projected.flatten(0, -2)).view_as(projected)


class SpikeClipConvNorm(nn.Module):
    """3x3 convolution then BatchNorm on (..., C, H, W); leading dimensions (T, B) are folded into the batch."""

    def __init__(self, in_channels: int, out_channels: int, spike_fed: bool = True):
        super().__init__()
        conv = SpikeClipSynapticConv2d if spike_fed else nn.Conv2d
        self.conv = conv(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        output = self.norm(self.conv(images.flatten(0, -4)))
        return output.view(*images.shape[:-3], *output.shape[1:])


class SpikeClipSpikingTokenizer(nn.Module):
    """Images (B, C, H, W) -> tokens (T, B, N, hidden). Stage 0 reads the image itself, which is the same at every
    step, so it runs once; stages 1-3 read spikes (LIF first), the last two max-pool by 2; a fifth convolution on the
    spikes adds a relative position embedding."""

    def __init__(self, config: SpikeClipVisionConfig):
        super().__init__()
        widths = [config.num_channels, *config.tokenizer_channels]
        self.stages = nn.ModuleList(SpikeClipConvNorm(widths[i], widths[i + 1], spike_fed=i > 0) for i in range(4))
        self.neurons = nn.ModuleList(spiking_neuron(config) for _ in range(3))
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)
        self.position_neuron = spiking_neuron(config)
        self.position = SpikeClipConvNorm(config.hidden_size, config.hidden_size)
        self.time_steps = config.time_steps

    def _pooled(self, maps: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(maps.flatten(0, 1))
        return pooled.view(*maps.shape[:2], *pooled.shape[1:])

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        first = self.stages[0](pixel_values)
        maps = first.unsqueeze(0).expand(self.time_steps, *first.shape)
        for index in range(1, 4):
            maps = self.stages[index](self.neurons[index - 1](maps.contiguous()))
            if index >= 2:
                maps = self._pooled(maps)
        maps = maps + self.position(self.position_neuron(maps))
        return maps.flatten(-2).transpose(-1, -2)  # (T, B, H' * W', hidden)


class SpikeClipSelfAttention(nn.Module):
    """Spiking self-attention: Q, K, V are spikes, so `Q (K^T V)` needs no softmax (and no multiplications on
    neuromorphic hardware); a LIF with a lower threshold turns the product back into spikes."""

    def __init__(self, config: SpikeClipVisionConfig):
        super().__init__()
        width = config.hidden_size
        self.num_heads, self.scale = config.num_attention_heads, config.attention_scale
        self.input_neuron = spiking_neuron(config)
        self.query, self.key, self.value = (SpikeClipLinearNorm(width, width) for _ in range(3))
        self.query_neuron, self.key_neuron, self.value_neuron = (spiking_neuron(config) for _ in range(3))
        self.key_value_product, self.query_product = SpikeClipSpikeProduct(), SpikeClipSpikeProduct()
        self.attention_neuron = spiking_neuron(config, v_threshold=config.attention_v_threshold)
        self.output = SpikeClipLinearNorm(width, width)

    def _heads(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden.unflatten(-1, (self.num_heads, -1)).transpose(-2, -3)  # (T, B, heads, N, d)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        spikes = self.input_neuron(hidden)
        query = self._heads(self.query_neuron(self.query(spikes)))
        key = self._heads(self.key_neuron(self.key(spikes)))
        value = self._heads(self.value_neuron(self.value(spikes)))
        attended = self.query_product(query, self.key_value_product(key.transpose(-2, -1), value)) * self.scale
        attended = attended.transpose(-2, -3).flatten(-2)  # (T, B, N, hidden)
        return self.output(self.attention_neuron(attended.contiguous()))


class SpikeClipMlp(nn.Module):
    def __init__(self, config: SpikeClipVisionConfig):
        super().__init__()
        inner = config.hidden_size * config.mlp_ratio
        self.input_neuron, self.hidden_neuron = spiking_neuron(config), spiking_neuron(config)
        self.fc1 = SpikeClipLinearNorm(config.hidden_size, inner)
        self.fc2 = SpikeClipLinearNorm(inner, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.hidden_neuron(self.fc1(self.input_neuron(hidden))))


class SpikeClipBlock(nn.Module):
    def __init__(self, config: SpikeClipVisionConfig):
        super().__init__()
        self.attention = SpikeClipSelfAttention(config)
        self.mlp = SpikeClipMlp(config)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = hidden + self.attention(hidden)
        return hidden + self.mlp(hidden)


class SpikeClipVisionEncoder(nn.Module):
    """Images -> (tokens (B, N, hidden) and readout (B, hidden), both weighted over time; per-block states)."""

    def __init__(self, config: SpikeClipVisionConfig):
        super().__init__()
        self.config = config
        self.tokenizer = SpikeClipSpikingTokenizer(config)
        self.blocks = nn.ModuleList(SpikeClipBlock(config) for _ in range(config.num_hidden_layers))
        self.temporal_weighting = SpikeClipTemporalWeighting(config.time_steps)

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool = False) -> BaseModelOutputWithPooling:
        functional.reset_net(self)
        hidden = self.tokenizer(pixel_values)
        states = [hidden]
        for block in self.blocks:
            hidden = block(hidden)
            states.append(hidden)
        functional.reset_net(self)  # do not keep membrane tensors alive between calls
        weigh = self.temporal_weighting
        return BaseModelOutputWithPooling(
            last_hidden_state=weigh(hidden),
            pooler_output=weigh(hidden.mean(dim=-2)),
            hidden_states=tuple(weigh(state) for state in states) if output_hidden_states else None,
        )


class SpikeClipTextEncoder(nn.Module):
    """Token ids (B, L <= max_position_embeddings) -> (hidden-layer firing rates (B, intermediate), embedding
    (B, hidden)). The encoder always reads `max_position_embeddings` tokens: positions with attention_mask 0, and those
    past a shorter text, read the padding token (as SpikeCLIP's encoder reads CLIP's padding), so a text gives the same
    embedding whatever it is padded to and with whatever ids under its padding. (Zeroing padding instead leaves a
    one-word text with almost no input spikes: a silent encoder, an all-zero embedding and exploding gradients.)"""

    def __init__(self, config: SpikeClipTextConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.embedding_size)
        self.position_embedding = nn.Embedding(config.max_position_embeddings, config.embedding_size)
        flat = config.max_position_embeddings * config.embedding_size
        self.input_neuron, self.hidden_neuron = spiking_neuron(config), spiking_neuron(config)
        self.fc1 = SpikeClipSynapticLinear(flat, config.intermediate_size)
        self.fc2 = SpikeClipSynapticLinear(config.intermediate_size, config.hidden_size)
        self.temporal_weighting = SpikeClipTemporalWeighting(config.time_steps)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, output_hidden_states: bool = False
    ) -> BaseModelOutputWithPooling:
        functional.reset_net(self)
        length = self.config.max_position_embeddings
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        padding = length - input_ids.shape[1]
        pad_token_id = self.config.pad_token_id or 0
        input_ids = torch.where(attention_mask.bool(), input_ids, pad_token_id)
        input_ids = nn.functional.pad(input_ids, (0, padding), value=pad_token_id)
        positions = torch.arange(length, device=input_ids.device)
        embeddings = self.token_embedding(input_ids) + self.position_embedding(positions)
        flat = embeddings.flatten(1)
        current = flat.unsqueeze(0).expand(self.config.time_steps, *flat.shape).contiguous()
        hidden = self.hidden_neuron(self.fc1(self.input_neuron(current)))
        per_step = self.fc2(hidden)
        functional.reset_net(self)
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden.mean(dim=0),
            pooler_output=self.temporal_weighting(per_step),
            hidden_states=(embeddings, hidden.mean(dim=0)) if output_hidden_states else None,
        )


@dataclass
class SpikeClipOutput(ModelOutput):
    r"""
    loss: the symmetric image-text contrastive loss (`return_loss=True`), as CLIP's.
    logits_per_image (`(num_images, num_texts)`): cosine similarities times the learned logit scale.
    logits_per_text (`(num_texts, num_images)`): their transpose.
    text_embeds (`(num_texts, projection_dim)`), image_embeds (`(num_images, projection_dim)`): L2-normalised.
    text_model_output, vision_model_output: the two towers' outputs (pooler_output before projection and
        normalisation).
    """

    loss: torch.Tensor | None = None
    logits_per_image: torch.Tensor | None = None
    logits_per_text: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None
    image_embeds: torch.Tensor | None = None
    text_model_output: BaseModelOutputWithPooling | None = None
    vision_model_output: BaseModelOutputWithPooling | None = None

    def to_tuple(self) -> tuple:
        return tuple(value.to_tuple() if isinstance(value, ModelOutput) else value for value in super().to_tuple())


def _require_tensor(name: str, value, expected: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {expected}, got {type(value).__name__}: use the "
                        "SpikeClipProcessor, or convert it with torch.tensor(...).")
    if value.dim() > 0 and value.shape[0] == 0:
        raise ValueError(f"{name} holds an empty batch (batch size 0): pass at least one sample.")
    return value


def _check_text(config: SpikeClipTextConfig, input_ids, attention_mask) -> None:
    """Shapes and dtypes only (no device sync)."""
    _require_tensor("input_ids", input_ids, "of token ids, shape (batch, length)")
    if input_ids.dtype.is_floating_point or input_ids.dtype.is_complex or input_ids.dtype == torch.bool:
        raise TypeError(f"input_ids must hold integer token ids (torch.long), got {input_ids.dtype}: tokenize the text "
                        "with the SpikeClipProcessor.")
    if input_ids.dim() != 2 or input_ids.shape[1] == 0:
        raise ValueError(f"input_ids must have shape (batch, length) with length >= 1, got {tuple(input_ids.shape)}.")
    if input_ids.shape[1] > config.max_position_embeddings:
        raise ValueError(
            f"The text has {input_ids.shape[1]} tokens but the SpikeCLIP text encoder reads a fixed "
            f"{config.max_position_embeddings}: tokenize with truncation=True and max_length="
            f"{config.max_position_embeddings} (the SpikeClipProcessor does)."
        )
    if attention_mask is not None:
        _require_tensor("attention_mask", attention_mask, f"of shape {tuple(input_ids.shape)}")
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask must have shape {tuple(input_ids.shape)}, got {tuple(attention_mask.shape)}."
            )


def _check_images(config: SpikeClipVisionConfig, pixel_values) -> None:
    shape = f"(batch, {config.num_channels}, height, width)"
    _require_tensor("pixel_values", pixel_values, f"of processed images, shape {shape}")
    if not pixel_values.dtype.is_floating_point:
        raise TypeError(f"pixel_values must be a floating-point tensor of normalised images, got {pixel_values.dtype}: "
                        "pass the images through the SpikeClipImageProcessor.")
    if pixel_values.dim() != 4 or pixel_values.shape[1] != config.num_channels:
        raise ValueError(f"pixel_values must have shape {shape}, got {tuple(pixel_values.shape)}: convert the images "
                         "to RGB and channels-first (the SpikeClipImageProcessor does).")


class SpikeClipPreTrainedModel(PreTrainedModel):
    config: SpikeClipConfig
    config_class = SpikeClipConfig
    base_model_prefix = "spikeclip"
    main_input_name = "input_ids"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = False
    _no_split_modules = ["SpikeClipBlock", "SpikeClipTextEncoder"]

    @torch.no_grad()
    def _init_weights(self, module):
        if isinstance(module, SpikeClipTemporalWeighting):
            init.copy_(module.logits, module.initial_logits(module.logits.shape[0]))
        elif isinstance(module, (SpikeClipSynapticLinear, SpikeClipSynapticConv2d)):
            fan_in = module.weight[0].numel()
            init.normal_(module.weight, mean=0.0, std=(RATE_AT_INIT * fan_in) ** -0.5)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            # Variance-preserving, so that untrained neurons already reach the threshold.
            init.normal_(module.weight, mean=0.0, std=module.in_features**-0.5)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):  # the first, fed by the image
            init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        elif isinstance(module, nn.Embedding):
            # Each embedding is initialised as a module of its own: transformers skips a custom-code module without
            # parameters of its own (the text encoder) when it initialises missing weights (meta device, loading).
            # Unit-variance token embeddings drive the first LIF over its threshold for some tokens from the start.
            token = module is self.get_input_embeddings()
            init.normal_(module.weight, mean=0.0, std=1.0 if token else self.config.initializer_range)
        elif isinstance(module, SpikeClipModel):
            init.constant_(module.logit_scale, float(self.config.logit_scale_init_value))
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)

    def save_pretrained(self, save_directory, *args, is_main_process: bool = True, **kwargs):
        """Also writes the model and processor code beside the weights, so that the folder loads with
        `trust_remote_code=True` where this package is not installed."""
        result = super().save_pretrained(save_directory, *args, is_main_process=is_main_process, **kwargs)
        if not is_main_process:  # the main process writes the folder; others reading it would race its writes
            return result
        if os.path.isfile(os.path.join(save_directory, "config.json")) and type(self).__module__ != "__main__":
            if not self.is_remote_code():
                custom_object_save(self, save_directory)
            here = os.path.dirname(os.path.abspath(sys.modules[type(self).__module__].__file__))
            carry_processor_code(save_directory, here, SPIKECLIP_PROCESSOR_CODE_FILES)
        return result

    def _values_checked_once(self, input_ids=None, pixel_values=None) -> None:
        """Value checks (vocabulary range, finite pixels) of each modality until one call has passed them; shapes only
        after that. Text and images count separately: a first text-only call leaves the first images checked."""
        checked = self.__dict__.setdefault("_values_checked", set())
        if input_ids is not None and "text" not in checked:
            check_input_values(self.config.text_config.vocab_size, input_ids=input_ids)
            checked.add("text")
        if pixel_values is not None and "image" not in checked:
            check_input_values(self.config.text_config.vocab_size, pixel_values=pixel_values)
            checked.add("image")


class SpikeClipModel(SpikeClipPreTrainedModel):
    """The dual encoder. Texts and images may come in different numbers (zero-shot: one image, many prompts)."""

    def __init__(self, config: SpikeClipConfig):
        super().__init__(config)
        self.text_model = SpikeClipTextEncoder(config.text_config)
        self.vision_model = SpikeClipVisionEncoder(config.vision_config)
        self.visual_projection = nn.Linear(config.vision_config.hidden_size, config.projection_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init_value)))
        self.post_init()

    def _output_hidden_states(self, requested: bool | None) -> bool:
        """The call's choice, else the config's (`config.output_hidden_states`), as in every transformers model."""
        return bool(self.config.output_hidden_states if requested is None else requested)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.text_model.token_embedding

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.text_model.token_embedding = value

    @can_return_tuple
    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None, **kwargs,
    ) -> BaseModelOutputWithPooling:
        """The text tower; `pooler_output` is the (not normalised) text embedding, as CLIP's in transformers 5."""
        _check_text(self.config.text_config, input_ids, attention_mask)
        if self.config.check_input_values:
            self._values_checked_once(input_ids=input_ids)
        return self.text_model(input_ids, attention_mask, self._output_hidden_states(output_hidden_states))

    @can_return_tuple
    def get_image_features(
        self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None, **kwargs
    ) -> BaseModelOutputWithPooling:
        """The image tower; `pooler_output` is the projected (not normalised) image embedding."""
        _check_images(self.config.vision_config, pixel_values)
        if self.config.check_input_values:
            self._values_checked_once(pixel_values=pixel_values)
        outputs = self.vision_model(pixel_values, self._output_hidden_states(output_hidden_states))
        return BaseModelOutputWithPooling(last_hidden_state=outputs.last_hidden_state,
                                          pooler_output=self.visual_projection(outputs.pooler_output),
                                          hidden_states=outputs.hidden_states)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        return_loss: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> SpikeClipOutput:
        """Either tower alone, or both: then `logits_per_image` (num_images, num_texts); `return_loss=True` adds the
        contrastive loss of matched pairs (image i, text i)."""
        if input_ids is None and pixel_values is None:
            raise ValueError("Nothing to encode: pass input_ids (text), pixel_values (images) or both.")
        if return_loss and (input_ids is None or pixel_values is None):
            raise ValueError("return_loss=True needs both input_ids and pixel_values (matched pairs).")
        if return_loss and input_ids.shape[0] != pixel_values.shape[0]:
            raise ValueError(f"return_loss=True needs one text per image: got {input_ids.shape[0]} texts and "
                             f"{pixel_values.shape[0]} images.")
        text_outputs = vision_outputs = text_embeds = image_embeds = None
        logits_per_text = logits_per_image = loss = None
        if input_ids is not None:
            text_outputs = self.get_text_features(input_ids, attention_mask, output_hidden_states)
            text_embeds = nn.functional.normalize(text_outputs.pooler_output, dim=-1)
        if pixel_values is not None:
            vision_outputs = self.get_image_features(pixel_values, output_hidden_states)
            image_embeds = nn.functional.normalize(vision_outputs.pooler_output, dim=-1)
        if text_embeds is not None and image_embeds is not None:
            scale = self.logit_scale.exp()
            logits_per_text = scale * text_embeds @ image_embeds.t()
            logits_per_image = logits_per_text.t()
            if return_loss:
                keys = caption_keys(input_ids, attention_mask)
                loss = contrastive_loss(image_embeds, text_embeds, scale, keys)
        # Built in one go, so that the tuple form (return_dict=False) keeps the fields' declared order, as CLIP's.
        return SpikeClipOutput(
            loss=loss,
            logits_per_image=logits_per_image,
            logits_per_text=logits_per_text,
            text_embeds=text_embeds,
            image_embeds=image_embeds,
            text_model_output=text_outputs,
            vision_model_output=vision_outputs,
        )
