"""Initialise parts of an ASH-Nets model from other checkpoints: the fusion transformer from BERT, the CNN from ResNet.

Both read a local checkpoint folder (or a Hub snapshot already downloaded) with `model.safetensors` or
`pytorch_model.bin`. Every tensor is shape-checked; a mismatch raises an error naming both shapes.
"""

import logging
import os
import re

import torch
from safetensors.torch import load_file

from .modeling_ashnets import AshNetsPreTrainedModel


__all__ = ["init_fusion_from_bert", "init_backbone_from_resnet", "load_checkpoint_state_dict"]

logger = logging.getLogger(__name__)

# BERT module names -> ASH-Nets module names (the fusion transformer keeps BERT's post-LayerNorm layout).
_BERT_EMBEDDINGS = {
    "embeddings.word_embeddings.weight": "text_embeddings.word_embeddings.weight",
    "embeddings.position_embeddings.weight": "text_embeddings.position_embeddings.weight",
    "embeddings.token_type_embeddings.weight": "text_embeddings.token_type_embeddings.weight",
    "embeddings.LayerNorm.weight": "text_embeddings.layer_norm.weight",
    "embeddings.LayerNorm.bias": "text_embeddings.layer_norm.bias",
    "pooler.dense.weight": "pooler.dense.weight",
    "pooler.dense.bias": "pooler.dense.bias",
}
_BERT_LAYER = {
    "attention.self.query": "self_attn.q_proj",
    "attention.self.key": "self_attn.k_proj",
    "attention.self.value": "self_attn.v_proj",
    "attention.output.dense": "self_attn.out_proj",
    "attention.output.LayerNorm": "attn_layer_norm",
    "intermediate.dense": "fc1",
    "output.dense": "fc2",
    "output.LayerNorm": "mlp_layer_norm",
}
_BERT_LAYER_KEY = re.compile(r"^encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")


def load_checkpoint_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read the weights of a checkpoint folder (or a single .safetensors / .bin file)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        for name in ("model.safetensors", "pytorch_model.bin"):
            if os.path.isfile(os.path.join(path, name)):
                path = os.path.join(path, name)
                break
        else:
            raise FileNotFoundError(
                f"No model.safetensors or pytorch_model.bin in {path!r}: is it a saved transformers checkpoint folder?"
            )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint {path!r} does not exist.")
    if path.endswith(".safetensors"):
        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def _strip_prefix(state_dict: dict[str, torch.Tensor], prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    for prefix in prefixes:
        if any(key.startswith(prefix) for key in state_dict):
            return {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
    return state_dict


def _copy_checked(target: dict[str, torch.Tensor], source: dict[str, torch.Tensor], what: str) -> None:
    """Copy source[name] into target[name] for every name, after checking all shapes (nothing is written on error)."""
    for name, tensor in source.items():
        if tuple(target[name].shape) != tuple(tensor.shape):
            raise ValueError(
                f"Size mismatch initialising {name} from {what}: the checkpoint has shape {tuple(tensor.shape)} but the "
                f"ASH-Nets model has {tuple(target[name].shape)}. Make the config match the checkpoint "
                "(hidden_size, intermediate_size, vocab_size, max_position_embeddings, backbone)."
            )
    with torch.no_grad():
        for name, tensor in source.items():
            target[name].copy_(tensor.to(target[name].dtype))


def init_fusion_from_bert(model: AshNetsPreTrainedModel, path: str | os.PathLike) -> dict[str, list[str]]:
    """Copy a BERT checkpoint's embeddings, layers and pooler into the fusion transformer.

    A checkpoint with more layers than the model gives its first `num_hidden_layers` layers; one with fewer
    raises. Returns {"loaded": [...], "skipped": [...]} (ASH-Nets names loaded, checkpoint names ignored).
    """
    base = model.base_model
    bert = {
        key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias"): value
        for key, value in _strip_prefix(load_checkpoint_state_dict(path), ("bert.", "model.")).items()
    }
    num_layers = base.config.num_hidden_layers
    checkpoint_layers = {int(m.group(1)) for key in bert if (m := _BERT_LAYER_KEY.match(key))}
    if len(checkpoint_layers) < num_layers:
        raise ValueError(
            f"{path} has {len(checkpoint_layers)} transformer layers but the model has {num_layers}: "
            "lower num_hidden_layers or choose a deeper BERT checkpoint."
        )
    mapped, skipped = {}, []
    for key, value in bert.items():
        if key in _BERT_EMBEDDINGS:
            mapped[_BERT_EMBEDDINGS[key]] = value
        elif (match := _BERT_LAYER_KEY.match(key)) and match.group(2) in _BERT_LAYER:
            index, module, kind = int(match.group(1)), _BERT_LAYER[match.group(2)], match.group(3)
            if index < num_layers:
                mapped[f"encoder.layers.{index}.{module}.{kind}"] = value
            else:
                skipped.append(key)
        else:
            skipped.append(key)
    if "text_embeddings.word_embeddings.weight" not in mapped:
        raise ValueError(f"{path} has no BERT word embeddings (embeddings.word_embeddings.weight): is it a BERT checkpoint?")
    _copy_checked(dict(base.named_parameters()), mapped, f"BERT checkpoint {path}")
    if skipped:
        logger.info("Not used from %s: %s", path, ", ".join(sorted(skipped)))
    return {"loaded": sorted(mapped), "skipped": sorted(skipped)}


def init_backbone_from_resnet(model: AshNetsPreTrainedModel, path: str | os.PathLike) -> dict[str, list[str]]:
    """Copy a transformers ResNet checkpoint (ResNetModel or ResNetForImageClassification) into the CNN.

    Every backbone tensor must be present with the same shape; the classifier of a classification checkpoint
    is ignored. Returns {"loaded": [...], "skipped": [...]}.
    """
    backbone = model.base_model.visual_encoder.backbone
    resnet = _strip_prefix(load_checkpoint_state_dict(path), ("resnet.",))
    target = backbone.state_dict(keep_vars=True)
    missing = sorted(set(target) - set(resnet))
    if missing:
        raise ValueError(
            f"{path} lacks {len(missing)} tensors of the configured backbone (first: {missing[0]}): does its depth "
            f"match config.backbone ({model.config.backbone})?"
        )
    skipped = sorted(set(resnet) - set(target))
    _copy_checked(target, {name: resnet[name] for name in target}, f"ResNet checkpoint {path}")
    return {"loaded": sorted(target), "skipped": skipped}
