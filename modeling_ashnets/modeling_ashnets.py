"""ASH-Nets: a CNN (continuous features) and an SNN (spike-rate features) fused with text in one transformer.

Chen et al., "Artificial-Spiking Hierarchical Networks for Vision-Language Representation Learning",
arXiv 2308.09455. Where the paper is silent this file follows the project's specification (README, "Model").
"""

import json
import os
import shutil
import sys
from dataclasses import dataclass

import torch
from spikingjelly.activation_based import layer
from torch import nn
from transformers import PreTrainedModel, initialization as init
from transformers.masking_utils import create_bidirectional_mask
from transformers.utils import ModelOutput

from .configuration_ashnets import PROCESSOR_CODE_FILES, AshNetsConfig
from .fusion_transformer import (
    AshNetsEncoder,
    AshNetsLayer,
    AshNetsPooler,
    AshNetsTextEmbeddings,
    AshNetsVisualEmbeddings,
)
from .semantic_abstract_encoder import AshNetsSemanticAbstractEncoder, AshNetsSynapticLinear
from .visual_concrete_encoder import AshNetsVisualConcreteEncoder


__all__ = [
    "AshNetsPreTrainedModel",
    "AshNetsModel",
    "AshNetsForQuestionAnswering",
    "AshNetsModelOutput",
    "AshNetsQuestionAnsweringOutput",
]

TEXT_MODALITY, IMAGE_MODALITY = 0, 1


@dataclass
class AshNetsModelOutput(ModelOutput):
    r"""
    last_hidden_state (`(batch, text_length + num_visual_tokens, hidden)`): fused states; text first.
    pooler_output (`(batch, hidden)`): pooled `[CLS]` state (image-only: pooled mean of the visual tokens).
    text_embeds (`(batch, projection_dim)`): L2-normalised text embedding, in text-only passes.
    image_embeds (`(batch, projection_dim)`): L2-normalised image embedding, in image-only passes.
    snn_firing_rates (`(batch, snn_num_layers)`): mean firing rate of each spiking block, per sample.
    snn_summary (`(batch, snn_hidden_size)`): spike rates of the last block averaged over tokens (STUA's input).
    num_visual_tokens (`int`): visual tokens per image in this pass (0 for text-only).
    hidden_states, attentions: per-layer states / attention weights when requested (attentions need eager).
    snn_spikes: each block's spikes `(T, batch, num_visual_tokens, snn_hidden_size)` when `output_spikes=True`.
    """

    last_hidden_state: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None
    image_embeds: torch.Tensor | None = None
    snn_firing_rates: torch.Tensor | None = None
    snn_summary: torch.Tensor | None = None
    num_visual_tokens: int | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    snn_spikes: tuple[torch.Tensor, ...] | None = None


@dataclass
class AshNetsQuestionAnsweringOutput(ModelOutput):
    r"""
    loss: BCE of the logits against the soft answer scores (times the number of answers, as ViLT), with labels.
    logits (`(batch, num_labels)`): one score per answer of `config.id2label`.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    snn_firing_rates: torch.Tensor | None = None
    num_visual_tokens: int | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class AshNetsSummaryRatio(nn.Module):
    """Redistributes the SNN's abstract semantics into the visual tokens: `V = F_ann + r * W rate(S)`.

    `r` is a learned per-channel ratio (initialised small); with `use_summary_ratio=False`, `V = F_ann + W rate(S)`.
    """

    def __init__(self, config: AshNetsConfig):
        super().__init__()
        self.spike_projection = nn.Linear(config.snn_hidden_size, config.hidden_size)
        self.ratio = nn.Parameter(torch.full((config.hidden_size,), float(config.summary_ratio_init)))
        self.use_ratio = config.use_summary_ratio

    def forward(self, continuous: torch.Tensor, spike_rates: torch.Tensor) -> torch.Tensor:
        abstract = self.spike_projection(spike_rates)
        return continuous + (self.ratio * abstract if self.use_ratio else abstract)


class AshNetsPreTrainedModel(PreTrainedModel):
    config: AshNetsConfig
    config_class = AshNetsConfig
    base_model_prefix = "ashnets"
    main_input_name = "pixel_values"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["AshNetsLayer", "AshNetsSpikingBlock", "AshNetsVisualConcreteEncoder"]
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_flex_attn = False
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module):
        if isinstance(module, AshNetsSynapticLinear):
            # Variance-preserving weights, so that untrained neurons already reach the threshold.
            init.normal_(module.weight, mean=0.0, std=module.in_features**-0.5)
            init.zeros_(module.bias)
        elif isinstance(module, layer.ThresholdDependentBatchNorm1d):
            # tdBN starts its scale at alpha * V_th (Zheng et al. 2021), not at 1. (It is a _BatchNorm but not an
            # nn.BatchNorm1d, so transformers' default init would not touch its statistics.)
            init.constant_(module.weight, self.config.snn_tdbn_alpha * self.config.snn_v_threshold)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)
        elif isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, AshNetsSummaryRatio):
            init.constant_(module.ratio, float(self.config.summary_ratio_init))
        elif isinstance(module, AshNetsTextEmbeddings):
            init.copy_(module.position_ids, torch.arange(module.position_ids.shape[-1]).unsqueeze(0))
        else:
            super()._init_weights(module)


    def save_pretrained(self, save_directory, *args, **kwargs):
        """Also copies the processor code next to the model code, so that the folder's `auto_map` entries for
        AutoProcessor / AutoImageProcessor always resolve; drops those entries where the code is not at hand."""
        result = super().save_pretrained(save_directory, *args, **kwargs)
        config_file = os.path.join(save_directory, "config.json")
        if self.is_remote_code() and os.path.isfile(config_file):
            here = os.path.dirname(os.path.abspath(sys.modules[type(self).__module__].__file__))
            available = all(os.path.isfile(os.path.join(here, name)) for name in PROCESSOR_CODE_FILES)
            if available:
                for name in PROCESSOR_CODE_FILES:
                    shutil.copyfile(os.path.join(here, name), os.path.join(save_directory, name))
            else:
                with open(config_file, encoding="utf-8") as handle:
                    saved = json.load(handle)
                for key in ("AutoProcessor", "AutoImageProcessor"):
                    saved.get("auto_map", {}).pop(key, None)
                with open(config_file, "w", encoding="utf-8") as handle:
                    json.dump(saved, handle, indent=2, sort_keys=True)
                    handle.write("\n")
        return result


def _check_inputs(config, input_ids, attention_mask, token_type_ids, inputs_embeds, pixel_values):
    """Raise clear errors for wrong shapes, ranges and NaNs before any work is done."""
    if input_ids is not None and inputs_embeds is not None:
        raise ValueError("Pass either input_ids or inputs_embeds, not both.")
    text = input_ids if input_ids is not None else inputs_embeds
    if text is None and pixel_values is None:
        raise ValueError("Nothing to encode: pass input_ids (text), pixel_values (images) or both.")
    if text is not None:
        if input_ids is not None and input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (batch, length), got {tuple(input_ids.shape)}.")
        if inputs_embeds is not None and (inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != config.hidden_size):
            raise ValueError(
                f"inputs_embeds must have shape (batch, length, {config.hidden_size}), got {tuple(inputs_embeds.shape)}."
            )
        if text.shape[1] == 0:
            raise ValueError("The text is empty (length 0): every sequence needs at least [CLS] and [SEP].")
        if text.shape[1] > config.max_position_embeddings:
            raise ValueError(
                f"The text has {text.shape[1]} tokens but the model takes at most {config.max_position_embeddings}: "
                "tokenize with truncation=True and max_length (the AshNetsProcessor does)."
            )
        if input_ids is not None and input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= config.vocab_size):
            raise ValueError(
                f"input_ids must lie in [0, {config.vocab_size}), got values from {int(input_ids.min())} to "
                f"{int(input_ids.max())}: was the text tokenized with another vocabulary?"
            )
        for name, tensor in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if tensor is not None and tuple(tensor.shape) != tuple(text.shape[:2]):
                raise ValueError(f"{name} must have shape {tuple(text.shape[:2])}, got {tuple(tensor.shape)}.")
    if pixel_values is not None:
        channels = config.backbone_config.num_channels
        if pixel_values.dim() == 5:
            raise ValueError(
                f"pixel_values of shape {tuple(pixel_values.shape)} holds image pairs (NLVR2), which the base model "
                "does not take: pass one image per sample as (batch, C, H, W)."
            )
        if pixel_values.dim() != 4 or pixel_values.shape[1] != channels:
            raise ValueError(
                f"pixel_values must have shape (batch, {channels}, height, width), got {tuple(pixel_values.shape)}."
            )
        if not torch.isfinite(pixel_values).all():
            raise ValueError("pixel_values contains NaN or infinite values.")
        if text is not None and text.shape[0] != pixel_values.shape[0]:
            raise ValueError(
                f"Batch sizes differ: {text.shape[0]} texts but {pixel_values.shape[0]} images; pass one image per text."
            )


class AshNetsModel(AshNetsPreTrainedModel):
    """The ASH-Nets encoder. Joint (text + image), text-only and image-only passes are all allowed."""

    def __init__(self, config: AshNetsConfig):
        super().__init__(config)
        self.text_embeddings = AshNetsTextEmbeddings(config)
        self.visual_encoder = AshNetsVisualConcreteEncoder(config)
        self.snn = AshNetsSemanticAbstractEncoder(config)
        self.summary_ratio = AshNetsSummaryRatio(config)
        self.visual_embeddings = AshNetsVisualEmbeddings(config)
        self.modality_type_embeddings = nn.Embedding(2, config.hidden_size)
        self.encoder = AshNetsEncoder(config)
        self.pooler = AshNetsPooler(config)
        self.text_projection = nn.Linear(config.hidden_size, config.projection_dim, bias=False)
        self.visual_projection = nn.Linear(config.hidden_size, config.projection_dim, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.text_embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.text_embeddings.word_embeddings = value

    def encode_image(
        self,
        pixel_values: torch.Tensor,
        snn_input_mode: str | None = None,
        image_similarity: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
        """pixels -> visual token embeddings V (B, N, hidden), firing rates, SNN summary and spikes."""
        continuous, grid = self.visual_encoder(pixel_values)
        spike_rates, firing_rates, spikes = self.snn(continuous, snn_input_mode, image_similarity)
        visual = self.summary_ratio(continuous, spike_rates)
        visual = self.visual_embeddings(visual, grid) + self.modality_type_embeddings.weight[IMAGE_MODALITY]
        return visual, firing_rates, spike_rates.mean(dim=1), spikes

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        image_similarity: torch.Tensor | None = None,
        snn_input_mode: str | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        output_spikes: bool = False,
        return_dict: bool | None = None,
    ) -> AshNetsModelOutput | tuple:
        r"""
        input_ids (`(batch, length)`): WordPiece ids of `[CLS] text [SEP]`; omit for an image-only pass.
        pixel_values (`(batch, channels, height, width)`): processed images; omit for a text-only pass.
        image_similarity (`(batch, batch)`, *optional*): similarities that choose the SNN's inputs in the
            `similar` mode (pre-training passes ITC's); defaults to the cosine of the pooled CNN features.
        snn_input_mode (`str`, *optional*): overrides `config.snn_input_mode` for this call.
        output_spikes (`bool`): also return every spiking block's binary spike tensor.
        """
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if output_attentions and self.config._attn_implementation not in (None, "eager"):
            raise ValueError(
                f"output_attentions needs eager attention, but the model uses {self.config._attn_implementation!r}: "
                "call model.set_attn_implementation('eager') first."
            )
        _check_inputs(self.config, input_ids, attention_mask, token_type_ids, inputs_embeds, pixel_values)

        sequence, masks = [], []
        has_text = input_ids is not None or inputs_embeds is not None
        if has_text:
            text = self.text_embeddings(input_ids, token_type_ids, inputs_embeds)
            text = text + self.modality_type_embeddings.weight[TEXT_MODALITY]
            sequence.append(text)
            masks.append(attention_mask if attention_mask is not None else text.new_ones(text.shape[:2]))
        firing_rates = snn_summary = spikes = None
        num_visual_tokens = 0
        if pixel_values is not None:
            pixel_values = pixel_values.to(self.visual_encoder.projection.weight.dtype)
            visual, firing_rates, snn_summary, spikes = self.encode_image(pixel_values, snn_input_mode, image_similarity)
            num_visual_tokens = visual.shape[1]
            sequence.append(visual)
            masks.append(visual.new_ones(visual.shape[:2]))

        hidden_states = torch.cat(sequence, dim=1)
        mask = torch.cat([m.to(hidden_states.dtype) for m in masks], dim=1)
        mask = create_bidirectional_mask(config=self.config, inputs_embeds=hidden_states, attention_mask=mask)
        last_hidden_state, all_hidden_states, all_attentions = self.encoder(
            hidden_states, mask, output_hidden_states=output_hidden_states, output_attentions=output_attentions
        )
        summary = last_hidden_state[:, 0] if has_text else last_hidden_state.mean(dim=1)
        pooled = self.pooler(summary)
        text_embeds = image_embeds = None
        if has_text and pixel_values is None:
            text_embeds = nn.functional.normalize(self.text_projection(pooled), dim=-1)
        if pixel_values is not None and not has_text:
            image_embeds = nn.functional.normalize(self.visual_projection(pooled), dim=-1)

        output = AshNetsModelOutput(
            last_hidden_state=last_hidden_state,
            pooler_output=pooled,
            text_embeds=text_embeds,
            image_embeds=image_embeds,
            snn_firing_rates=firing_rates,
            snn_summary=snn_summary,
            num_visual_tokens=num_visual_tokens,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
            snn_spikes=spikes if output_spikes else None,
        )
        return output if return_dict else output.to_tuple()

    def get_text_features(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        """Projected (not normalised) text-only `[CLS]` features, as CLIP's `get_text_features`."""
        pooled = self(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, return_dict=True
        ).pooler_output
        return self.text_projection(pooled)

    def get_image_features(self, pixel_values) -> torch.Tensor:
        """Projected (not normalised) image-only features, as CLIP's `get_image_features`."""
        return self.visual_projection(self(pixel_values=pixel_values, return_dict=True).pooler_output)


class AshNetsForQuestionAnswering(AshNetsPreTrainedModel):
    """VQA as multi-label classification over an answer vocabulary (`config.id2label`), BCE on soft scores."""

    def __init__(self, config: AshNetsConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.ashnets = AshNetsModel(config)
        hidden = config.hidden_size
        self.vqa_classifier = nn.Sequential(
            nn.Linear(hidden, hidden * 2),
            nn.GELU(),
            nn.LayerNorm(hidden * 2, eps=config.layer_norm_eps),
            nn.Linear(hidden * 2, config.num_labels),
        )
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        image_similarity: torch.Tensor | None = None,
        snn_input_mode: str | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> AshNetsQuestionAnsweringOutput | tuple:
        r"""
        labels (`(batch, num_labels)` float in [0, 1], or `(batch,)` int answer ids): soft VQA scores
            (min(#annotators / 3, 1)) or the index of the single correct answer.
        """
        if input_ids is None or pixel_values is None:
            raise ValueError("Visual question answering needs both input_ids (the question) and pixel_values.")
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.ashnets(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            pixel_values=pixel_values,
            image_similarity=image_similarity,
            snn_input_mode=snn_input_mode,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.vqa_classifier(outputs.pooler_output)
        loss = None
        if labels is not None:
            targets = soft_answer_targets(labels, logits.shape[0], self.num_labels).to(logits.dtype)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, targets) * self.num_labels
        output = AshNetsQuestionAnsweringOutput(
            loss=loss,
            logits=logits,
            snn_firing_rates=outputs.snn_firing_rates,
            num_visual_tokens=outputs.num_visual_tokens,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return output if return_dict else output.to_tuple()


def soft_answer_targets(labels: torch.Tensor, batch_size: int, num_labels: int) -> torch.Tensor:
    """Validate VQA labels and return soft targets (batch, num_labels): answer ids become one-hot rows."""
    if labels.shape[0] != batch_size:
        raise ValueError(f"labels hold {labels.shape[0]} samples but the batch has {batch_size}.")
    if labels.dim() == 1:
        if labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise ValueError(f"Answer-id labels of shape (batch,) must be integers, got {labels.dtype}.")
        if labels.min() < 0 or labels.max() >= num_labels:
            raise ValueError(
                f"Answer ids must lie in [0, {num_labels}), got values from {int(labels.min())} to {int(labels.max())}."
            )
        return nn.functional.one_hot(labels.long(), num_labels).float()
    if labels.dim() != 2 or labels.shape[1] != num_labels:
        raise ValueError(
            f"labels must be answer ids (batch,) or soft scores (batch, {num_labels}), got {tuple(labels.shape)}."
        )
    if not labels.dtype.is_floating_point:
        raise ValueError(f"Soft-score labels (batch, num_labels) must be floats, got {labels.dtype}.")
    if not torch.isfinite(labels).all() or labels.min() < 0 or labels.max() > 1:
        raise ValueError("Soft answer scores must be finite and lie in [0, 1].")
    return labels
