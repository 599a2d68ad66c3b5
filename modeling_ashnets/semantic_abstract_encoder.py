"""The semantic abstract encoder: a multi-step spiking network (spikingjelly LIF + tdBN) over the visual tokens.

Its discrete latent variable is the firing rate `mean_t S` of the last block's spikes (values k/T).
"""

import torch
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from torch import nn

from .configuration_ashnets import AshNetsConfig


__all__ = [
    "AshNetsCompiledLIF",
    "AshNetsSemanticAbstractEncoder",
    "AshNetsSpikingBlock",
    "AshNetsSynapticLinear",
    "build_snn_input",
]


def _surrogate(config: AshNetsConfig):
    if config.snn_surrogate == "atan":
        return surrogate.ATan(alpha=config.snn_surrogate_alpha)
    return surrogate.Sigmoid(alpha=config.snn_surrogate_alpha)


def build_snn_input(
    features: torch.Tensor, time_steps: int, mode: str, image_similarity: torch.Tensor | None = None
) -> torch.Tensor:
    """Present `features` (B, N, d) as input current over T steps: returns (T, B, N, d).

    `repeat`: the same features at every step (direct encoding).
    `similar`: step 0 is the image itself, steps 1..T-1 cycle through its most similar *other* images of the
    batch, ranked by `image_similarity` (B, B); without it, by cosine similarity of the mean-pooled features.
    A batch of one image has no neighbours and falls back to `repeat`.
    """
    batch_size = features.shape[0]
    if mode not in ("repeat", "similar"):
        raise ValueError(f"Unknown SNN input mode {mode!r}; choose 'repeat' or 'similar'.")
    if image_similarity is not None and tuple(image_similarity.shape) != (batch_size, batch_size):
        raise ValueError(
            f"image_similarity must have shape (batch_size, batch_size) = ({batch_size}, {batch_size}), "
            f"got {tuple(image_similarity.shape)}."
        )
    if mode == "repeat" or time_steps == 1 or batch_size == 1:
        return features.unsqueeze(0).expand(time_steps, *features.shape)
    if image_similarity is None:
        pooled = nn.functional.normalize(features.mean(dim=1), dim=-1)
        image_similarity = pooled @ pooled.t()
    similarity = image_similarity.detach().float().clone()
    similarity.fill_diagonal_(float("-inf"))
    num_neighbours = min(time_steps - 1, batch_size - 1)
    neighbours = similarity.topk(num_neighbours, dim=1).indices  # (B, k), most similar first
    steps = [features]
    for t in range(1, time_steps):
        steps.append(features[neighbours[:, (t - 1) % num_neighbours]])
    return torch.stack(steps, dim=0)


class AshNetsSynapticLinear(nn.Linear):
    """The synapses that feed a spiking layer; a class of its own so that it gets a variance-preserving init."""


class AshNetsCompiledLIF(nn.Module):
    """A multi-step LIF layer run through `torch.compile(functional.lif_multi_step)`: the same dynamics (and spikes)
    as spikingjelly's `LIFNode`, with the T-step loop fused into one generated kernel. Stateless between calls, as
    the encoder resets its neurons at every forward anyway."""

    _compiled = None  # one compiled function shared by every layer

    def __init__(self, lif: neuron.LIFNode):
        super().__init__()
        self.tau, self.v_threshold, self.v_reset = lif.tau, lif.v_threshold, lif.v_reset
        self.surrogate_function, self.detach_reset = lif.surrogate_function, lif.detach_reset

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        if AshNetsCompiledLIF._compiled is None:
            AshNetsCompiledLIF._compiled = torch.compile(functional.lif_multi_step, dynamic=True)
        v = torch.full_like(current[0], self.v_reset if self.v_reset is not None else 0.0)
        spikes, _, _ = AshNetsCompiledLIF._compiled(
            current, v, tau=self.tau, decay_input=True, v_threshold=self.v_threshold, v_reset=self.v_reset,
            surrogate_function=self.surrogate_function, detach_reset=self.detach_reset,
        )
        return spikes


class AshNetsSpikingBlock(nn.Module):
    """linear -> tdBN -> LIF, applied to every time step of a (T, B, N, d) sequence."""

    def __init__(self, in_features: int, config: AshNetsConfig):
        super().__init__()
        self.linear = AshNetsSynapticLinear(in_features, config.snn_hidden_size)
        self.norm = layer.ThresholdDependentBatchNorm1d(
            alpha=config.snn_tdbn_alpha, v_th=config.snn_v_threshold, num_features=config.snn_hidden_size
        )
        # The ANN twin swaps the spiking neuron for a ReLU (and runs one step): same synapses, analog outputs.
        self.lif = nn.ReLU() if config.snn_neuron == "relu" else neuron.LIFNode(
            tau=config.snn_tau,
            v_threshold=config.snn_v_threshold,
            v_reset=config.snn_v_reset,
            surrogate_function=_surrogate(config),
            detach_reset=config.snn_detach_reset,
            step_mode="m",
        )

    def forward(self, current: torch.Tensor, time_steps: int | None = None) -> torch.Tensor:
        """current: (T, B, N, d_in) input current; or (B, N, d_in) with `time_steps` for a current that is the same at
        every step (`repeat` mode), whose projection is then computed once instead of T times."""
        if time_steps is None:
            current = self.linear(current)
        else:
            current = self.linear(current).unsqueeze(0).expand(time_steps, *current.shape[:-1], -1)
        # tdBN normalises each channel over time, batch and tokens: it wants (T, B, C, L).
        current = self.norm(current.transpose(2, 3)).transpose(2, 3)
        return self.lif(current.contiguous())


class AshNetsSemanticAbstractEncoder(nn.Module):
    """Stack of spiking blocks. The membrane state is reset at every forward, so each call is a pure function."""

    def __init__(self, config: AshNetsConfig):
        super().__init__()
        self.config = config
        # In `repeat` mode, project the (constant) input once rather than at each of the T steps; False recomputes it
        # per step, as the unoptimised formulation does (the tests compare the two).
        self.reuse_static_projection = True
        self.blocks = nn.ModuleList(
            [
                AshNetsSpikingBlock(config.hidden_size if i == 0 else config.snn_hidden_size, config)
                for i in range(config.snn_num_layers)
            ]
        )

    def use_compiled_neurons(self, enabled: bool = True) -> None:
        """Opt in (or back out) to `AshNetsCompiledLIF` for every spiking block: faster on CPU after a one-off
        compilation of some seconds. Parameters and outputs are unchanged."""
        for block in self.blocks:
            if enabled and isinstance(block.lif, neuron.LIFNode):
                block.__dict__["_eager_lif"] = block.lif  # kept aside, not registered as a submodule
                block.lif = AshNetsCompiledLIF(block.lif)
            elif not enabled and isinstance(block.lif, AshNetsCompiledLIF):
                block.lif = block.__dict__.pop("_eager_lif")

    def forward(
        self,
        features: torch.Tensor,
        input_mode: str | None = None,
        image_similarity: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
        """features (B, N, hidden) -> (spike rates (B, N, snn_hidden), firing rate per sample and block (B, L),
        spikes of every block, each (T, B, N, snn_hidden) in {0, 1})."""
        functional.reset_net(self)
        mode = input_mode or self.config.snn_input_mode
        time_steps = self.config.snn_time_steps
        spikes = []
        static = self.reuse_static_projection and (mode == "repeat" or (mode == "similar" and time_steps == 1))
        if static:  # the same current at every step: project it once (a T-fold saving on the first block)
            hidden = self.blocks[0](features, time_steps)
        else:
            hidden = self.blocks[0](build_snn_input(features, time_steps, mode, image_similarity))
        spikes.append(hidden)
        for block in self.blocks[1:]:
            hidden = block(hidden)
            spikes.append(hidden)
        functional.reset_net(self)  # do not keep (B, N, d) membrane tensors alive between calls
        firing_rates = torch.stack([s.mean(dim=(0, 2, 3)) for s in spikes], dim=1)
        return hidden.mean(dim=0), firing_rates, tuple(spikes)
