"""ASH-Nets: a CNN (continuous features) and an SNN (spike-rate features) fused with text in one transformer.

Chen et al., "Artificial-Spiking Hierarchical Networks for Vision-Language Representation Learning",
arXiv 2308.09455. Where the paper is silent this file follows the project's specification (README, "Model").
"""

import contextlib
import functools
import os
import sys
from dataclasses import dataclass

import torch
from spikingjelly.activation_based import layer
from torch import nn
from transformers import PreTrainedModel, initialization as init
from transformers.dynamic_module_utils import custom_object_save
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput, can_return_tuple, logging

from .configuration_ashnets import PROCESSOR_CODE_FILES, AshNetsConfig
from .fusion_transformer import (
    AshNetsEncoder,
    AshNetsPooler,
    AshNetsTextEmbeddings,
    AshNetsVisualEmbeddings,
)
from .input_values import check_input_values
from .losses import (
    caption_keys,
    contrastive_loss,
    hardest_negative_triplet_loss,
    image_text_matching_loss,
    info_nce,
    MlmMasking,
    mask_tokens_for_mlm,
    masked_prediction_loss,
    positive_pairs,
)
from .remote_code import carry_processor_code
from .semantic_abstract_encoder import AshNetsSemanticAbstractEncoder, AshNetsSynapticLinear
from .tasks import TASKS, task_of_head
from .visual_concrete_encoder import AshNetsVisualConcreteEncoder
from .visual_dictionary import AshNetsVisualDictionary


logger = logging.get_logger(__name__)

__all__ = [
    "AshNetsPreTrainedModel",
    "AshNetsModel",
    "AshNetsForQuestionAnswering",
    "AshNetsForRetrieval",
    "AshNetsForEntailment",
    "AshNetsForImagesAndTextClassification",
    "AshNetsForPreTraining",
    "AshNetsModelOutput",
    "AshNetsPreTrainingOutput",
    "AshNetsClassificationOutput",
    "AshNetsQuestionAnsweringOutput",
    "AshNetsRetrievalOutput",
    "ENTAILMENT_LABELS",
    "NLVR2_LABELS",
]

TEXT_MODALITY, IMAGE_MODALITY = 0, 1
# Checkpoints of the fused heads written before they dropped the contrastive layers they never used.
_UNUSED_CONTRASTIVE_KEYS = [r"summary_ratio\.ratio$", r"ashnets\.(text_projection|visual_projection|contrastive_norm)\."]
ENTAILMENT_LABELS = TASKS["entailment"].label_names  # SNLI-VE's classes, in its label order
NLVR2_LABELS = TASKS["nlvr2"].label_names


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
class AshNetsClassificationOutput(ModelOutput):
    r"""
    loss: cross-entropy of the logits against the class labels, when labels are given.
    logits (`(batch, num_labels)`): one score per class of `config.id2label`.
    snn_firing_rates (`(batch, snn_num_layers)`): mean firing rate of each spiking block (averaged over the images
        of a sample where it has several).
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    snn_firing_rates: torch.Tensor | None = None
    num_visual_tokens: int | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class AshNetsQuestionAnsweringOutput(AshNetsClassificationOutput):
    r"""
    loss: the `config.vqa_loss` of the logits against the soft answer scores (BCE times the number of answers, as
        ViLT, or softmax cross-entropy), with labels.
    logits (`(batch, num_labels)`): one score per answer of `config.id2label`.
    """


@dataclass
class AshNetsRetrievalOutput(ModelOutput):
    r"""
    loss: image-text contrastive loss plus image-text matching loss on hard negatives (`return_loss=True`).
    logits_per_image (`(num_images, num_texts)`): scaled cosine similarities (ITC), as CLIP's.
    logits_per_text (`(num_texts, num_images)`): their transpose.
    text_embeds (`(num_texts, projection_dim)`), image_embeds (`(num_images, projection_dim)`): L2-normalised.
    itm_logits (`(3 * batch, 2)`): matching logits of the positive pairs, then the hard negatives (with the loss).
    snn_firing_rates (`(num_images, snn_num_layers)`): firing rates of the image pass.
    text_model_output, vision_model_output: the text-only and image-only passes (their hidden states and
        attentions when asked), as CLIP's output holds its two towers'.
    """

    loss: torch.Tensor | None = None
    logits_per_image: torch.Tensor | None = None
    logits_per_text: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None
    image_embeds: torch.Tensor | None = None
    itm_logits: torch.Tensor | None = None
    snn_firing_rates: torch.Tensor | None = None
    text_model_output: AshNetsModelOutput | None = None
    vision_model_output: AshNetsModelOutput | None = None

    def to_tuple(self) -> tuple:
        return tuple(value.to_tuple() if isinstance(value, ModelOutput) else value for value in super().to_tuple())


class AshNetsSummaryRatio(nn.Module):
    """Redistributes the SNN's abstract semantics into the visual tokens: `V = F_ann + r * W rate(S)`.

    `r` is a learned per-channel ratio (initialised small); with `use_summary_ratio=False`, `V = F_ann + W rate(S)`.
    """

    def __init__(self, config: AshNetsConfig):
        super().__init__()
        self.spike_projection = nn.Linear(config.snn_hidden_size, config.hidden_size)
        self.ratio = None  # no parameter that the forward would not use (DDP would wait for its gradient)
        if config.use_summary_ratio:
            self.ratio = nn.Parameter(torch.full((config.hidden_size,), float(config.summary_ratio_init)))

    def forward(self, continuous: torch.Tensor, spike_rates: torch.Tensor) -> torch.Tensor:
        abstract = self.spike_projection(spike_rates)
        return continuous + (abstract if self.ratio is None else self.ratio * abstract)


class AshNetsPreTrainedModel(PreTrainedModel):
    config: AshNetsConfig
    config_class = AshNetsConfig
    base_model_prefix = "ashnets"
    main_input_name = "input_ids"  # the first argument of every forward
    # Checkpoints written before `use_summary_ratio=False` dropped the ratio it never used.
    _keys_to_ignore_on_load_unexpected = [r"summary_ratio\.ratio$"]
    input_modalities = ("image", "text")
    # What every saved folder carries for its AutoProcessor / AutoImageProcessor entries (GSHN's has its own).
    processor_code_files = PROCESSOR_CODE_FILES
    supports_gradient_checkpointing = True
    _no_split_modules = ["AshNetsLayer", "AshNetsSpikingBlock", "AshNetsVisualConcreteEncoder"]
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_flex_attn = False
    _supports_attention_backend = True

    def _validated(self, what: str, validate):
        """`validate(check_values)` for `what` ("inputs" or "labels"): with value checks until one call that passes
        `what` has passed them (unless `config.check_input_values` is False), with shape and dtype checks only after
        that, so that training never waits for the device to validate a batch."""
        checked = self.__dict__.setdefault("_values_checked", set())
        check_values = bool(self.config.check_input_values) and what not in checked
        result = validate(check_values)
        if check_values:
            checked.add(what)
        return result

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
        elif isinstance(module, AshNetsSummaryRatio) and module.ratio is not None:
            init.constant_(module.ratio, float(self.config.summary_ratio_init))
        elif isinstance(module, AshNetsForRetrieval):
            init.constant_(module.logit_scale, float(self.config.logit_scale_init_value))
        elif isinstance(module, AshNetsForPreTraining):
            init.constant_(module.logit_scale, float(self.config.logit_scale_init_value))
            init.constant_(module.stua_logit_scale, float(self.config.logit_scale_init_value))
            if module.stl_logit_scale is not None:
                init.constant_(module.stl_logit_scale, float(self.config.logit_scale_init_value))
            init.normal_(module.visual_mask_embedding, mean=0.0, std=self.config.initializer_range)
        elif isinstance(module, AshNetsVisualDictionary):
            # Empty until the first training batch fills it (a pre-training head loaded from a task checkpoint).
            for buffer in (module.embeddings, module.cluster_size, module.embedding_sum):
                init.zeros_(buffer)
            init.zeros_(module.initialized)
        elif isinstance(module, AshNetsTextEmbeddings):
            init.copy_(module.position_ids, torch.arange(module.position_ids.shape[-1]).unsqueeze(0))
        else:
            super()._init_weights(module)

    def save_pretrained(self, save_directory, *args, is_main_process: bool = True, **kwargs):
        """Also copies the processor code (and a head's pipeline code) next to the model code, so that the folder's
        `auto_map` entries for AutoProcessor / AutoImageProcessor always resolve and `pipeline(model=folder,
        trust_remote_code=True)` finds the head's pipeline (its task's, in tasks.py); drops those entries where the
        code is not at hand."""
        result = super().save_pretrained(save_directory, *args, is_main_process=is_main_process, **kwargs)
        if not is_main_process:  # the main process writes the folder; others reading it would race its writes
            return result
        config_file = os.path.join(save_directory, "config.json")
        if not os.path.isfile(config_file) or type(self).__module__ == "__main__":
            return result
        if not self.is_remote_code():
            # Heads without an Auto class (entailment, NLVR2, pre-training) carry the model code too, so that
            # `get_class_from_dynamic_module("modeling_ashnets.<Head>", folder)` works where the package is not installed.
            custom_object_save(self, save_directory)
        here = os.path.dirname(os.path.abspath(sys.modules[type(self).__module__].__file__))
        task = task_of_head(type(self).__name__)
        pipeline = task.pipeline if task else None
        files = [*self.processor_code_files, *(["pipeline_ashnets.py"] if pipeline else [])]
        extra = {}
        if pipeline:
            name, pipeline_class = pipeline
            extra["custom_pipelines"] = {
                name: {"impl": f"pipeline_ashnets.{pipeline_class}", "pt": [task.auto_class], "type": "multimodal"}
            }
        carry_processor_code(save_directory, here, files, extra)
        return result


def _require_tensor(name: str, value, expected: str) -> torch.Tensor:
    """A list, string or array where a tensor belongs is a TypeError naming the argument, not a deep AttributeError."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor {expected}, got {type(value).__name__}: "
            "use the AshNetsProcessor, or convert it with torch.tensor(...)."
        )
    return value


def _require_samples(name: str, tensor: torch.Tensor) -> None:
    if tensor.shape[0] == 0:
        raise ValueError(f"{name} holds an empty batch (batch size 0): pass at least one sample.")


def _check_input_ids(input_ids, name: str = "input_ids") -> None:
    """Token ids: an integer tensor (batch, length) with at least one sample. Shapes and dtypes only (no sync)."""
    _require_tensor(name, input_ids, "of token ids, shape (batch, length)")
    if input_ids.dtype.is_floating_point or input_ids.dtype.is_complex or input_ids.dtype == torch.bool:
        raise TypeError(
            f"{name} must hold integer token ids (torch.long), got {input_ids.dtype}: tokenize the text with the "
            f"AshNetsProcessor, or pass {name}.long() if they are ids stored as floats."
        )
    if input_ids.dim() != 2:
        raise ValueError(f"{name} must have shape (batch, length), got {tuple(input_ids.shape)}.")
    _require_samples(name, input_ids)


def _check_embeds(name: str, embeds, tokens: str, hidden_size: int) -> None:
    """Embeddings computed beforehand: a tensor (batch, tokens, hidden_size) with at least one sample."""
    shape = f"(batch, {tokens}, {hidden_size})"
    _require_tensor(name, embeds, f"of shape {shape}")
    if embeds.dim() != 3 or embeds.shape[-1] != hidden_size:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(embeds.shape)}.")
    _require_samples(name, embeds)


def _check_pixel_values(channels: int, pixel_values, num_images: int | None = None) -> None:
    """Processed images: a floating tensor (batch, channels, H, W), or (batch, num_images, channels, H, W) for the
    image-pair head. Shapes and dtypes only (no sync)."""
    pairs = num_images is not None
    shape = f"(batch, {num_images}, {channels}, height, width)" if pairs else f"(batch, {channels}, height, width)"
    _require_tensor("pixel_values", pixel_values, f"of processed images, shape {shape}")
    if not pixel_values.dtype.is_floating_point:
        raise TypeError(
            f"pixel_values must be a floating-point tensor of normalised images, got {pixel_values.dtype}: pass the "
            "images through the AshNetsImageProcessor (raw uint8 pixels are not normalised)."
        )
    if not pairs and pixel_values.dim() == 5:
        raise ValueError(
            f"pixel_values of shape {tuple(pixel_values.shape)} holds image pairs (NLVR2), which this model does not "
            "take: pass one image per sample as (batch, channels, height, width)."
        )
    if pixel_values.dim() != (5 if pairs else 4) or (pairs and pixel_values.shape[1] != num_images):
        per_statement = ", one pair of images per statement" if pairs else ""
        raise ValueError(f"pixel_values must have shape {shape}{per_statement}, got {tuple(pixel_values.shape)}.")
    if pixel_values.shape[-3] != channels:
        raise ValueError(
            f"pixel_values must have {channels} channels (config.backbone_config.num_channels) in dimension "
            f"{pixel_values.dim() - 3}, got {pixel_values.shape[-3]} channels in shape {tuple(pixel_values.shape)}: "
            "convert the images to RGB (the AshNetsImageProcessor does) or use channels-first layout."
        )
    _require_samples("pixel_values", pixel_values)


def _check_inputs(config, input_ids, attention_mask, token_type_ids, inputs_embeds, pixel_values, visual_embeds=None):
    """Raise clear errors for wrong types, shapes, ranges and NaNs before any work is done."""
    if input_ids is not None and inputs_embeds is not None:
        raise ValueError("Pass either input_ids or inputs_embeds, not both.")
    if visual_embeds is not None:
        if pixel_values is not None:
            raise ValueError("Pass either pixel_values or visual_embeds, not both.")
        _check_embeds("visual_embeds", visual_embeds, "num_visual_tokens", config.hidden_size)
    text = input_ids if input_ids is not None else inputs_embeds
    if text is None and pixel_values is None and visual_embeds is None:
        raise ValueError("Nothing to encode: pass input_ids (text), pixel_values (images) or both.")
    if text is not None:
        if input_ids is not None:
            _check_input_ids(input_ids)
        else:
            _check_embeds("inputs_embeds", inputs_embeds, "length", config.hidden_size)
        if text.shape[1] == 0:
            raise ValueError("The text is empty (length 0): every sequence needs at least [CLS] and [SEP].")
        if text.shape[1] > config.max_position_embeddings:
            raise ValueError(
                f"The text has {text.shape[1]} tokens but the model takes at most {config.max_position_embeddings}: "
                "tokenize with truncation=True and max_length (the AshNetsProcessor does)."
            )
        for name, tensor in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if tensor is not None:
                _require_tensor(name, tensor, f"of shape {tuple(text.shape[:2])}")
                if tuple(tensor.shape) != tuple(text.shape[:2]):
                    raise ValueError(f"{name} must have shape {tuple(text.shape[:2])}, got {tuple(tensor.shape)}.")
        if visual_embeds is not None and text.shape[0] != visual_embeds.shape[0]:
            raise ValueError(f"Batch sizes differ: {text.shape[0]} texts but {visual_embeds.shape[0]} visual_embeds.")
    if pixel_values is not None:
        _check_pixel_values(config.backbone_config.num_channels, pixel_values)
        if text is not None and text.shape[0] != pixel_values.shape[0]:
            raise ValueError(
                f"Batch sizes differ: {text.shape[0]} texts but {pixel_values.shape[0]} images; pass one image per text."
            )


def _check_values(config, input_ids=None, pixel_values=None) -> None:
    """Token ids within the vocabulary and finite pixels, run until one call has passed them
    (`AshNetsPreTrainedModel._validated`)."""
    check_input_values(config.vocab_size, input_ids, pixel_values)


class AshNetsModel(AshNetsPreTrainedModel):
    """The ASH-Nets encoder. Joint (text + image), text-only and image-only passes are all allowed.

    `add_projection_layers=False` leaves out the contrastive projections (text/image embeddings): the fused task
    heads never use them, and parameters without gradients would make DDP need `find_unused_parameters`."""

    def __init__(self, config: AshNetsConfig, add_projection_layers: bool = True):
        super().__init__(config)
        self.text_embeddings = AshNetsTextEmbeddings(config)
        self.visual_encoder = AshNetsVisualConcreteEncoder(config)
        # The spiking branch; None in the ANN-only ablation (use_snn=False).
        self.snn = AshNetsSemanticAbstractEncoder(config) if config.use_snn else None
        self.summary_ratio = AshNetsSummaryRatio(config) if config.use_snn else None
        self._add_visual_token_layers(config)
        self.modality_type_embeddings = nn.Embedding(2, config.hidden_size)
        self.encoder = AshNetsEncoder(config)
        self.pooler = AshNetsPooler(config)
        # CLIP-style: the projections read a LayerNormed summary instead of the tanh pooler's output.
        self.contrastive_norm = (nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
                                 if config.contrastive_summary == "layer_norm" and add_projection_layers else None)
        self.text_projection = self.visual_projection = None
        if add_projection_layers:
            self.text_projection = nn.Linear(config.hidden_size, config.projection_dim, bias=False)
            self.visual_projection = nn.Linear(config.hidden_size, config.projection_dim, bias=False)
        self.post_init()

    def _add_visual_token_layers(self, config: AshNetsConfig) -> None:
        """What turns the hybrid features into visual tokens: 2-D grid positions here (GSHN's graph and node
        embeddings in GshnModel)."""
        self.visual_embeddings = AshNetsVisualEmbeddings(config)

    def get_input_embeddings(self):
        return self.text_embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.text_embeddings.word_embeddings = value

    def encode_image(
        self,
        pixel_values: torch.Tensor | None = None,
        snn_input_mode: str | None = None,
        image_similarity: torch.Tensor | None = None,
        cnn_features: tuple[torch.Tensor, tuple[int, int]] | None = None,
        segment_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
        """pixels (or `cnn_features` computed beforehand) -> visual token embeddings (B, N, hidden), firing rates,
        SNN summary and spikes."""
        visual, grid, firing_rates, snn_summary, spikes = self.visual_features(
            pixel_values, snn_input_mode, image_similarity, cnn_features, segment_ids
        )
        return self.embed_visual(visual, grid), firing_rates, snn_summary, spikes

    def cnn_features(
        self, pixel_values: torch.Tensor, segment_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, tuple[int, int]]:
        """pixels -> the CNN's continuous features F_ann (B, N, hidden) and the grid's (rows, cols). The CNN is most
        of a step's work: passes that see the same images (pre-training, ITM) compute this once and share it."""
        if segment_ids is not None:
            raise ValueError(
                "segment_ids are GSHN's input (its visual tokens are segments); ASH-Nets reads a grid of CNN cells: "
                "leave segment_ids out, or load a GSHN checkpoint (GshnModel)."
            )
        return self.visual_encoder(pixel_values.to(self.visual_encoder.projection.weight.dtype))

    def visual_features(
        self,
        pixel_values: torch.Tensor | None = None,
        snn_input_mode: str | None = None,
        image_similarity: torch.Tensor | None = None,
        cnn_features: tuple[torch.Tensor, tuple[int, int]] | None = None,
        segment_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[int, int], torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
        """pixels (or `cnn_features` computed beforehand) -> hybrid visual features V = F_ann + r W rate(S)
        (B, N, hidden) before positions, the grid's (rows, cols), firing rates, SNN summary and spikes. (MVM
        quantises and masks V here.)"""
        continuous, grid = cnn_features if cnn_features is not None else self.cnn_features(pixel_values, segment_ids)
        if self.snn is None:  # ANN-only ablation: no spiking blocks, so no firing rates, summary or spikes
            return continuous, grid, continuous.new_zeros(continuous.shape[0], 0), None, ()
        spike_rates, firing_rates, spikes = self.snn(continuous, snn_input_mode, image_similarity)
        return self.summary_ratio(continuous, spike_rates), grid, firing_rates, spike_rates.mean(dim=1), spikes

    def embed_visual(self, visual: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Visual features (B, N, hidden) -> the fusion transformer's visual tokens (2-D positions, modality)."""
        return self.visual_embeddings(visual, grid) + self.modality_type_embeddings.weight[IMAGE_MODALITY]

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        visual_embeds: torch.Tensor | None = None,
        image_similarity: torch.Tensor | None = None,
        snn_input_mode: str | None = None,
        segment_ids: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        output_spikes: bool = False,
        return_dict: bool | None = None,
    ) -> AshNetsModelOutput | tuple:
        r"""
        input_ids (`(batch, length)`): WordPiece ids of `[CLS] text [SEP]`; omit for an image-only pass.
        pixel_values (`(batch, channels, height, width)`): processed images; omit for a text-only pass.
        visual_embeds (`(batch, num_visual_tokens, hidden_size)`, *optional*): visual tokens computed beforehand
            (`embed_visual`), instead of `pixel_values`; MVM passes masked ones. Firing rates are then not returned.
        image_similarity (`(batch, batch)`, *optional*): similarities that choose the SNN's inputs in the
            `similar` mode (pre-training passes ITC's); defaults to the cosine of the pooled CNN features.
        snn_input_mode (`str`, *optional*): overrides `config.snn_input_mode` for this call.
        segment_ids (`(batch, height, width)` int, *optional*): GSHN's panoptic segments (see `GshnModel`); ASH-Nets
            refuses them.
        output_spikes (`bool`): also return every spiking block's binary spike tensor.
        """
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if output_attentions and self.config._attn_implementation not in (None, "eager"):
            logger.warning_once(
                f"output_attentions=True needs eager attention; the model uses {self.config._attn_implementation!r}, "
                "so calls that ask for attention weights run eager attention (slower). Load the model with "
                "attn_implementation='eager' to silence this."
            )
        _check_inputs(self.config, input_ids, attention_mask, token_type_ids, inputs_embeds, pixel_values,
                      visual_embeds)
        self._validated("inputs", lambda values: values and _check_values(self.config, input_ids, pixel_values))

        sequence, masks = [], []
        has_text = input_ids is not None or inputs_embeds is not None
        if has_text:
            text = self.text_embeddings(input_ids, token_type_ids, inputs_embeds)
            text = text + self.modality_type_embeddings.weight[TEXT_MODALITY]
            sequence.append(text)
            masks.append(attention_mask if attention_mask is not None else text.new_ones(text.shape[:2]))
        firing_rates = snn_summary = spikes = None
        num_visual_tokens = 0
        if pixel_values is not None or visual_embeds is not None:
            if visual_embeds is None:
                visual, firing_rates, snn_summary, spikes = self.encode_image(
                    pixel_values, snn_input_mode, image_similarity, segment_ids=segment_ids
                )
            else:
                visual = visual_embeds
            num_visual_tokens = visual.shape[1]
            sequence.append(visual)
            masks.append(visual.new_ones(visual.shape[:2]))

        hidden_states = torch.cat(sequence, dim=1)
        mask = torch.cat([m.to(hidden_states.dtype) for m in masks], dim=1)
        if output_attentions:  # the eager fallback's additive mask, whatever the configured implementation
            mask = (1.0 - mask[:, None, None, :]) * torch.finfo(hidden_states.dtype).min
        else:
            mask = create_bidirectional_mask(config=self.config, inputs_embeds=hidden_states, attention_mask=mask)
        last_hidden_state, all_hidden_states, all_attentions = self.encoder(
            hidden_states, mask, output_hidden_states=output_hidden_states, output_attentions=output_attentions
        )
        summary = last_hidden_state[:, 0] if has_text else last_hidden_state.mean(dim=1)
        pooled = self.pooler(summary)
        text_embeds = image_embeds = None
        contrastive = self._contrastive_input(pooled, summary)
        if has_text and not num_visual_tokens and self.text_projection is not None:
            text_embeds = nn.functional.normalize(self.text_projection(contrastive), dim=-1)
        if num_visual_tokens and not has_text and self.visual_projection is not None:
            image_embeds = nn.functional.normalize(self.visual_projection(contrastive), dim=-1)

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

    def _contrastive_input(self, pooled: torch.Tensor, summary: torch.Tensor) -> torch.Tensor:
        """What the text and image projections read: the pooler's output, or the summary (the `[CLS]` state or the
        visual tokens' mean) LayerNormed (`config.contrastive_summary`)."""
        return pooled if self.contrastive_norm is None else self.contrastive_norm(summary)

    def _require_projections(self):
        if self.text_projection is None:
            raise ValueError(
                "This encoder belongs to a fused task head (VQA, entailment, NLVR2), which has no contrastive "
                "projections: load the checkpoint as AshNetsModel or AshNetsForRetrieval for text and image features."
            )

    @can_return_tuple
    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling | tuple:
        """A text-only pass whose `pooler_output` is the projected (not normalised) text embedding, as CLIP's
        `get_text_features` in transformers 5 (`output_hidden_states` / `output_attentions` pass on)."""
        self._require_projections()
        outputs = self(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                       **kwargs, return_dict=True)
        projected = self.text_projection(self._contrastive_input(outputs.pooler_output, outputs.last_hidden_state[:, 0]))
        return BaseModelOutputWithPooling(last_hidden_state=outputs.last_hidden_state, pooler_output=projected,
                                          hidden_states=outputs.hidden_states, attentions=outputs.attentions)

    @can_return_tuple
    def get_image_features(self, pixel_values: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling | tuple:
        """An image-only pass whose `pooler_output` is the projected (not normalised) image embedding, as CLIP's
        `get_image_features` in transformers 5."""
        self._require_projections()
        outputs = self(pixel_values=pixel_values, **kwargs, return_dict=True)
        projected = self.visual_projection(self._contrastive_input(outputs.pooler_output,
                                                                   outputs.last_hidden_state.mean(dim=1)))
        return BaseModelOutputWithPooling(last_hidden_state=outputs.last_hidden_state, pooler_output=projected,
                                          hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class AshNetsForQuestionAnswering(AshNetsPreTrainedModel):
    """VQA as classification over an answer vocabulary (`config.id2label`) with soft scores as targets: ViLT's
    multi-label BCE, or a softmax cross-entropy (`config.vqa_loss`)."""

    _keys_to_ignore_on_load_unexpected = _UNUSED_CONTRASTIVE_KEYS

    base_model_class = AshNetsModel  # the encoder the head wraps (GSHN's heads wrap GshnModel)

    def __init__(self, config: AshNetsConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.ashnets = self.base_model_class(config, add_projection_layers=False)
        self.vqa_classifier = classifier_head(config, config.hidden_size)
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
        segment_ids: torch.Tensor | None = None,
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
        batch_size = _batch_size(input_ids)
        targets = None if labels is None else self._validated(
            "labels", lambda values: soft_answer_targets(labels, batch_size, self.num_labels, values))
        outputs = self.ashnets(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            pixel_values=pixel_values,
            image_similarity=image_similarity,
            snn_input_mode=snn_input_mode,
            segment_ids=segment_ids,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.vqa_classifier(outputs.pooler_output)
        loss = None
        if targets is not None:
            loss = vqa_loss(logits, targets.to(device=logits.device, dtype=logits.dtype), self.config.vqa_loss)
        output = AshNetsQuestionAnsweringOutput(loss=loss, logits=logits, **_passed_on(outputs))
        return output if return_dict else output.to_tuple()


def _label_error(error: type, problem: str, expected: str) -> Exception:
    return error(f"labels {problem}; expected {expected}.")


def vqa_loss(logits: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """`bce`: ViLT's multi-label BCE on soft scores, times the number of answers. `softmax`: cross-entropy of the
    answer distribution against the soft scores normalised to sum 1; a question none of whose answers is in the
    vocabulary (all scores 0) adds no loss."""
    if kind == "bce":
        return nn.functional.binary_cross_entropy_with_logits(logits, targets) * logits.shape[-1]
    mass = targets.sum(dim=-1)
    per_question = -(targets * logits.log_softmax(dim=-1)).sum(dim=-1) / mass.clamp_min(1e-12)
    answered = (mass > 0).to(logits.dtype)
    return (per_question * answered).sum() / answered.sum().clamp_min(1.0)


def soft_answer_targets(labels, batch_size: int, num_labels: int, check_values: bool = True) -> torch.Tensor:
    """Validate VQA labels and return soft targets (batch, num_labels): answer ids become one-hot rows.
    Shapes and dtypes are checked before the model runs, so a bad batch costs no forward pass; ranges too when
    `check_values` (they read the tensor)."""
    expected = (f"answer ids in [0, {num_labels}) as an integer tensor of shape ({batch_size},), or soft scores in "
                f"[0, 1] as a float tensor of shape ({batch_size}, {num_labels})")
    if not isinstance(labels, torch.Tensor):
        raise _label_error(TypeError, f"must be a torch.Tensor, got {type(labels).__name__}", expected)
    if labels.dim() not in (1, 2) or labels.shape[0] != batch_size or (labels.dim() == 2 and labels.shape[1] != num_labels):
        raise _label_error(ValueError, f"have shape {tuple(labels.shape)}", expected)
    if labels.dim() == 1:
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise _label_error(TypeError, f"of shape (batch,) must be integer answer ids, got {labels.dtype}", expected)
        if check_values and labels.numel() and (labels.min() < 0 or labels.max() >= num_labels):
            raise _label_error(
                ValueError, f"hold answer ids from {int(labels.min())} to {int(labels.max())}", expected
            )
        return nn.functional.one_hot(labels.long(), num_labels).float()
    if not labels.dtype.is_floating_point:
        raise _label_error(TypeError, f"of shape (batch, num_labels) must be float scores, got {labels.dtype}", expected)
    if check_values and labels.numel() and (not torch.isfinite(labels).all() or labels.min() < 0 or labels.max() > 1):
        raise _label_error(ValueError, "hold soft scores that are not finite or lie outside [0, 1]", expected)
    return labels


def class_labels(labels, batch_size: int, num_labels: int, check_values: bool = True) -> torch.Tensor:
    """Validate single-label classification targets: integer class ids of shape (batch,) in [0, num_labels) (the
    range only when `check_values`)."""
    expected = f"class ids in [0, {num_labels}) as an integer tensor of shape ({batch_size},), one per sample"
    if not isinstance(labels, torch.Tensor):
        raise _label_error(TypeError, f"must be a torch.Tensor, got {type(labels).__name__}", expected)
    if labels.dim() != 1 or labels.shape[0] != batch_size:
        raise _label_error(ValueError, f"have shape {tuple(labels.shape)}", expected)
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise _label_error(TypeError, f"must be integer class ids, got {labels.dtype}", expected)
    if check_values and labels.numel() and (labels.min() < 0 or labels.max() >= num_labels):
        raise _label_error(ValueError, f"hold class ids from {int(labels.min())} to {int(labels.max())}", expected)
    return labels.long()


def _batch_size(input_ids) -> int:
    """The batch size of a head's call, read from input_ids once they are known to be a token-id tensor."""
    _check_input_ids(input_ids)
    return input_ids.shape[0]


def classifier_head(config: AshNetsConfig, in_features: int) -> nn.Sequential:
    """The task MLP on pooled states (ViLT's): Linear(in, 2h) - GELU - LayerNorm - Linear(2h, num_labels)."""
    hidden = config.hidden_size * 2
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.GELU(),
        nn.LayerNorm(hidden, eps=config.layer_norm_eps),
        nn.Linear(hidden, config.num_labels),
    )


def _passed_on(outputs: AshNetsModelOutput) -> dict:
    """The base model's outputs that every task head hands on unchanged."""
    return {
        "snn_firing_rates": outputs.snn_firing_rates,
        "num_visual_tokens": outputs.num_visual_tokens,
        "hidden_states": outputs.hidden_states,
        "attentions": outputs.attentions,
    }


def _default_class_names(config: AshNetsConfig, names: tuple[str, ...]) -> None:
    """Give a config that still has transformers' placeholder labels (LABEL_0, ...) the task's class names."""
    placeholder = all(label == f"LABEL_{index}" for index, label in config.id2label.items())
    if placeholder:
        config.id2label = dict(enumerate(names))
        config.label2id = {name: index for index, name in enumerate(names)}
    elif config.num_labels != len(names):
        raise ValueError(
            f"This head has {len(names)} classes {names}, but config.id2label has {config.num_labels}. To start from "
            f"another task's checkpoint, pass id2label={dict(enumerate(names))} and ignore_mismatched_sizes=True to "
            "from_pretrained (the example scripts: --ignore_mismatched_sizes)."
        )


class AshNetsForEntailment(AshNetsPreTrainedModel):
    """Visual entailment (SNLI-VE): does the image (premise) entail, leave open or contradict the text (hypothesis)?
    A 3-way classifier on the pooled `[CLS]` of the fused pair."""

    class_names = ENTAILMENT_LABELS

    _keys_to_ignore_on_load_unexpected = _UNUSED_CONTRASTIVE_KEYS

    base_model_class = AshNetsModel  # the encoder the head wraps (GSHN's heads wrap GshnModel)

    def __init__(self, config: AshNetsConfig):
        _default_class_names(config, self.class_names)
        super().__init__(config)
        self.num_labels = config.num_labels
        self.ashnets = self.base_model_class(config, add_projection_layers=False)
        self.classifier = classifier_head(config, config.hidden_size)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        snn_input_mode: str | None = None,
        segment_ids: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> AshNetsClassificationOutput | tuple:
        r"""
        labels (`(batch,)` int): class ids of `config.id2label` (entailment 0, neutral 1, contradiction 2).
        """
        if input_ids is None or pixel_values is None:
            raise ValueError("Visual entailment needs both input_ids (the hypothesis) and pixel_values (the premise).")
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        batch_size = _batch_size(input_ids)
        targets = None if labels is None else self._validated(
            "labels", lambda values: class_labels(labels, batch_size, self.num_labels, values))
        outputs = self.ashnets(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            pixel_values=pixel_values,
            snn_input_mode=snn_input_mode,
            segment_ids=segment_ids,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.classifier(outputs.pooler_output)
        loss = None
        if targets is not None:
            loss = nn.functional.cross_entropy(logits, targets.to(logits.device))
        output = AshNetsClassificationOutput(loss=loss, logits=logits, **_passed_on(outputs))
        return output if return_dict else output.to_tuple()


class AshNetsForImagesAndTextClassification(AshNetsPreTrainedModel):
    """NLVR2: is one statement true of a pair of images? Each (statement, image) pair is fused separately, the two
    pooled `[CLS]` states are concatenated and classified (ViLT's pair method)."""

    num_images = 2
    class_names = NLVR2_LABELS

    _keys_to_ignore_on_load_unexpected = _UNUSED_CONTRASTIVE_KEYS

    base_model_class = AshNetsModel  # the encoder the head wraps (GSHN's heads wrap GshnModel)

    def __init__(self, config: AshNetsConfig):
        _default_class_names(config, self.class_names)
        super().__init__(config)
        self.num_labels = config.num_labels
        self.ashnets = self.base_model_class(config, add_projection_layers=False)
        self.classifier = classifier_head(config, config.hidden_size * self.num_images)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        snn_input_mode: str | None = None,
        segment_ids: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> AshNetsClassificationOutput | tuple:
        r"""
        pixel_values (`(batch, 2, channels, height, width)`): the left and right image of each sample (the
            AshNetsProcessor gives this shape for `images=[[left, right], ...]`).
        labels (`(batch,)` int): 1 when the statement is true of the pair, 0 when false.
        hidden_states (each `(batch, 2 * sequence, hidden)`): per sample, the fused pass with its left image, then
            the one with its right image, concatenated along the sequence.
        attentions (each `(batch, heads, 2 * sequence, sequence)`): per sample, the left pass's query rows, then
            the right pass's (each pass attends only within itself).
        """
        if input_ids is None or pixel_values is None:
            raise ValueError("NLVR2 needs both input_ids (the statement) and pixel_values (two images per sample).")
        batch_size = _batch_size(input_ids)
        _check_pixel_values(self.config.backbone_config.num_channels, pixel_values, self.num_images)
        if batch_size != pixel_values.shape[0]:
            raise ValueError(
                f"Batch sizes differ: input_ids {tuple(input_ids.shape)} but {pixel_values.shape[0]} image pairs."
            )
        targets = None if labels is None else self._validated(
            "labels", lambda values: class_labels(labels, batch_size, self.num_labels, values))
        return_dict = return_dict if return_dict is not None else self.config.return_dict

        def both(tensor):  # the text of each sample, once for each of its images
            return None if tensor is None else tensor.repeat(self.num_images, 1)

        outputs = self.ashnets(
            input_ids=both(input_ids),
            attention_mask=both(attention_mask),
            token_type_ids=both(token_type_ids),
            pixel_values=pixel_values.transpose(0, 1).flatten(0, 1),
            snn_input_mode=snn_input_mode,
            segment_ids=None if segment_ids is None else segment_ids.transpose(0, 1).flatten(0, 1),
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        pooled = outputs.pooler_output.view(self.num_images, batch_size, -1)
        logits = self.classifier(torch.cat(tuple(pooled), dim=-1))
        loss = None
        if targets is not None:
            loss = nn.functional.cross_entropy(logits, targets.to(logits.device))
        passed_on = _passed_on(outputs)
        rates = outputs.snn_firing_rates  # (2B, layers); 0 layers without the SNN
        passed_on["snn_firing_rates"] = rates.view(self.num_images, batch_size, rates.shape[-1]).mean(dim=0)
        for name, sequence_dim in (("hidden_states", 1), ("attentions", 2)):
            if passed_on[name] is not None:  # (2B, ...) -> (B, ...): one sample's passes side by side
                passed_on[name] = tuple(torch.cat(tuple(state.unflatten(0, (self.num_images, batch_size))),
                                                  dim=sequence_dim) for state in passed_on[name])
        output = AshNetsClassificationOutput(loss=loss, logits=logits, **passed_on)
        return output if return_dict else output.to_tuple()


class AshNetsForRetrieval(AshNetsPreTrainedModel):
    """Image-text retrieval: contrastive similarities (ITC) rank the candidates, an image-text matching head (ITM)
    re-ranks the best of them. `logits_per_image` make transformers' zero-shot-image-classification pipeline work.

    Training (`return_loss=True`, pairs `(text_i, image_i)`): symmetric InfoNCE, plus ITM on the positive pairs and
    one hard negative text per image and image per text, sampled by ITC similarity. Pairs whose texts are identical
    count as positives of each other in both losses (captions repeat in small data sets).
    """

    base_model_class = AshNetsModel  # the encoder the head wraps (GSHN's heads wrap GshnModel)

    def __init__(self, config: AshNetsConfig):
        super().__init__(config)
        self.ashnets = self.base_model_class(config)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init_value)))
        self.itm_head = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        return_loss: bool | None = None,
        snn_input_mode: str | None = None,
        segment_ids: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> AshNetsRetrievalOutput | tuple:
        r"""
        input_ids (`(num_texts, length)`) and pixel_values (`(num_images, channels, height, width)`): any numbers of
            texts and images; with `return_loss=True`, as many of each, text i describing image i.
        """
        if input_ids is None or pixel_values is None:
            raise ValueError("Retrieval scores texts against images: pass both input_ids and pixel_values.")
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        _check_pixel_values(self.config.backbone_config.num_channels, pixel_values)
        _check_input_ids(input_ids)
        self._validated("inputs", lambda values: values and _check_values(self.config, input_ids, pixel_values))
        if return_loss and input_ids.shape[0] != pixel_values.shape[0]:
            raise ValueError(
                f"return_loss needs matched pairs: {input_ids.shape[0]} texts but {pixel_values.shape[0]} images."
            )
        # Once per image: the ITM pairs index these visual tokens.
        visual, firing_rates, _, _ = self.ashnets.encode_image(pixel_values, snn_input_mode=snn_input_mode,
                                                               segment_ids=segment_ids)
        recorded = {"output_attentions": output_attentions, "output_hidden_states": output_hidden_states}
        image_outputs = self.ashnets(visual_embeds=visual, **recorded, return_dict=True)
        # One word-embedding lookup shared by the text-only and ITM passes (one vocabulary-sized gradient).
        texts = {"inputs_embeds": self.ashnets.get_input_embeddings()(input_ids), "attention_mask": attention_mask,
                 "token_type_ids": token_type_ids}
        text_outputs = self.ashnets(**texts, **recorded, return_dict=True)
        image_embeds, text_embeds = image_outputs.image_embeds, text_outputs.text_embeds
        logits_per_image = self.logit_scale.exp() * image_embeds @ text_embeds.t()
        loss = itm_logits = None
        if return_loss:
            keys = caption_keys(input_ids, attention_mask)
            itm_logits, itm_loss = image_text_matching_loss(
                logits_per_image, positive_pairs(keys), fused_matcher(self, texts, visual))
            loss = contrastive_loss(image_embeds, text_embeds, self.logit_scale.exp(), keys) + itm_loss
        output = AshNetsRetrievalOutput(
            loss=loss,
            logits_per_image=logits_per_image,
            logits_per_text=logits_per_image.t(),
            text_embeds=text_embeds,
            image_embeds=image_embeds,
            itm_logits=itm_logits,
            snn_firing_rates=firing_rates,
            text_model_output=text_outputs,
            vision_model_output=image_outputs,
        )
        return output if return_dict else output.to_tuple()

    def match_logits(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        snn_input_mode: str | None = None,
        image_similarity: torch.Tensor | None = None,
        segment_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """ITM logits (batch, 2) of the aligned pairs (text i, image i); column 1 is "matches". For re-ranking."""
        fused = self.ashnets(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            pixel_values=pixel_values,
            snn_input_mode=snn_input_mode,
            image_similarity=image_similarity,
            segment_ids=segment_ids,
            return_dict=True,
        )
        return self.itm_head(fused.pooler_output)


def fused_matcher(head, texts: dict, visual_embeds: torch.Tensor):
    """The ITM loss's `match_logits(text_index, image_index)` for a head with `ashnets` and `itm_head` (retrieval,
    pre-training): the fused pass over those (text, image) pairs of the batch, with the batch's visual tokens
    (`visual_embeds`, computed once per image) indexed instead of the CNN and SNN run again on three times the
    batch. (Indexing also keeps an image's SNN `similar` inputs among the batch's other images, not its copies.)"""

    def match_logits(text_index, image_index):
        picked = {name: None if value is None else value[text_index] for name, value in texts.items()}
        return head.itm_head(head.ashnets(**picked, visual_embeds=visual_embeds[image_index],
                                          return_dict=True).pooler_output)

    return match_logits


@dataclass
class AshNetsPreTrainingOutput(ModelOutput):
    r"""
    loss: weighted sum of the objectives that are on (`config.<objective>_weight > 0`).
    itc_loss, itm_loss, mlm_loss, mvm_loss, stua_loss, stl_loss, pair_loss: each objective's loss (None when
        switched off).
    logits_per_image (`(batch, batch)`): ITC similarities of this batch (they choose the SNN's `similar` inputs).
    mlm_logits (`(batch, num_predictions, vocab_size)`): MLM predictions at `mlm_positions` of the masked text.
    mlm_positions (`(batch, num_predictions)`): the caption positions `mlm_logits` predict: with the default
        masking, round(mlm_probability x (text_length - 2)) per caption, the masked ones first (BERT's
        `masked_lm_positions`);
        every position with a masking of the caller's own.
    mvm_logits (`(batch, num_visual_tokens, visual_dictionary_size)`): MVM predictions of the dictionary entries.
    snn_firing_rates (`(batch, snn_num_layers)`): firing rates of the image-only pass.
    hidden_states, attentions: those of the fused pass of masked caption and masked image (MLM/MVM), when asked
        and MLM or MVM is on.
    """

    loss: torch.Tensor | None = None
    itc_loss: torch.Tensor | None = None
    itm_loss: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    mvm_loss: torch.Tensor | None = None
    stua_loss: torch.Tensor | None = None
    stl_loss: torch.Tensor | None = None
    pair_loss: torch.Tensor | None = None
    logits_per_image: torch.Tensor | None = None
    mlm_logits: torch.Tensor | None = None
    mlm_positions: torch.Tensor | None = None
    mvm_logits: torch.Tensor | None = None
    snn_firing_rates: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class AshNetsPredictionHead(nn.Module):
    """BERT's MLM head: dense - GELU - LayerNorm, then a decoder to `num_classes` (MLM's is tied to the word
    embeddings; MVM's predicts visual dictionary entries)."""

    def __init__(self, config: AshNetsConfig, num_classes: int):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, num_classes)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.layer_norm(nn.functional.gelu(self.dense(hidden_states))))


class AshNetsForPreTraining(AshNetsPreTrainedModel):
    """ASH-Nets pre-training on image-caption pairs: ITC, ITM (hard negatives by ITC similarity), MLM, MVM and STUA,
    plus GSHN's STL and contrastive pairs (off unless their weights are set; on in GshnConfig), each returned on its
    own and summed with the config's weights. ITC's similarities feed the SNN's `similar` input mode in the fused
    passes.

    MVM follows SOHO: a visual dictionary (moving-average codebook, straight-through estimator) quantises the hybrid
    visual features; masked tokens are replaced by a learned mask embedding and their entry is predicted. This
    project's choices: each visual token is masked on its own with `mvm_probability`, and MLM and MVM share one fused
    pass (masked text with masked image), which saves a pass over the fusion transformer.
    """

    _tied_weights_keys = {"mlm_head.decoder.weight": "ashnets.text_embeddings.word_embeddings.weight"}
    may_leave_parameters_unused = True  # a switched-off objective's head (DDP then looks for unused parameters)

    base_model_class = AshNetsModel  # the encoder the head wraps (GSHN's heads wrap GshnModel)

    def __init__(self, config: AshNetsConfig):
        for name in ("stua", "stl"):
            if not config.use_snn and getattr(config, f"{name}_weight") > 0:
                raise ValueError(
                    f"{name.upper()} aligns the SNN's summary with the text, and use_snn=False leaves the SNN out: set "
                    f"{name}_weight=0 (got {getattr(config, f'{name}_weight')})."
                )
        super().__init__(config)
        self.ashnets = self.base_model_class(config)
        self.mlm_head = AshNetsPredictionHead(config, config.vocab_size)
        self.visual_dictionary = AshNetsVisualDictionary(
            config.visual_dictionary_size, config.hidden_size, config.visual_dictionary_decay
        )
        self.visual_mask_embedding = nn.Parameter(torch.zeros(config.hidden_size))
        self.mvm_head = AshNetsPredictionHead(config, config.visual_dictionary_size)
        self.itm_head = nn.Linear(config.hidden_size, 2)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init_value)))
        self.stua_projection = nn.Linear(config.snn_hidden_size, config.projection_dim)
        self.stua_logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init_value)))
        self.stl_projection = self.stl_logit_scale = None  # Spiked Text Learning's, when it is on
        if config.stl_weight > 0:
            self.stl_projection = nn.Linear(config.snn_hidden_size, config.projection_dim)
            self.stl_logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init_value)))
        self.post_init()

    def get_output_embeddings(self):
        return self.mlm_head.decoder

    def set_output_embeddings(self, new_embeddings):
        self.mlm_head.decoder = new_embeddings

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        special_tokens_mask: torch.Tensor | None = None,
        mlm_labels: torch.Tensor | None = None,
        masked_input_ids: torch.Tensor | None = None,
        segment_ids: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> AshNetsPreTrainingOutput | tuple:
        r"""
        input_ids (`(batch, length)`) and pixel_values (`(batch, C, H, W)`): caption i describes image i.
        special_tokens_mask (`(batch, length)`): 1 for `[CLS]`, `[SEP]` and padding, which MLM never masks
            (default: positions outside `attention_mask` and the first and last real tokens).
        masked_input_ids, mlm_labels: a masking of your own (labels -100 where nothing is predicted); by default
            BERT masking with `config.mlm_probability`.

        In eval mode the random draws (masks, hard negatives) are the same at every call, so that validation losses
        compare between evaluations; the global random state is left as it was.
        """
        if input_ids is None or pixel_values is None:
            raise ValueError("Pre-training needs image-caption pairs: pass both input_ids and pixel_values.")
        _check_pixel_values(self.config.backbone_config.num_channels, pixel_values)
        if _batch_size(input_ids) != pixel_values.shape[0]:
            raise ValueError(
                f"Pass one caption per image: input_ids {tuple(input_ids.shape)}, pixel_values {tuple(pixel_values.shape)}."
            )
        for name, tensor in (("masked_input_ids", masked_input_ids), ("mlm_labels", mlm_labels)):
            if tensor is not None and tuple(_require_tensor(name, tensor, "of shape (batch, length)").shape) != tuple(
                    input_ids.shape):
                raise ValueError(f"{name} must have the shape of input_ids {tuple(input_ids.shape)}, "
                                 f"got {tuple(tensor.shape)}.")
        if masked_input_ids is not None:
            _check_input_ids(masked_input_ids, "masked_input_ids")
        self._validated("inputs", lambda values: values and (_check_values(self.config, input_ids, pixel_values),
                                                             _check_values(self.config, masked_input_ids)))
        with contextlib.nullcontext() if self.training else _fixed_random_draws(pixel_values.device):
            return self._pretraining_step(input_ids, attention_mask, token_type_ids, pixel_values, special_tokens_mask,
                                          mlm_labels, masked_input_ids, segment_ids, output_attentions,
                                          output_hidden_states, return_dict)

    def _pretraining_step(self, input_ids, attention_mask, token_type_ids, pixel_values, special_tokens_mask,
                          mlm_labels, masked_input_ids, segment_ids, output_attentions, output_hidden_states,
                          return_dict):
        config = self.config
        return_dict = return_dict if return_dict is not None else config.return_dict
        masking = None
        if config.mlm_weight > 0:
            masking = self._mlm_masking(input_ids, attention_mask, special_tokens_mask, masked_input_ids, mlm_labels)
        # One word-embedding lookup for the step's captions, the masked ones included: its backward builds a dense
        # vocabulary-sized gradient once, not once per pass (text-only, ITM, MLM).
        ids = input_ids if masking is None else torch.cat([input_ids, masking.input_ids])
        words = self.ashnets.get_input_embeddings()(ids).split(len(input_ids))
        texts = {"inputs_embeds": words[0], "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        # The CNN runs once; the image-only, ITM and MLM/MVM passes share its features (their SNN inputs differ).
        cnn_features = self.ashnets.cnn_features(pixel_values, segment_ids)
        visual, firing_rates, snn_summary, _ = self.ashnets.encode_image(
            snn_input_mode="repeat", cnn_features=cnn_features
        )
        image_outputs = self.ashnets(visual_embeds=visual, return_dict=True)
        text_outputs = self.ashnets(**texts, return_dict=True)
        image_embeds, text_embeds = image_outputs.image_embeds, text_outputs.text_embeds
        keys = caption_keys(input_ids, attention_mask)
        logits_per_image = self.logit_scale.exp() * image_embeds @ text_embeds.t()
        # Images whose captions are alike are alike: the SNN's `similar` inputs follow ITC (paper, "ITC").
        image_similarity = logits_per_image.detach()
        positives = positive_pairs(keys)
        # The fused passes' visual features, once per image: the SNN's `similar` inputs are the image's most similar
        # other images of the batch. ITM indexes them for its 3B pairs; MLM/MVM masks them.
        similar = functools.cache(lambda: self.ashnets.visual_features(
            snn_input_mode="similar", image_similarity=image_similarity, cnn_features=cnn_features)[:2])
        # MLM and MVM share one fused pass (masked caption with masked image), run at most once.
        recorded = {"output_attentions": output_attentions, "output_hidden_states": output_hidden_states}
        masked = functools.cache(lambda: self._masked_modelling(
            {**texts, "inputs_embeds": words[-1]}, masking, *similar(), recorded))

        def spiking_to_text():
            # Spiking to Text Uni-Alignment: the SNN summary moves towards its caption; the text side is detached.
            spiking = nn.functional.normalize(self.stua_projection(snn_summary), dim=-1)
            return info_nce(self.stua_logit_scale.exp() * spiking @ text_embeds.detach().t(), positives)

        def spiked_text_learning():
            # STL: the caption's token states, presented to the same SNN, are "spiked text"; the image's spiking
            # summary moves towards its caption's (and the SNN learns one spike code for both).
            text_rates, _, _ = self.ashnets.snn(text_outputs.last_hidden_state.detach(), "repeat", None)
            real = (attention_mask if attention_mask is not None else torch.ones_like(input_ids)).to(text_rates.dtype)
            text_summary = (text_rates * real.unsqueeze(-1)).sum(dim=1) / real.sum(dim=1, keepdim=True)
            spiking, spiked_text = (nn.functional.normalize(self.stl_projection(summary), dim=-1)
                                    for summary in (snn_summary, text_summary))
            return info_nce(self.stl_logit_scale.exp() * spiking @ spiked_text.t(), positives)

        objectives = {
            "itc": lambda: contrastive_loss(image_embeds, text_embeds, self.logit_scale.exp(), keys),
            "itm": lambda: image_text_matching_loss(
                logits_per_image, positives, fused_matcher(self, texts, self.ashnets.embed_visual(*similar())))[1],
            "mlm": lambda: masked()["mlm"],
            "mvm": lambda: masked()["mvm"],
            "stua": spiking_to_text,
            "stl": spiked_text_learning,
            "pair": lambda: hardest_negative_triplet_loss(image_embeds @ text_embeds.t(), positives, config.pair_margin),
        }
        weights = {name: getattr(config, f"{name}_weight") for name in objectives}
        losses = {name: objective() for name, objective in objectives.items() if weights[name] > 0}
        if not losses:
            raise ValueError("Every pre-training objective is switched off (all *_weight are 0).")
        masked_pass = masked() if {"mlm", "mvm"} & losses.keys() else {}  # holds the logits of the objectives on
        fused = masked_pass.get("fused")
        output = AshNetsPreTrainingOutput(
            loss=sum(weights[name] * value for name, value in losses.items()),
            **{f"{name}_loss": losses.get(name) for name in objectives},
            logits_per_image=logits_per_image,
            mlm_logits=masked_pass.get("mlm_logits"),
            mlm_positions=masked_pass.get("mlm_positions"),
            mvm_logits=masked_pass.get("mvm_logits"),
            snn_firing_rates=firing_rates,
            hidden_states=None if fused is None else fused.hidden_states,
            attentions=None if fused is None else fused.attentions,
        )
        return output if return_dict else output.to_tuple()

    def _mlm_masking(self, input_ids, attention_mask, special_tokens_mask, masked_input_ids, mlm_labels) -> MlmMasking:
        """BERT masking of the captions, or the caller's own (`masked_input_ids` and `mlm_labels`, predicted at every
        position)."""
        if masked_input_ids is not None and mlm_labels is not None:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand(input_ids.shape)
            return MlmMasking(masked_input_ids, mlm_labels, positions)
        if special_tokens_mask is None:
            special_tokens_mask = _default_special_tokens_mask(input_ids, attention_mask)
        config = self.config
        return mask_tokens_for_mlm(input_ids, special_tokens_mask, config.vocab_size, config.mask_token_id,
                                   config.mlm_probability)

    def _masked_modelling(self, texts: dict, masking: MlmMasking | None, visual, grid, recorded) -> dict:
        """One fused pass of the masked caption (`texts["inputs_embeds"]`; the caption itself when MLM is off) with
        the masked image (if MVM is on; `visual`, the hybrid features before positions): their losses and logits."""
        config = self.config
        if config.mvm_weight > 0:
            visual, mvm_labels = self._mask_visual_tokens(visual)
        fused = self.ashnets(**texts, visual_embeds=self.ashnets.embed_visual(visual, grid), **recorded,
                             return_dict=True)
        text_length = texts["inputs_embeds"].shape[1]
        result = {"fused": fused}
        if masking is not None:
            text_states = fused.last_hidden_state[:, :text_length]
            positions = masking.positions
            gathered = text_states.gather(1, positions.unsqueeze(-1).expand(-1, -1, text_states.shape[-1]))
            result["mlm_logits"], result["mlm_positions"] = self.mlm_head(gathered), positions
            result["mlm"] = masked_prediction_loss(result["mlm_logits"], masking.labels.gather(1, positions))
        if config.mvm_weight > 0:
            result["mvm_logits"] = self.mvm_head(fused.last_hidden_state[:, text_length:])
            result["mvm"] = masked_prediction_loss(result["mvm_logits"], mvm_labels)
        return result

    def _mask_visual_tokens(self, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantise the visual features with the dictionary, replace a random `mvm_probability` share of them by
        the mask embedding; returns (masked features, labels: the entry index where masked, -100 elsewhere). A
        fresh model in eval mode has no dictionary yet (the first training batch fills it): nothing is masked."""
        if not self.training and not self.visual_dictionary._is_initialized():
            return visual, torch.full(visual.shape[:2], -100, dtype=torch.long, device=visual.device)
        quantised, entries = self.visual_dictionary(visual)
        masked = torch.rand(visual.shape[:2], device=visual.device) < self.config.mvm_probability
        visual = torch.where(masked.unsqueeze(-1), self.visual_mask_embedding.to(visual.dtype), quantised)
        return visual, entries.masked_fill(~masked, -100)


@contextlib.contextmanager
def _fixed_random_draws(device: torch.device, seed: int = 0):
    """The same random draws at every entry (on the CPU and on `device` if it is a GPU); the random state is
    restored on exit. (`torch.manual_seed` would also seed every other GPU, which `fork_rng` does not restore.)"""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.random.default_generator.manual_seed(seed)
        if device.type == "cuda":
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


def _default_special_tokens_mask(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """`[CLS]` (first), `[SEP]` (last real token) and padding are special."""
    real = attention_mask.bool() if attention_mask is not None else torch.ones_like(input_ids, dtype=torch.bool)
    special = ~real
    special[:, 0] = True
    last = real.long().sum(dim=1) - 1
    special[torch.arange(input_ids.shape[0]), last.clamp(min=0)] = True
    return special
