"""The visual concrete encoder: a transformers ResNet whose last stage becomes continuous visual tokens."""

import torch
from torch import nn
from transformers.models.resnet.modeling_resnet import ResNetEmbeddings, ResNetEncoder

from .configuration_ashnets import AshNetsConfig


__all__ = ["AshNetsResNetBackbone", "AshNetsVisualConcreteEncoder"]


class AshNetsResNetBackbone(nn.Module):
    """transformers' ResNet stem and stages, with `ResNetModel`'s parameter names (so its checkpoints load).

    Built from the modules rather than as a nested `ResNetModel`, which would be a second PreTrainedModel
    that rejects the fusion transformer's attention settings (SDPA) and initialises itself on its own.
    """

    def __init__(self, config):
        super().__init__()
        self.embedder = ResNetEmbeddings(config)
        self.encoder = ResNetEncoder(config)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.embedder(pixel_values), return_dict=True).last_hidden_state


class AshNetsVisualConcreteEncoder(nn.Module):
    """pixels (B, C, H, W) -> last ResNet stage (stride 32) -> optional max-pool -> 1x1 conv to `hidden_size`.

    Returns the tokens (B, N, hidden) in row-major order and the grid's (rows, cols).
    """

    def __init__(self, config: AshNetsConfig):
        super().__init__()
        self.backbone = AshNetsResNetBackbone(config.backbone_config)
        self.pool = (
            nn.MaxPool2d(config.visual_pool_size, ceil_mode=True) if config.visual_pool_size > 1 else nn.Identity()
        )
        self.projection = nn.Conv2d(config.backbone_out_channels, config.hidden_size, kernel_size=1)

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        feature_map = self.backbone(pixel_values)
        feature_map = self.projection(self.pool(feature_map))
        rows, cols = feature_map.shape[-2:]
        return feature_map.flatten(2).transpose(1, 2), (rows, cols)
