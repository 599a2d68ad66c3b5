"""Operation counts and the field's energy estimate for one forward pass, by component, with spike statistics.

Convention (docs/model.md section 5, as in ASH-Nets' relatives): a layer fed by analog values costs MACs at 4.6 pJ each;
a layer fed by spikes costs synaptic operations (SOPs, accumulates) at 0.9 pJ each, where SOPs = spikes arriving x
fan-out (= firing rate of its input x T x its MACs). 45 nm CMOS figures (Horowitz 2014); memory traffic, neuron state
updates and normalisation (folded into weights at inference) are not counted, as in the papers we compare with.

What counts as spike-fed here: every spiking block after the first (its input is the previous block's spikes) and
the summary ratio's projection `W rate(S)` (a rate k/T is k spikes accumulated over T steps). The first block's
input is the CNN's analog features, which are the same at every step in `repeat` mode: it costs its MACs once.
Attention's two matrix products (QK^T and AV) are counted from the sequence length; GSHN's graph attention (scores and
weighted sums over the nodes) counts as MACs under `graph`. In the ANN twin
(`snn_neuron="relu"`, T = 1) everything is a MAC.

Counting uses forward hooks on this model's own Linear and Conv2d modules, which gives exact spike counts; spikingjelly's
`op_counter` profilers were not used because their energy model adds memory-access terms that the papers do not.
"""

from collections import defaultdict
from dataclasses import asdict, dataclass, field

import torch
from torch import nn


__all__ = ["E_AC_PJ", "E_MAC_PJ", "EnergyReport", "estimate_energy", "estimate_spikeclip_energy"]

E_MAC_PJ = 4.6
E_AC_PJ = 0.9

def _components(base: nn.Module) -> dict[nn.Module, str]:
    """Every module of an AshNetsModel inside one of the counted components, mapped to it (by the modules
    themselves, not their names: a renamed attribute fails loudly here instead of being counted as `head`)."""
    parts = {"cnn": [base.visual_encoder], "snn": [base.snn], "summary_ratio": [base.summary_ratio],
             "fusion": [base.encoder, base.pooler],
             # GSHN: the graph attention over the segment nodes and the nodes' geometry embedding (analog: MACs)
             "graph": [getattr(base, "graph_attention", None), getattr(base, "node_embeddings", None)]}
    return {module: component for component, parents in parts.items() for parent in parents
            if parent is not None for module in parent.modules()}


def _spike_fed(base: nn.Module) -> set[nn.Module]:
    """The layers whose inputs are spikes (or spike rates): every spiking block's but the first's, which reads the
    CNN's continuous features, and the summary ratio's projection of the rates."""
    if base.snn is None:
        return set()
    return {block.linear for block in base.snn.blocks[1:]} | {base.summary_ratio.spike_projection}


@dataclass
class EnergyReport:
    """Per-sample operation counts and energy (pJ) by component; firing rates per spiking block and per time step.
    `visual_semantic_branch_pj` is the SNN plus the summary ratio's projection: the part an ANN twin replaces."""

    macs: dict[str, float] = field(default_factory=dict)
    sops: dict[str, float] = field(default_factory=dict)
    energy_pj: dict[str, float] = field(default_factory=dict)
    firing_rate_per_block: list[float] = field(default_factory=list)
    firing_rate_per_step: list[list[float]] = field(default_factory=list)
    time_steps: int = 1
    spiking: bool = True

    @property
    def total_pj(self) -> float:
        return sum(self.energy_pj.values())

    @property
    def visual_semantic_branch_pj(self) -> float:
        return self.energy_pj.get("snn", 0.0) + self.energy_pj.get("summary_ratio", 0.0)

    def to_dict(self) -> dict:
        return {**asdict(self), "total_pj": self.total_pj, "visual_semantic_branch_pj": self.visual_semantic_branch_pj}


@torch.no_grad()
def estimate_energy(model: nn.Module, inputs: dict, e_mac: float = E_MAC_PJ, e_ac: float = E_AC_PJ) -> EnergyReport:
    """Run `model` (an AshNetsModel or any head) on `inputs` once in eval mode and count its operations per sample.
    Heads' own layers count as `head`."""
    base = getattr(model, "ashnets", model)
    config = base.config
    spiking = config.snn_neuron == "lif" and config.use_snn
    time_steps = config.snn_time_steps
    components, spike_fed = _components(base), _spike_fed(base)
    rate_fed = None if base.summary_ratio is None else base.summary_ratio.spike_projection
    macs, sops = defaultdict(float), defaultdict(float)

    def hook(module, args, output):
        component, inputs_ = components.get(module, "head"), args[0]
        if isinstance(module, nn.Conv2d):
            kernel = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            macs[component] += output.numel() * kernel
        elif spiking and module in spike_fed:
            # Every spike reaching the layer triggers one accumulate per output neuron; a rate k/T is k spikes.
            spikes = inputs_.sum() * (time_steps if module is rate_fed else 1)
            sops[component] += float(spikes) * module.out_features
        else:
            macs[component] += inputs_.numel() * module.out_features  # (vectors x in) x out

    handles = [module.register_forward_hook(hook) for module in model.modules()
               if isinstance(module, (nn.Linear, nn.Conv2d))]
    lengths, spikes = [], []
    handles += [layer.register_forward_hook(lambda m, args, out: lengths.append(args[0].shape[1]))
                for layer in base.encoder.layers]
    if base.snn is not None:
        handles += [block.register_forward_hook(lambda m, args, out: spikes.append(out)) for block in base.snn.blocks]
    graph = getattr(base, "graph_attention", None)
    if graph is not None:  # GSHN: each layer's attention scores and weighted sums over the (B, N, hidden) nodes
        def count_graph_products(module, args, output):
            batch_, nodes, hidden = args[0].shape
            macs["graph"] += batch_ * (nodes * nodes * hidden + 2 * nodes * hidden)

        handles += [layer.register_forward_hook(count_graph_products) for layer in graph.layers]
    _run_once(model, inputs, handles)
    batch = next(iter(inputs.values())).shape[0]
    macs["fusion"] += sum(2 * length * length * config.hidden_size for length in lengths) * batch
    report = EnergyReport(time_steps=time_steps, spiking=spiking)
    report.macs = {k: v / batch for k, v in macs.items()}
    report.sops = {k: v / batch for k, v in sops.items()}
    for component in set(report.macs) | set(report.sops):
        report.energy_pj[component] = report.macs.get(component, 0.0) * e_mac + report.sops.get(component, 0.0) * e_ac
    if spiking:  # (T, B, N, d) binary spikes of each block
        report.firing_rate_per_block = [float(s.float().mean()) for s in spikes]
        report.firing_rate_per_step = [[float(step.float().mean()) for step in s] for s in spikes]
    return report


def _run_once(model: nn.Module, inputs: dict, handles: list) -> None:
    """One forward pass in eval mode with the counting hooks, which are removed afterwards (and the mode restored)."""
    was_training = model.training
    model.eval()
    try:
        model(**inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()


def _is_spikes(tensor: torch.Tensor) -> bool:
    return bool(((tensor == 0) | (tensor == 1)).all())


@torch.no_grad()
def estimate_spikeclip_energy(model: nn.Module, inputs: dict, e_mac: float = E_MAC_PJ,
                              e_ac: float = E_AC_PJ) -> EnergyReport:
    """Run a SpikeClipModel on `inputs` once in eval mode and count its operations per sample, by tower
    (`image_encoder`: the spiking tokenizer, the blocks and the projection; `text_encoder`).

    A layer (linear, convolution, or one of the attention's two products) costs SOPs when its input is spikes, which
    the hooks see (every value 0 or 1 in a spiking model): one accumulate per spike and output it reaches; otherwise
    MACs. The tokenizer's first convolution reads the image, the same at every step, and runs once. BatchNorm folds
    into the layer before it at inference and is not counted. `firing_rate_per_block` lists each LIF layer's rate
    (the image encoder's first), `firing_rate_per_step` its rate per time step."""
    from spikingjelly.activation_based import neuron

    from .modeling_spikeclip import SpikeClipSpikeProduct

    vision_config = model.config.vision_config
    spiking = vision_config.neuron == "lif"
    components = {module: "image_encoder" for part in (model.vision_model, model.visual_projection)
                  for module in part.modules()}
    components.update({module: "text_encoder" for module in model.text_model.modules()})
    macs, sops = defaultdict(float), defaultdict(float)

    def count(module, args, output):
        component, source = components.get(module, "head"), args[0]
        if isinstance(module, nn.Conv2d):
            dense = output.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        else:  # Linear or a product a @ b: each input value meets one row of weights (or of b)
            dense = source.numel() * (module.out_features if isinstance(module, nn.Linear) else args[1].shape[-1])
        if spiking and _is_spikes(source):
            sops[component] += dense * float(source.float().mean())  # firing rate x (T x) the layer's operations
        else:
            macs[component] += dense

    handles = [module.register_forward_hook(count) for module in model.modules()
               if isinstance(module, (nn.Linear, nn.Conv2d, SpikeClipSpikeProduct))]
    lif_layers = [module for part in (model.vision_model, model.text_model) for module in part.modules()
                  if isinstance(module, neuron.BaseNode)]  # the image encoder's first, whatever runs first
    outputs = {}
    handles += [module.register_forward_hook(lambda m, args, out: outputs.__setitem__(m, out)) for module in lif_layers]
    _run_once(model, inputs, handles)
    batch = next(value for value in inputs.values() if isinstance(value, torch.Tensor)).shape[0]
    report = EnergyReport(time_steps=vision_config.time_steps, spiking=spiking)
    report.macs = {k: v / batch for k, v in macs.items()}
    report.sops = {k: v / batch for k, v in sops.items()}
    for component in set(report.macs) | set(report.sops):
        report.energy_pj[component] = report.macs.get(component, 0.0) * e_mac + report.sops.get(component, 0.0) * e_ac
    spikes = [outputs[module] for module in lif_layers if module in outputs]
    report.firing_rate_per_block = [float(s.float().mean()) for s in spikes]
    report.firing_rate_per_step = [[float(step.float().mean()) for step in s] for s in spikes]
    return report
