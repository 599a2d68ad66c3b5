"""Neuromorphic export: the spiking parts of every model family as NIR graphs (the neuromorphic intermediate
representation, https://neuroir.org), written and read back through spikingjelly's `nir_exchange`.

NIR describes spiking neurons (LIF), synapses (Linear, Affine, Conv) and average pooling, one time step at a time.
What it cannot describe is handled here, not left to fail deep inside the exporter:

* tdBN and BatchNorm are folded into the linear or convolution before them, with their running statistics (eval
  mode), so the exported synapse gives the same current as synapse + norm;
* analog parts (the CNN, GSHN's graph attention, embeddings, the fusion transformer) compute the graph's input and
  stay outside; each graph's metadata says what its input and output are;
* SpikeCLIP's max-pools and its spiking self-attention (products of two spike matrices) have no NIR node, so the
  exported SpikeCLIP parts are the text encoder, the tokenizer's spiking stages between its max-pools, and each
  block's spiking MLP.

A graph runs per token (ASH-Nets, GSHN, SpikeCLIP's blocks), per text (SpikeCLIP's text encoder) or per feature map
(SpikeCLIP's tokenizer): the batch of a simulation is every token of every sample. NIR needs
`pip install ashnets[nir]`.
"""

import os
from collections import OrderedDict
from dataclasses import dataclass

import torch
from spikingjelly.activation_based import layer, neuron
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights


__all__ = ["NirPart", "export_nir", "fold_norm", "simulate_nir", "spiking_parts"]

DEFAULT_DT = 1e-4  # spikingjelly's convention: one discrete step is dt seconds of NIR's continuous time


@dataclass
class NirPart:
    """One exportable spiking part: `network` is a single-step chain of spikingjelly modules (norms folded), built
    from the model's weights; `neurons` are the model's own neuron layers in the same order (for checking a round
    trip against the model)."""

    name: str
    network: nn.Sequential
    input_shape: tuple[int, ...]  # one token (or text) at one time step
    reads: str
    returns: str
    neurons: tuple[nn.Module, ...]


def _require_nir():
    try:
        import nir  # noqa: F401
        import nirtorch  # noqa: F401
        from spikingjelly.activation_based import nir_exchange
    except ImportError as error:
        raise ImportError(
            f"NIR export needs the `nir` and `nirtorch` packages ({error}): pip install 'ashnets[nir]'."
        ) from error
    return nir_exchange


def fold_norm(synapse: nn.Module, norm: nn.Module | None) -> nn.Module:
    """A spikingjelly single-step copy of `synapse` (Linear or Conv2d) with `norm` (BatchNorm or tdBN, used with its
    running statistics) folded into its weight and bias."""
    weight, bias = synapse.weight.detach(), None if synapse.bias is None else synapse.bias.detach()
    if isinstance(synapse, nn.Linear):
        folded = layer.Linear(synapse.in_features, synapse.out_features, bias=norm is not None or bias is not None)
    elif isinstance(synapse, nn.Conv2d):
        folded = layer.Conv2d(synapse.in_channels, synapse.out_channels, synapse.kernel_size, synapse.stride,
                              synapse.padding, synapse.dilation, synapse.groups, bias=True)
    else:
        raise TypeError(f"Cannot fold a norm into a {type(synapse).__name__}; NIR export knows Linear and Conv2d.")
    folded = folded.to(weight.dtype)
    if norm is not None:
        if norm.running_mean is None:
            raise ValueError(f"{type(norm).__name__} without running statistics cannot be folded for NIR export.")
        fuse = fuse_linear_bn_weights if isinstance(synapse, nn.Linear) else fuse_conv_bn_weights
        weight, bias = fuse(weight, bias, norm.running_mean, norm.running_var, norm.eps, norm.weight, norm.bias)
    elif bias is None and isinstance(synapse, nn.Conv2d):
        bias = torch.zeros(synapse.out_channels, dtype=weight.dtype)
    with torch.no_grad():
        folded.weight.copy_(weight)
        if bias is not None:
            folded.bias.copy_(bias)
    return folded


def _single_step_lif(lif: nn.Module, where: str) -> neuron.LIFNode:
    """A single-step LIFNode with the dynamics of the model's neuron layer (spikingjelly's or the compiled one)."""
    if not hasattr(lif, "v_threshold"):
        raise ValueError(f"{where} is a {type(lif).__name__}, not a spiking neuron: an ANN twin (neuron 'relu') "
                         "has no spiking part to export.")
    if lif.v_reset is None:
        raise ValueError(f"{where} uses a soft reset (v_reset=None), which NIR cannot express: train with a hard "
                         "reset (v_reset=0.0) to export.")
    return neuron.LIFNode(tau=lif.tau, v_threshold=lif.v_threshold, v_reset=lif.v_reset, decay_input=True,
                          step_mode="s")


def _part(name: str, layers: list, where: str, input_shape: tuple, reads: str, returns: str) -> NirPart:
    """A part from `layers`, (node name, layer) in order: a neuron layer of the model, or a (synapse, norm or None)
    pair; each becomes its single-step, norm-folded copy."""
    steps = OrderedDict(
        (node, fold_norm(*layer_) if isinstance(layer_, tuple) else _single_step_lif(layer_, f"{where} {node}"))
        for node, layer_ in layers
    )
    neurons = tuple(layer_ for _, layer_ in layers if not isinstance(layer_, tuple))
    return NirPart(name, nn.Sequential(steps), input_shape, reads, returns, neurons)


def _ashnets_encoder_part(encoder, family: str) -> NirPart:
    config = encoder.config
    layers = []
    for index, block in enumerate(encoder.blocks):
        layers += [(f"block{index}_synapse", (block.linear, block.norm)), (f"block{index}_lif", block.lif)]
    return _part(
        "semantic-abstract-encoder", layers, f"{family} SNN", (encoder.blocks[0].linear.in_features,),
        reads=f"one visual token's features (hidden_size {config.hidden_size}) as input current, the same at each of "
              f"the {config.snn_time_steps} steps ('repeat' mode); "
              + ("GSHN: a segment node from the CNN and the outline" if family == "GSHN" else
                 "ASH-Nets: a grid cell of the CNN feature map after the visual dictionary"),
        returns=f"the last block's spikes ({config.snn_hidden_size}); their mean over the steps is the discrete "
                "semantic feature the fusion reads",
    )


def _spikeclip_text_part(encoder) -> NirPart:
    config = encoder.config
    layers = [("input_lif", encoder.input_neuron), ("fc1", (encoder.fc1, None)),
              ("hidden_lif", encoder.hidden_neuron), ("fc2", (encoder.fc2, None))]
    return _part(
        "text-encoder", layers, "SpikeCLIP text encoder", (encoder.fc1.in_features,),
        reads=f"a text's token + position embeddings, flattened ({config.max_position_embeddings} x "
              f"{config.embedding_size}), the same at each of the {config.time_steps} steps",
        returns=f"the analog output of fc2 per step ({config.hidden_size}); the learned weighting over steps "
                "(outside the graph) gives the text embedding",
    )


def _spikeclip_tokenizer_parts(tokenizer, config) -> list[NirPart]:
    """The tokenizer's spiking stages between its max-pools: stages 1-2 (LIF, conv; LIF, conv), stage 3 (LIF, conv)
    and the position embedding (LIF, conv). Stage 0 reads the image (analog) and the max-pools stay outside."""
    widths, size = config.tokenizer_channels, config.image_size
    stages, neurons = tokenizer.stages, tokenizer.neurons

    def conv(stage):
        return stage.conv, stage.norm

    half, quarter = -(-size // 2), -(-size // 4)
    where = "SpikeCLIP tokenizer"
    return [
        _part("vision-tokenizer-stage1-2",
              [("stage1_lif", neurons[0]), ("stage1_conv", conv(stages[1])),
               ("stage2_lif", neurons[1]), ("stage2_conv", conv(stages[2]))],
              where, (widths[0], size, size),
              f"stage 0's output (convolution + BatchNorm of the image, {widths[0]} x {size} x {size}), the same at "
              "each step",
              f"stage 2's analog map ({widths[2]} x {size} x {size}) per step, before its 2x2 max-pool (outside)"),
        _part("vision-tokenizer-stage3", [("stage3_lif", neurons[2]), ("stage3_conv", conv(stages[3]))],
              where, (widths[2], half, half),
              f"stage 2's max-pooled map ({widths[2]} x {half} x {half}) per step",
              f"stage 3's analog map ({widths[3]} x {half} x {half}) per step, before its 2x2 max-pool (outside)"),
        _part("vision-position",
              [("position_lif", tokenizer.position_neuron), ("position_conv", conv(tokenizer.position))],
              where, (widths[3], quarter, quarter),
              f"stage 3's max-pooled map ({widths[3]} x {quarter} x {quarter}) per step",
              "the relative position embedding per step, added to its input outside the graph to give the tokens"),
    ]


def _spikeclip_mlp_part(mlp, index: int, config) -> NirPart:
    layers = [("input_lif", mlp.input_neuron), ("fc1", (mlp.fc1.linear, mlp.fc1.norm)),
              ("hidden_lif", mlp.hidden_neuron), ("fc2", (mlp.fc2.linear, mlp.fc2.norm))]
    return _part(
        f"vision-block{index}-mlp", layers, f"SpikeCLIP block {index} MLP", (mlp.fc1.linear.in_features,),
        reads=f"one image token of block {index}'s residual stream after its attention branch ({config.hidden_size}), "
              "per step",
        returns=f"the MLP branch's analog output per step ({config.hidden_size}), added to the residual stream "
                "outside the graph",
    )


def spiking_parts(model: nn.Module) -> list[NirPart]:
    """The exportable spiking parts of an ASH-Nets, GSHN or SpikeCLIP model (any head), in eval mode."""
    from .modeling_spikeclip import SpikeClipTextEncoder, SpikeClipVisionEncoder
    from .semantic_abstract_encoder import AshNetsSemanticAbstractEncoder

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    parts = []
    for module in model.modules():
        if isinstance(module, AshNetsSemanticAbstractEncoder):
            parts.append(_ashnets_encoder_part(module, "GSHN" if model_type == "gshn" else "ASH-Nets"))
        elif isinstance(module, SpikeClipTextEncoder):
            parts.append(_spikeclip_text_part(module))
        elif isinstance(module, SpikeClipVisionEncoder):
            parts.extend(_spikeclip_tokenizer_parts(module.tokenizer, module.config))
            parts.extend(_spikeclip_mlp_part(block.mlp, i, module.config) for i, block in enumerate(module.blocks))
    if not parts:
        reason = (" (use_snn=False: the model has no spiking encoder)"
                  if getattr(model.config, "use_snn", True) is False else "")
        raise ValueError(f"{type(model).__name__} has no spiking part to export{reason}.")
    return parts


def _part_path(output: str, part: NirPart, single: bool) -> str:
    if single:
        return output
    stem, extension = os.path.splitext(output)
    return f"{stem}-{part.name}{extension or '.nir'}"


def export_nir(model: nn.Module, output: str, dt: float = DEFAULT_DT) -> list[dict]:
    """Writes each spiking part of `model` as a NIR graph: `output` itself when the model has one part (ASH-Nets,
    GSHN), `<output stem>-<part>.nir` for each when it has several (SpikeCLIP). Returns, per part, the file, its
    input shape and what the graph reads and returns (also in the graph's metadata)."""
    nir_exchange = _require_nir()
    import nir

    parts = spiking_parts(model)
    if not dt > 0:
        raise ValueError(f"dt must be a positive number of seconds per time step, got {dt}.")
    if os.path.isdir(output):
        raise ValueError(f"output {output!r} is a folder: pass a file path such as {os.path.join(output, 'snn.nir')}.")
    graphs = []  # every graph is built before the first file is written, so a failure leaves no partial export
    for part in parts:
        dtype = next(part.network.parameters()).dtype
        example = torch.zeros(1, *part.input_shape, dtype=dtype)
        graph = nir_exchange.export_to_nir(part.network.eval(), example, dt=dt)
        graph.metadata = {"part": part.name, "reads": part.reads, "returns": part.returns, "dt": dt,
                          "model_type": getattr(model.config, "model_type", "")}
        graphs.append(graph)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    written = []
    for part, graph in zip(parts, graphs):
        path = _part_path(output, part, single=len(parts) == 1)
        nir.write(path, graph)
        written.append({"part": part.name, "file": path, "input_shape": list(part.input_shape),
                        "nodes": describe_graph(graph), "reads": part.reads, "returns": part.returns})
    return written


def describe_graph(graph) -> list[str]:
    """The graph's nodes in order, one line each: name, NIR type and size (`Affine 64 -> 32`, `LIF 32`)."""
    lines, order = [], _topological(graph)
    for name in order:
        node = graph.nodes[name]
        kind = type(node).__name__
        if hasattr(node, "weight"):
            shape = tuple(node.weight.shape)
            size = f"{shape[1]} -> {shape[0]}"
            if len(shape) > 2:  # a convolution: (out, in, *kernel)
                size += f" channels, kernel {'x'.join(map(str, shape[2:]))}"
        elif hasattr(node, "v_threshold"):
            size = "x".join(map(str, node.v_threshold.shape))
        else:  # Input / Output nodes: the shape they carry
            types = {**(getattr(node, "input_type", None) or {}), **(getattr(node, "output_type", None) or {})}
            size = "x".join(str(int(d)) for d in next(iter(types.values()), ()))
        lines.append(f"{name}: {kind} {size}".rstrip())
    return lines


def _topological(graph) -> list[str]:
    following = {}
    for source, target in graph.edges:
        following.setdefault(source, []).append(target)
    order, frontier = [], [name for name in graph.nodes if name not in {t for _, t in graph.edges}]
    while frontier:
        name = frontier.pop(0)
        if name in order:
            continue
        order.append(name)
        frontier.extend(following.get(name, []))
    return order


@torch.no_grad()
def simulate_nir(graph_or_path, inputs: torch.Tensor, dt: float = DEFAULT_DT) -> tuple[torch.Tensor, dict]:
    """Runs a NIR graph (or file) imported by spikingjelly's `import_from_nir`, step by step, on `inputs` (T, batch,
    *input_shape), in the dtype of `inputs`. Returns (outputs (T, batch, ...), {LIF node name: spikes (T, batch,
    ...)}): what a neuromorphic target would compute, to check an export against the model."""
    from spikingjelly.activation_based.nir_exchange.from_nir import _NIRStatefulModule

    nir_exchange = _require_nir()
    module = nir_exchange.import_from_nir(graph_or_path, dt=dt, device=str(inputs.device), dtype=inputs.dtype)
    spikes, handles = {}, []
    for name, submodule in module.named_modules():
        if isinstance(submodule, _NIRStatefulModule):
            def record(_, __, output, name=name):
                spikes.setdefault(name, []).append(output[0])
            handles.append(submodule.register_forward_hook(record))
    try:
        state, outputs = None, []
        for current in inputs:
            output, state = module(current, state)
            outputs.append(output)
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(outputs), {name: torch.stack(steps) for name, steps in spikes.items()}
