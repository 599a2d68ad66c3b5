"""What only a GPU can check, marked `cuda`: skipped (with the reason) on a machine without one, run by
scripts/gpu_check.sh on a machine lent a GPU."""

import pytest
import torch

from conftest import tiny_config, tiny_gshn_config


pytestmark = pytest.mark.cuda


def _families():
    from modeling_ashnets import AshNetsForQuestionAnswering, GshnForQuestionAnswering, SpikeClipConfig, SpikeClipModel

    answers = {i: str(i) for i in range(4)}
    yield "ashnets", AshNetsForQuestionAnswering(tiny_config(id2label=answers))
    yield "gshn", GshnForQuestionAnswering(tiny_gshn_config(id2label=answers))
    yield "spikeclip", SpikeClipModel(SpikeClipConfig.from_preset("spikeclip-tiny"))


def _batch(name, model, device):
    generator = torch.Generator().manual_seed(0)
    if name == "spikeclip":
        text, vision = model.config.text_config, model.config.vision_config
        return {"input_ids": torch.randint(1, text.vocab_size, (8, 12), generator=generator).to(device),
                "pixel_values": torch.randn(8, 3, vision.image_size, vision.image_size, generator=generator).to(device),
                "return_loss": True}
    side = model.config.image_size
    batch = {"input_ids": torch.randint(1000, 2000, (8, 10), generator=generator).to(device),
             "pixel_values": torch.randn(8, 3, side, side, generator=generator).to(device),
             "labels": torch.nn.functional.one_hot(torch.arange(8) % 4, 4).float().to(device)}
    if name == "gshn":
        cells = torch.arange(side) * 2 // side
        batch["segment_ids"] = (cells[:, None] * 2 + cells[None, :]).expand(8, side, side).contiguous().to(device)
    return batch


@pytest.mark.parametrize("family", ["ashnets", "gshn", "spikeclip"])
def test_bf16_training_on_cuda_learns_a_batch(family):
    """Every family trains in bf16 autocast on the GPU: finite loss and gradients, and the loss on a fixed batch
    falls."""
    torch.manual_seed(0)
    name, model = next((name, model) for name, model in _families() if name == family)
    device = torch.device("cuda")
    model.to(device).train()
    batch = _batch(name, model, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.parametrize("implementation", ["torch", "cuda", "triton"])
def test_spikingjelly_cuda_lif_equals_the_reference(implementation):
    """spikingjelly's CUDA and Triton LIF kernels give the CPU reference's spikes exactly on inputs whose arithmetic is
    exact (steps of 1/64), and its gradients to rounding."""
    from benchmarks.bench_gpu import lif_inputs, lif_run, run_lif_implementation

    results = run_lif_implementation(implementation)
    spikes, grad = lif_run(lif_inputs()["dyadic"])
    assert torch.equal(results["dyadic"]["spikes"], spikes)
    torch.testing.assert_close(results["dyadic"]["grad"], grad, rtol=1e-4, atol=1e-5)


def test_nir_export_of_a_model_on_cuda(tmp_path):
    pytest.importorskip("nir")
    from modeling_ashnets import AshNetsModel
    from modeling_ashnets.nir_export import export_nir, simulate_nir

    model = AshNetsModel(tiny_config()).cuda().eval()
    [written] = export_nir(model, str(tmp_path / "snn.nir"))
    tokens = torch.randn(2, 5, model.config.hidden_size, device="cuda")
    _, _, spikes = model.snn(tokens, "repeat")
    _, graph_spikes = simulate_nir(written["file"], tokens.flatten(0, 1).expand(model.config.snn_time_steps, -1, -1))
    mismatches = (graph_spikes["block0_lif"] != spikes[0].flatten(1, 2)).float().mean().item()
    assert mismatches < 1e-3  # float32 on two devices: a spike exactly at the threshold may flip
