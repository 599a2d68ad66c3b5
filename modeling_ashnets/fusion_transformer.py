"""The single-stream fusion transformer: BERT-shaped post-LayerNorm layers over `[CLS] text [SEP]` + visual tokens.

Attention goes through transformers' attention interface, so `attn_implementation` picks eager or SDPA.
`pretrained_parts.py` maps BERT checkpoint names onto these modules.
"""

from collections.abc import Callable

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from .configuration_ashnets import AshNetsConfig


__all__ = [
    "AshNetsTextEmbeddings",
    "AshNetsVisualEmbeddings",
    "AshNetsAttention",
    "AshNetsLayer",
    "AshNetsEncoder",
    "AshNetsPooler",
]


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    weights = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return output, weights


class AshNetsTextEmbeddings(nn.Module):
    """Word + position + segment embeddings, then LayerNorm and dropout (as BERT)."""

    def __init__(self, config: AshNetsConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.register_buffer("position_ids", torch.arange(config.max_position_embeddings).unsqueeze(0), persistent=False)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        seq_length = inputs_embeds.shape[1]
        if token_type_ids is None:
            token_type_ids = torch.zeros(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
        embeddings = (
            inputs_embeds
            + self.token_type_embeddings(token_type_ids)
            + self.position_embeddings(self.position_ids[:, :seq_length])
        )
        return self.dropout(self.layer_norm(embeddings))


class AshNetsVisualEmbeddings(nn.Module):
    """Factorised learned 2-D positions (row + column) added to the visual tokens, then LayerNorm and dropout."""

    def __init__(self, config: AshNetsConfig):
        super().__init__()
        self.row_embeddings = nn.Embedding(config.visual_grid_size, config.hidden_size)
        self.column_embeddings = nn.Embedding(config.visual_grid_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, visual_tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        rows, cols = grid
        max_side = self.row_embeddings.num_embeddings
        if rows > max_side or cols > max_side:
            raise ValueError(
                f"The image gives a {rows}x{cols} grid of visual tokens but the model has positions for at most "
                f"{max_side}x{max_side}: resize images to at most the config's image_size "
                "(the AshNetsProcessor does this)."
            )
        device = visual_tokens.device
        positions = (
            self.row_embeddings(torch.arange(rows, device=device))[:, None, :]
            + self.column_embeddings(torch.arange(cols, device=device))[None, :, :]
        )
        return self.dropout(self.layer_norm(visual_tokens + positions.reshape(1, rows * cols, -1)))


class AshNetsAttention(nn.Module):
    """Bidirectional multi-head self-attention."""

    def __init__(self, config: AshNetsConfig):
        super().__init__()
        self.config = config
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = config.attention_probs_dropout_prob
        self.is_causal = False
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, output_attentions: bool = False,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]
        head_shape = (*input_shape, -1, self.head_dim)
        query = self.q_proj(hidden_states).view(head_shape).transpose(1, 2)
        key = self.k_proj(hidden_states).view(head_shape).transpose(1, 2)
        value = self.v_proj(hidden_states).view(head_shape).transpose(1, 2)
        # Only eager attention computes the weights: a call that asks for them runs eager (the model warned).
        implementation = "eager" if output_attentions else self.config._attn_implementation
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        output, weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            scaling=self.scaling,
            dropout=self.dropout if self.training else 0.0,
            **kwargs,
        )
        return self.out_proj(output.reshape(*input_shape, -1).contiguous()), weights


class AshNetsLayer(GradientCheckpointingLayer):
    """Post-LayerNorm transformer layer: x = LN(x + Attn(x)); x = LN(x + MLP(x))."""

    def __init__(self, config: AshNetsConfig):
        super().__init__()
        self.self_attn = AshNetsAttention(config)
        self.attn_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.mlp_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, output_attentions: bool = False,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, weights = self.self_attn(hidden_states, attention_mask, output_attentions, **kwargs)
        hidden_states = self.attn_layer_norm(hidden_states + self.dropout(attended))
        mlp_output = self.fc2(self.activation(self.fc1(hidden_states)))
        hidden_states = self.mlp_layer_norm(hidden_states + self.dropout(mlp_output))
        return hidden_states, weights


class AshNetsEncoder(nn.Module):
    """The layers, collecting hidden states and attention weights by hand rather than by transformers' output
    hooks: the heads run the encoder several times per forward (NLVR2 twice, pre-training up to four times) and
    each pass's states must stay its own."""

    def __init__(self, config: AshNetsConfig):
        super().__init__()
        self.layers = nn.ModuleList([AshNetsLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layers:
            hidden_states, weights = layer(hidden_states, attention_mask, output_attentions)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if output_attentions:
                all_attentions += (weights,)
        return hidden_states, all_hidden_states, all_attentions


class AshNetsPooler(nn.Module):
    """dense + tanh over one summary vector per sequence (the `[CLS]` state, or the visual tokens' mean)."""

    def __init__(self, config: AshNetsConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, summary: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(summary))
