"""GSHN (arXiv 2501.19069): ASH-Nets whose visual tokens are panoptic segments, as graph nodes.

Each segment's mask pools the CNN's feature map into a node; a graph attention network over the nodes (segments that
touch, plus a global node linked to all) gives the continuous features `F_gat`, ASH-Nets' SNN over the same nodes the
discrete ones, merged as `V' = r * E_snn + F_gat` by ASH-Nets' summary ratio. Everything after the visual tokens (the
fusion transformer, the heads, the objectives) is ASH-Nets': the GSHN heads are ASH-Nets' heads around `GshnModel`.

Segments come in as `segment_ids` (B, H, W): each pixel's segment index in `[0, max_segments)`, or -1 for none, at the
resolution of `pixel_values` (the GshnProcessor computes and resizes them). Slots without a segment become one learned
"no segment" token each, so that every image has `max_segments + 1` visual tokens and a sample's output never depends
on its batch; the graph attention ignores those slots.
"""

from typing import NamedTuple

import torch
from torch import nn
from transformers import initialization as init

from .configuration_gshn import GSHN_PROCESSOR_CODE_FILES, GshnConfig
from .modeling_ashnets import (
    IMAGE_MODALITY,
    AshNetsForEntailment,
    AshNetsForImagesAndTextClassification,
    AshNetsForPreTraining,
    AshNetsForQuestionAnswering,
    AshNetsForRetrieval,
    AshNetsModel,
    AshNetsPreTrainedModel,
)


__all__ = [
    "GshnForEntailment",
    "GshnForImagesAndTextClassification",
    "GshnForPreTraining",
    "GshnForQuestionAnswering",
    "GshnForRetrieval",
    "GshnGraphAttention",
    "GshnModel",
    "GshnPreTrainedModel",
    "GshnSegmentGraph",
]

GEOMETRY_FEATURES = 5  # centre x, centre y, width, height, area: fractions of the image


class GshnSegmentGraph(NamedTuple):
    """The nodes' layout: what the fusion needs besides their features (it takes the place of ASH-Nets' grid)."""

    geometry: torch.Tensor  # (B, N, 5) centre x, centre y, width, height and area of each node's segment
    present: torch.Tensor  # (B, N) bool: a segment fills the slot (the global node always does)
    adjacency: torch.Tensor  # (B, N, N) bool: node i reads node j; self-loops included
    outline: torch.Tensor  # (B, N, size * size) each segment's mask inside its bounding box (0 columns: none)


def segment_one_hot(segment_ids: torch.Tensor, max_segments: int, dtype: torch.dtype) -> torch.Tensor:
    """(B, H, W) ids -> (B, max_segments, H, W) masks; pixels of id -1 belong to no mask."""
    slots = torch.arange(max_segments, device=segment_ids.device)
    return (segment_ids.unsqueeze(1) == slots[None, :, None, None]).to(dtype)


def segment_geometry(masks: torch.Tensor) -> torch.Tensor:
    """(B, S, H, W) masks -> (B, S, 5): centre, bounding-box size and area, as fractions of the image (0 for empty
    slots), so that relations ("left of") and sizes reach the fusion transformer."""
    height, width = masks.shape[-2:]
    ys = (torch.arange(height, device=masks.device, dtype=masks.dtype) + 0.5) / height
    xs = (torch.arange(width, device=masks.device, dtype=masks.dtype) + 0.5) / width
    rows, columns = masks.amax(dim=-1), masks.amax(dim=-2)  # (B, S, H) and (B, S, W): where the segment reaches
    area = masks.sum(dim=(-2, -1))
    safe = area.clamp(min=1.0)
    centre_x = (masks.sum(dim=-2) * xs).sum(dim=-1) / safe
    centre_y = (masks.sum(dim=-1) * ys).sum(dim=-1) / safe
    box_width, box_height = columns.sum(dim=-1) / width, rows.sum(dim=-1) / height  # extent along each axis
    return torch.stack([centre_x, centre_y, box_width, box_height, area / (height * width)], dim=-1)


def segment_outline(masks: torch.Tensor, size: int) -> torch.Tensor:
    """(B, S, H, W) masks -> (B, S, size * size): each mask cropped to its bounding box and resampled (bilinear) to
    size x size, so that a circle, a square and a triangle differ whatever their size and place (zeros for empty
    slots). Pure tensor operations: no per-segment loop, no device sync."""
    batch, slots, height, width = masks.shape
    if size == 0:
        return masks.new_zeros(batch, slots, 0)

    def extent(reach: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        # first and last covered index -> the box's edges in grid_sample's coordinates (-1 and 1: the image's edges)
        first = reach.argmax(dim=-1)
        last = length - 1 - reach.flip(-1).argmax(dim=-1)
        return (2 * first / length - 1).to(masks.dtype), (2 * (last + 1) / length - 1).to(masks.dtype)

    left, right = extent(masks.amax(dim=-2), width)
    top, bottom = extent(masks.amax(dim=-1), height)
    theta = masks.new_zeros(batch * slots, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = ((right - left) / 2).flatten(), ((right + left) / 2).flatten()
    theta[:, 1, 1], theta[:, 1, 2] = ((bottom - top) / 2).flatten(), ((bottom + top) / 2).flatten()
    grid = nn.functional.affine_grid(theta, [batch * slots, 1, size, size], align_corners=False)
    outline = nn.functional.grid_sample(masks.reshape(batch * slots, 1, height, width), grid, align_corners=False)
    present = masks.flatten(2).amax(dim=-1, keepdim=True)  # an empty slot's "box" would sample its corner
    return outline.view(batch, slots, size * size) * present


def segment_adjacency(masks: torch.Tensor) -> torch.Tensor:
    """(B, S, H, W) masks -> (B, S, S) bool: segments whose pixels touch (8-neighbourhood), and each present one
    with itself."""
    grown = nn.functional.max_pool2d(masks, kernel_size=3, stride=1, padding=1)
    touching = torch.einsum("bihw,bjhw->bij", grown, masks) > 0
    return touching | touching.transpose(1, 2)


class GshnGraphAttentionLayer(nn.Module):
    """One graph attention layer (Velickovic et al. 2018, GATv1) over a dense adjacency: `f = x W`,
    `a_ij = softmax_j LeakyReLU(a_t . f_i + a_s . f_j)` over i's neighbours j (itself included), `x'_i = sum_j a_ij
    f_j` per head, heads concatenated, plus a bias: PyTorch Geometric's `GATConv(concat=True)` on the same graph
    (tests/test_gshn.py checks the equality).

    Why dense rather than `GATConv`: an image has at most `max_segments + 1` nodes, so a padded (B, N, N) adjacency
    costs little, needs no `nonzero()` (no device sync) and keeps static shapes; docs/model.md has the measurement."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float, negative_slope: float = 0.2):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, hidden_size // num_heads
        self.linear = nn.Linear(hidden_size, hidden_size, bias=False)
        self.attention_source = nn.Parameter(torch.empty(num_heads, self.head_dim))
        self.attention_target = nn.Parameter(torch.empty(num_heads, self.head_dim))
        self.bias = nn.Parameter(torch.zeros(hidden_size))
        self.negative_slope = negative_slope
        self.dropout = nn.Dropout(dropout)

    def forward(self, nodes: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        batch, num_nodes, _ = nodes.shape
        features = self.linear(nodes).view(batch, num_nodes, self.num_heads, self.head_dim).transpose(1, 2)
        source = (features * self.attention_source[:, None]).sum(dim=-1)  # (B, heads, N): node j as the sender
        target = (features * self.attention_target[:, None]).sum(dim=-1)  # node i as the receiver
        scores = nn.functional.leaky_relu(target.unsqueeze(-1) + source.unsqueeze(-2), self.negative_slope)
        scores = scores.masked_fill(~adjacency.unsqueeze(1), torch.finfo(scores.dtype).min)
        weights = self.dropout(scores.softmax(dim=-1))  # (B, heads, i, j)
        return (weights @ features).transpose(1, 2).reshape(batch, num_nodes, -1) + self.bias


class GshnGraphAttention(nn.Module):
    """The continuous node encoder: `graph_num_layers` graph attention layers, each in a residual block with ELU,
    dropout and LayerNorm (the transformer's post-norm, so that the nodes keep the fusion's scale)."""

    def __init__(self, config: GshnConfig):
        super().__init__()
        self.layers = nn.ModuleList(
            GshnGraphAttentionLayer(config.hidden_size, config.graph_num_heads, config.graph_dropout)
            for _ in range(config.graph_num_layers)
        )
        self.norms = nn.ModuleList(
            nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) for _ in range(config.graph_num_layers)
        )
        self.dropout = nn.Dropout(config.graph_dropout)

    def forward(self, nodes: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        for layer, norm in zip(self.layers, self.norms):
            nodes = norm(nodes + self.dropout(nn.functional.elu(layer(nodes, adjacency))))
        return nodes


class GshnNodeEmbeddings(nn.Module):
    """Nodes (B, N, hidden) -> the fusion transformer's visual tokens: each segment's geometry (centre, size, area)
    and outline projected and added, LayerNorm, dropout; empty slots become the learned "no segment" token."""

    def __init__(self, config: GshnConfig):
        super().__init__()
        self.geometry = nn.Linear(GEOMETRY_FEATURES, config.hidden_size)
        size = config.segment_outline_size
        self.outline = nn.Linear(size * size, config.hidden_size) if size > 0 else None
        self.empty_segment = nn.Parameter(torch.zeros(config.hidden_size))
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, nodes: torch.Tensor, graph: GshnSegmentGraph) -> torch.Tensor:
        tokens = nodes + self.geometry(graph.geometry.to(nodes.dtype))
        if self.outline is not None:
            tokens = tokens + self.outline(graph.outline.to(nodes.dtype))
        tokens = self.dropout(self.layer_norm(tokens))
        return torch.where(graph.present.unsqueeze(-1), tokens, self.empty_segment.to(tokens.dtype))


class GshnPreTrainedModel(AshNetsPreTrainedModel):
    config: GshnConfig
    config_class = GshnConfig
    processor_code_files = GSHN_PROCESSOR_CODE_FILES
    _no_split_modules = [*AshNetsPreTrainedModel._no_split_modules, "GshnGraphAttention"]

    @torch.no_grad()
    def _init_weights(self, module):
        # Parameters of GSHN's own modules; their Linear and LayerNorm children get ASH-Nets' (BERT's) init.
        if isinstance(module, GshnGraphAttentionLayer):
            init.normal_(module.attention_source, mean=0.0, std=self.config.initializer_range)
            init.normal_(module.attention_target, mean=0.0, std=self.config.initializer_range)
            init.zeros_(module.bias)
        elif isinstance(module, GshnNodeEmbeddings):
            init.normal_(module.empty_segment, mean=0.0, std=self.config.initializer_range)
        else:
            super()._init_weights(module)


def _check_segment_ids(segment_ids, pixel_values: torch.Tensor) -> None:
    """Shapes and dtype at the boundary (no device sync): one id map per image, at the image's resolution."""
    if segment_ids is None:
        raise ValueError(
            "GSHN's visual tokens are segments: pass segment_ids (batch, height, width) with pixel_values. The "
            "GshnProcessor computes them (from the pixels, superpixels or a panoptic model)."
        )
    if not isinstance(segment_ids, torch.Tensor):
        raise TypeError(f"segment_ids must be a torch.Tensor (batch, height, width), got {type(segment_ids).__name__}.")
    if segment_ids.dtype.is_floating_point or segment_ids.dtype.is_complex or segment_ids.dtype == torch.bool:
        raise TypeError(
            f"segment_ids must hold integer segment indices (-1 for no segment), got dtype {segment_ids.dtype}: "
            "convert with .long()."
        )
    expected = (pixel_values.shape[0], *pixel_values.shape[-2:])
    if tuple(segment_ids.shape) != expected:
        raise ValueError(
            f"segment_ids must be (batch, height, width) = {expected} to match pixel_values "
            f"{tuple(pixel_values.shape)}, got {tuple(segment_ids.shape)}: resize the id maps with nearest "
            "neighbours to the processed image size (segments.resize_segment_ids; the GshnProcessor does this)."
        )


def _check_segment_values(segment_ids: torch.Tensor, max_segments: int) -> None:
    """Ids in [-1, max_segments) and at least one segment per image (reads the tensor: once per model)."""
    low, high = int(segment_ids.min()), int(segment_ids.max())
    if low < -1 or high >= max_segments:
        raise ValueError(
            f"segment_ids must lie in [-1, {max_segments}) (max_segments of the config; -1 for no segment), got "
            f"values in [{low}, {high}]: merge or drop segments beyond the limit (segments.limit_segments)."
        )
    empty = (segment_ids.flatten(1) < 0).all(dim=1).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"Images {empty} have no segment (segment_ids are all -1): every image needs at least one.")


class GshnModel(GshnPreTrainedModel, AshNetsModel):
    """The GSHN encoder: ASH-Nets' encoder with segment nodes, graph attention and the SNN over the nodes as its
    visual tokens. Joint, text-only and image-only passes are allowed, as in `AshNetsModel`."""

    def _add_visual_token_layers(self, config: GshnConfig) -> None:
        self.graph_attention = GshnGraphAttention(config) if config.graph_num_layers > 0 else None
        self.node_embeddings = GshnNodeEmbeddings(config)

    def cnn_features(
        self, pixel_values: torch.Tensor, segment_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, GshnSegmentGraph]:
        """pixels and segments -> node features (B, N, hidden), each segment's mask pooling the CNN's projected map
        (the share of each cell its pixels cover weighs the cell), and the nodes' graph. With `graph_global_node`,
        node 0 is the whole image's mean."""
        _check_segment_ids(segment_ids, pixel_values)
        self._validated("segments", lambda values: values and _check_segment_values(
            segment_ids, self.config.max_segments))
        cells, (rows, columns) = self.visual_encoder(pixel_values.to(self.visual_encoder.projection.weight.dtype))
        masks = segment_one_hot(segment_ids, self.config.max_segments, cells.dtype)  # (B, S, H, W)
        shares = nn.functional.adaptive_avg_pool2d(masks, (rows, columns)).flatten(2)  # (B, S, cells)
        nodes = shares @ cells / shares.sum(dim=-1, keepdim=True).clamp(min=1e-6)
        present = masks.flatten(2).amax(dim=-1) > 0
        geometry = segment_geometry(masks)
        outline = segment_outline(masks, self.config.segment_outline_size)
        adjacency = segment_adjacency(masks) & present.unsqueeze(1)
        adjacency |= torch.eye(adjacency.shape[-1], dtype=torch.bool, device=adjacency.device)  # empty slots too
        if self.config.graph_global_node:
            batch = nodes.shape[0]
            nodes = torch.cat([cells.mean(dim=1, keepdim=True), nodes], dim=1)
            whole = geometry.new_tensor([0.5, 0.5, 1.0, 1.0, 1.0]).expand(batch, 1, GEOMETRY_FEATURES)
            geometry = torch.cat([whole, geometry], dim=1)
            outline = torch.cat([outline.new_ones(batch, 1, outline.shape[-1]), outline], dim=1)  # the whole image
            present = torch.cat([present.new_ones(batch, 1), present], dim=1)
            linked = torch.cat([present[:, None, 1:], adjacency], dim=1)  # row 0: the global node reads every segment
            column = present.unsqueeze(-1)  # column 0: every segment reads it (and it reads itself)
            adjacency = torch.cat([column, linked], dim=2)
        return nodes, GshnSegmentGraph(geometry, present, adjacency, outline)

    def visual_features(
        self,
        pixel_values: torch.Tensor | None = None,
        snn_input_mode: str | None = None,
        image_similarity: torch.Tensor | None = None,
        cnn_features: tuple[torch.Tensor, GshnSegmentGraph] | None = None,
        segment_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, GshnSegmentGraph, torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
        """-> `V' = r * E_snn + F_gat` (B, N, hidden), the nodes' graph, firing rates, SNN summary (mean spike rate
        over the image's segments) and spikes. The SNN always reads the image's own nodes (`snn_input_mode` and
        `image_similarity` are ASH-Nets' and ignored: another image's node i is another object)."""
        nodes, graph = cnn_features if cnn_features is not None else self.cnn_features(pixel_values, segment_ids)
        continuous = nodes if self.graph_attention is None else self.graph_attention(nodes, graph.adjacency)
        if self.snn is None:
            return continuous, graph, continuous.new_zeros(continuous.shape[0], 0), None, ()
        spike_rates, firing_rates, spikes = self.snn(nodes, "repeat", None)
        weights = graph.present.to(spike_rates.dtype).unsqueeze(-1)
        summary = (spike_rates * weights).sum(dim=1) / weights.sum(dim=1)
        return self.summary_ratio(continuous, spike_rates), graph, firing_rates, summary, spikes

    def embed_visual(self, visual: torch.Tensor, graph: GshnSegmentGraph) -> torch.Tensor:
        """Node features (B, N, hidden) -> the fusion transformer's visual tokens (geometry, empty slots, modality)."""
        return self.node_embeddings(visual, graph) + self.modality_type_embeddings.weight[IMAGE_MODALITY]


class GshnForQuestionAnswering(GshnPreTrainedModel, AshNetsForQuestionAnswering):
    """ASH-Nets' VQA head around `GshnModel`; pass `segment_ids` with `pixel_values`."""

    base_model_class = GshnModel


class GshnForEntailment(GshnPreTrainedModel, AshNetsForEntailment):
    """ASH-Nets' visual entailment head around `GshnModel`."""

    base_model_class = GshnModel


class GshnForImagesAndTextClassification(GshnPreTrainedModel, AshNetsForImagesAndTextClassification):
    """ASH-Nets' NLVR2 head around `GshnModel`; `segment_ids` are (batch, 2, height, width)."""

    base_model_class = GshnModel


class GshnForRetrieval(GshnPreTrainedModel, AshNetsForRetrieval):
    """ASH-Nets' retrieval head (ITC ranking, ITM re-ranking) around `GshnModel`."""

    base_model_class = GshnModel


class GshnForPreTraining(GshnPreTrainedModel, AshNetsForPreTraining):
    """ASH-Nets' pre-training objectives around `GshnModel` (the SNN reads each image's own nodes, so ITM's fused
    passes see the same visual tokens as the image-only pass)."""

    base_model_class = GshnModel
