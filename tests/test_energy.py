"""The energy estimate: operation counts follow the convention exactly, spikes are counted, and the ANN twin counts
MACs only."""

import json

import pytest
import torch

from conftest import tiny_config
from modeling_ashnets import AshNetsForQuestionAnswering, AshNetsModel
from modeling_ashnets.energy import E_AC_PJ, E_MAC_PJ, estimate_energy


def _inputs(batch=3):
    generator = torch.Generator().manual_seed(1)
    return {"input_ids": torch.randint(1000, 5000, (batch, 7), generator=generator),
            "attention_mask": torch.ones(batch, 7, dtype=torch.long),
            "pixel_values": torch.randn(batch, 3, 64, 64, generator=generator)}


def test_counts_follow_the_convention():
    torch.manual_seed(0)
    config = tiny_config(snn_time_steps=4)
    model = AshNetsModel(config)
    inputs = _inputs()
    report = estimate_energy(model, inputs)
    tokens, width = config.num_visual_tokens, config.snn_hidden_size
    rates = report.firing_rate_per_block
    assert len(rates) == 2 and all(0 < r < 1 for r in rates)
    assert len(report.firing_rate_per_step[0]) == 4
    assert sum(report.firing_rate_per_step[1]) / 4 == pytest.approx(rates[1])
    # SOPs = firing rate of the input x T x the layer's MACs (block 1 is fed by block 0's spikes, the summary
    # projection by block 1's).
    expected = rates[0] * 4 * tokens * width * width + rates[1] * 4 * tokens * width * config.hidden_size
    assert report.sops["snn"] + report.sops["summary_ratio"] == pytest.approx(expected, rel=1e-5)
    # The first block is fed analog features once (repeat mode): hidden x snn_hidden MACs per token.
    assert report.macs["snn"] == tokens * config.hidden_size * width
    assert report.energy_pj["snn"] == pytest.approx(report.macs["snn"] * E_MAC_PJ + report.sops["snn"] * E_AC_PJ)
    assert report.total_pj == pytest.approx(sum(report.energy_pj.values()))
    # Attention's matrix products are in the fusion count: 2 L^2 d per layer on top of the linear layers.
    length = 7 + tokens
    linear = sum(p.numel() for n, p in model.encoder.named_parameters() if n.endswith("weight") and p.dim() == 2)
    assert report.macs["fusion"] - linear * length - config.hidden_size ** 2 == config.num_hidden_layers * 2 * length ** 2 * config.hidden_size


def test_ann_twin_has_no_spikes_and_a_head_counts_apart():
    torch.manual_seed(0)
    twin = AshNetsForQuestionAnswering(tiny_config(snn_neuron="relu", snn_time_steps=1, id2label={0: "a", 1: "b"}))
    report = estimate_energy(twin, _inputs())
    assert not report.sops and report.firing_rate_per_block == [] and not report.spiking
    width = twin.config.snn_hidden_size
    tokens = twin.config.num_visual_tokens
    assert report.macs["snn"] == tokens * (twin.config.hidden_size * width + width * width)
    assert report.macs["summary_ratio"] == tokens * width * twin.config.hidden_size
    assert report.macs["head"] > 0
    with pytest.raises(Exception, match="snn_time_steps=1"):
        tiny_config(snn_neuron="relu", snn_time_steps=3)


def test_spike_statistics_example_draws_and_compares(tmp_path, processor):
    from examples import spike_statistics

    for name, overrides in (("model", {}), ("twin", {"snn_neuron": "relu", "snn_time_steps": 1})):
        torch.manual_seed(0)
        model = AshNetsForQuestionAnswering(tiny_config(id2label={0: "a", 1: "b"}, **overrides))
        model.save_pretrained(tmp_path / name)
        processor.save_pretrained(tmp_path / name)
    results = spike_statistics.main(["--model", str(tmp_path / "model"), "--twin", str(tmp_path / "twin"),
                                     "--num_samples", "8", "--output_dir", str(tmp_path / "out")])
    for picture in ("spike_raster.png", "firing_rate_map.png", "energy_breakdown.png"):
        assert (tmp_path / "out" / picture).stat().st_size > 5000
    ratio = results["ratios_ash_nets_over_twin"]["visual_semantic_branch_energy"]
    assert 0 < ratio < 1  # spikes are cheaper than the twin's MACs at these firing rates


def test_spikeclip_counts_spike_fed_layers_as_sops_and_the_twin_as_macs(tmp_path, capsys):
    """SpikeCLIP: the image's first convolution (analog input, the same at every step: counted once) and the
    projection cost MACs; every other layer of the spiking towers reads spikes and costs SOPs = spikes x fan-out.
    The ANN twin has the same MACs in every layer and no SOPs. `ashnets energy` compares the two."""
    from test_spikeclip import make_processor, random_inputs, seeded_model, small_config

    from modeling_ashnets import cli
    from modeling_ashnets.energy import estimate_spikeclip_energy

    config = small_config()
    model, twin = seeded_model(config), seeded_model(config.ann_twin())
    inputs = random_inputs(batch=2)
    report, twin_report = estimate_spikeclip_energy(model, inputs), estimate_spikeclip_energy(twin, inputs)
    vision = config.vision_config
    first_conv = vision.image_size**2 * vision.tokenizer_channels[0] * 3 * 9
    assert report.macs["image_encoder"] == first_conv + vision.hidden_size * config.projection_dim
    assert "text_encoder" not in report.macs and report.sops["text_encoder"] > 0
    assert not twin_report.sops and twin_report.macs["image_encoder"] > report.macs["image_encoder"]
    # fc2 of the text tower, by hand: spikes reaching it x its outputs, per sample.
    spikes = []
    handle = model.text_model.fc2.register_forward_hook(lambda m, args, out: spikes.append(args[0].sum()))
    model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    handle.remove()
    fc1_sops = report.firing_rate_per_block[-2] * vision.time_steps * config.text_config.intermediate_size * (
        config.text_config.max_position_embeddings * config.text_config.embedding_size)
    assert report.sops["text_encoder"] == pytest.approx(float(spikes[0].detach()) / 2 * config.projection_dim + fc1_sops,
                                                        rel=1e-5)
    assert report.energy_pj["image_encoder"] < twin_report.energy_pj["image_encoder"]
    processor = make_processor(config)
    for folder, network in (("model", model), ("twin", twin)):
        network.save_pretrained(tmp_path / folder)
        processor.save_pretrained(tmp_path / folder)
    capsys.readouterr()
    assert cli.main(["energy", "--model", str(tmp_path / "model"), "--twin", str(tmp_path / "twin"),
                     "--num_samples", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 < result["image_encoder_energy_ratio_model_over_twin"] < 1
