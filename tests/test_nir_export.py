"""NIR export: folded norms give the model's outputs, and each family's exported graphs, read back by spikingjelly's
`import_from_nir`, spike exactly as the model does, per layer and time step."""

import sys

import pytest
import torch
from spikingjelly.activation_based import layer
from torch import nn

from modeling_ashnets import (
    AshNetsConfig,
    AshNetsModel,
    GshnConfig,
    GshnForQuestionAnswering,
    SpikeClipConfig,
    SpikeClipModel,
)
from modeling_ashnets.cli import main as cli_main
from modeling_ashnets.nir_export import describe_graph, export_nir, fold_norm, simulate_nir, spiking_parts


pytest.importorskip("nir")


def _randomise_norms(model: nn.Module, seed: int = 0) -> None:
    """Running statistics and affine parameters away from their initial values, so that folding them matters."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator) * 0.3)
            module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(size, generator=generator) * 0.3)


def _prepare(model: nn.Module) -> nn.Module:
    _randomise_norms(model)
    return model.double().eval()


def _assert_same_spikes(expected: torch.Tensor, exported: torch.Tensor, where: str) -> None:
    """The model's spikes (T, batch, ...) against the graph's (T, tokens, ...): identical, and neither silent nor
    saturated (a round trip of all zeros would prove nothing)."""
    expected = expected.reshape(exported.shape)
    assert torch.equal(expected, exported), f"{where}: {int((expected != exported).sum())} spikes differ"
    assert 0.0 < exported.mean().item() < 1.0, f"{where}: firing rate {exported.mean().item()}"


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_folded_norm_gives_the_same_current(kind):
    torch.manual_seed(0)
    synapse = nn.Linear(6, 5, bias=False) if kind == "linear" else nn.Conv2d(3, 4, 3, padding=1, bias=False)
    norm = nn.BatchNorm1d(5) if kind == "linear" else nn.BatchNorm2d(4)
    model = _prepare(nn.Sequential(synapse, norm))
    inputs = torch.randn(7, 6, dtype=torch.float64) if kind == "linear" else torch.randn(2, 3, 5, 5).double()
    folded = fold_norm(synapse, norm)
    assert isinstance(folded, layer.Linear if kind == "linear" else layer.Conv2d)
    torch.testing.assert_close(folded(inputs), model(inputs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("family", ["ashnets", "gshn"])
def test_spiking_encoder_round_trip(family, tmp_path):
    """ASH-Nets' semantic abstract encoder and GSHN's node encoder (from a task head): every block's spikes."""
    torch.manual_seed(0)
    if family == "ashnets":
        model = _prepare(AshNetsModel(AshNetsConfig.from_preset("ashnets-tiny")))
        encoder = model.snn
    else:
        model = _prepare(GshnForQuestionAnswering(GshnConfig.from_preset("gshn-tiny", id2label={0: "no", 1: "yes"})))
        encoder = model.ashnets.snn
    [written] = export_nir(model, str(tmp_path / "snn.nir"))
    assert written["file"] == str(tmp_path / "snn.nir")
    assert written["nodes"][1] == "block0_synapse: Affine 128 -> 128"

    tokens = torch.randn(3, 7, model.config.hidden_size, dtype=torch.float64)
    _, _, spikes = encoder(tokens, "repeat")
    steps = model.config.snn_time_steps
    current = tokens.flatten(0, 1).expand(steps, -1, -1)  # one graph run per token, the same input at every step
    output, graph_spikes = simulate_nir(written["file"], current)
    assert list(graph_spikes) == [f"block{i}_lif" for i in range(model.config.snn_num_layers)]
    for index, block_spikes in enumerate(spikes):
        _assert_same_spikes(block_spikes, graph_spikes[f"block{index}_lif"], f"block {index}")
    torch.testing.assert_close(output, graph_spikes[f"block{model.config.snn_num_layers - 1}_lif"])


def test_spikeclip_round_trip(tmp_path):
    """Every exported SpikeCLIP part, fed what the model fed its first neuron: identical spikes per layer and step,
    and the graph's analog output equal to the model's synapse + norm."""
    torch.manual_seed(0)
    model = _prepare(SpikeClipModel(SpikeClipConfig.from_preset("spikeclip-tiny")))
    written = export_nir(model, str(tmp_path / "spikeclip.nir"))
    tokenizer = model.vision_model.tokenizer
    names = ["text-encoder", "vision-tokenizer-stage1-2", "vision-tokenizer-stage3", "vision-position"]
    names += [f"vision-block{i}-mlp" for i in range(model.config.vision_config.num_hidden_layers)]
    assert [part["part"] for part in written] == names
    assert written[0]["file"] == str(tmp_path / "spikeclip-text-encoder.nir")

    parts = {part.name: part for part in spiking_parts(model)}
    outputs = {  # the module whose output is each part's analog output
        "text-encoder": model.text_model.fc2, "vision-tokenizer-stage1-2": tokenizer.stages[2],
        "vision-tokenizer-stage3": tokenizer.stages[3], "vision-position": tokenizer.position,
        **{f"vision-block{i}-mlp": block.mlp.fc2 for i, block in enumerate(model.vision_model.blocks)},
    }
    recorded, handles = {}, []
    for part in parts.values():
        for neuron in part.neurons:
            handles.append(neuron.register_forward_hook(lambda m, i, o: recorded.__setitem__(m, (i[0], o))))
    for module in outputs.values():
        handles.append(module.register_forward_hook(lambda m, i, o: recorded.__setitem__(m, (i[0], o))))
    vision = model.config.vision_config
    with torch.no_grad():
        model(input_ids=torch.randint(0, model.config.text_config.vocab_size, (3, 9)),
              pixel_values=torch.randn(2, 3, vision.image_size, vision.image_size, dtype=torch.float64))
    for handle in handles:
        handle.remove()

    for entry in written:
        part = parts[entry["part"]]
        first_input = recorded[part.neurons[0]][0]
        steps = first_input.shape[0]
        current = first_input.reshape(steps, -1, *part.input_shape)
        output, graph_spikes = simulate_nir(entry["file"], current)
        assert len(graph_spikes) == len(part.neurons)
        for neuron, (name, exported) in zip(part.neurons, graph_spikes.items()):
            _assert_same_spikes(recorded[neuron][1], exported, f"{part.name} {name}")
        expected = recorded[outputs[part.name]][1]
        torch.testing.assert_close(output, expected.reshape(output.shape), rtol=1e-9, atol=1e-9)


def test_cli_writes_a_graph_with_its_metadata(tmp_path, capsys):
    import nir

    model = AshNetsModel(AshNetsConfig.from_preset("ashnets-tiny"))
    model.save_pretrained(tmp_path / "checkpoint")
    assert cli_main(["export-nir", "--model", str(tmp_path / "checkpoint"), "--output", str(tmp_path / "g.nir")]) == 0
    assert '"part": "semantic-abstract-encoder"' in capsys.readouterr().out
    graph = nir.read(tmp_path / "g.nir")
    assert [type(graph.nodes[name]).__name__ for name in ("block0_synapse", "block0_lif")] == ["Affine", "LIF"]
    assert "visual token" in str(graph.metadata["reads"])
    assert describe_graph(graph)[0] == "input_1: Input 128"


def test_models_without_a_spiking_part_say_so(tmp_path):
    with pytest.raises(ValueError, match="use_snn=False"):
        export_nir(AshNetsModel(AshNetsConfig.from_preset("ashnets-tiny", use_snn=False)), str(tmp_path / "g.nir"))
    twin = AshNetsModel(AshNetsConfig.from_preset("ashnets-tiny", snn_neuron="relu", snn_time_steps=1))
    with pytest.raises(ValueError, match="ANN twin"):
        export_nir(twin, str(tmp_path / "g.nir"))
    soft = AshNetsModel(AshNetsConfig.from_preset("ashnets-tiny"))
    soft.snn.blocks[0].lif.v_reset = None
    with pytest.raises(ValueError, match="soft reset"):
        export_nir(soft, str(tmp_path / "g.nir"))
    assert not (tmp_path / "g.nir").exists()


def test_bad_arguments_are_refused_by_name(tmp_path, capsys):
    model = AshNetsModel(AshNetsConfig.from_preset("ashnets-tiny"))
    with pytest.raises(ValueError, match="is a folder: pass a file path"):
        export_nir(model, str(tmp_path))
    with pytest.raises(ValueError, match="dt must be a positive"):
        export_nir(model, str(tmp_path / "g.nir"), dt=0.0)
    assert cli_main(["export-nir", "--model", str(tmp_path / "missing"), "--output", str(tmp_path / "g.nir")]) == 2
    assert "has no config.json" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_missing_nir_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "nir", None)  # as if `nir` were not installed
    model = AshNetsModel(AshNetsConfig.from_preset("ashnets-tiny"))
    with pytest.raises(ImportError, match=r"ashnets\[nir\]"):
        export_nir(model, str(tmp_path / "g.nir"))


def test_round_trip_notices_a_wrong_export(tmp_path):
    """The comparison has teeth: a graph exported before a 5 % change of one norm's bias no longer spikes as the
    model does."""
    torch.manual_seed(0)
    model = _prepare(AshNetsModel(AshNetsConfig.from_preset("ashnets-tiny")))
    [written] = export_nir(model, str(tmp_path / "snn.nir"))
    with torch.no_grad():
        model.snn.blocks[0].norm.bias.mul_(1.05)
    tokens = torch.randn(3, 7, model.config.hidden_size, dtype=torch.float64)
    _, _, spikes = model.snn(tokens, "repeat")
    _, graph_spikes = simulate_nir(written["file"], tokens.flatten(0, 1).expand(model.config.snn_time_steps, -1, -1))
    assert not torch.equal(spikes[0].reshape(graph_spikes["block0_lif"].shape), graph_spikes["block0_lif"])


def test_drawing_example_writes_graphs_and_picture(tmp_path):
    from examples.draw_nir_graphs import main as draw_main

    draw_main(["--output_dir", str(tmp_path)])
    files = sorted(path.name for path in tmp_path.iterdir())
    assert "nir_graphs.png" in files and "ashnets-tiny.nir" in files and "spikeclip-tiny-text-encoder.nir" in files
    assert (tmp_path / "nir_graphs.png").stat().st_size > 10_000
