import os

import pytest
import torch

from conftest import make_batch, tiny_config
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging
from modeling_ashnets import AshNetsForQuestionAnswering, AshNetsModel


def seeded_model(config, cls=AshNetsModel):
    torch.manual_seed(0)
    return cls(config).eval()


def calibrated(model, inputs):
    """Set tdBN's running statistics from one batch, so that deeper spiking blocks fire in eval mode too."""
    norms = [block.norm for block in model.snn.blocks]
    for norm in norms:
        norm.momentum = 1.0
    with torch.no_grad():
        model.train()(**inputs)
    for norm in norms:
        norm.momentum = 0.1
    return model.eval()


def random_inputs(batch=3, length=7, image=64):
    generator = torch.Generator().manual_seed(1)
    return {
        "input_ids": torch.randint(1000, 5000, (batch, length), generator=generator),
        "attention_mask": torch.ones(batch, length, dtype=torch.long),
        "pixel_values": torch.randn(batch, 3, image, image, generator=generator),
    }


def test_output_shapes_in_every_mode(config):
    model = seeded_model(config)
    inputs = random_inputs()
    joint = model(**inputs)
    assert joint.num_visual_tokens == config.num_visual_tokens == 4
    assert joint.last_hidden_state.shape == (3, 7 + 4, config.hidden_size)
    assert joint.pooler_output.shape == (3, config.hidden_size)
    assert joint.snn_firing_rates.shape == (3, config.snn_num_layers)
    assert joint.snn_summary.shape == (3, config.snn_hidden_size)
    assert joint.text_embeds is None and joint.image_embeds is None

    text = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    assert text.last_hidden_state.shape == (3, 7, config.hidden_size)
    assert text.num_visual_tokens == 0 and text.snn_firing_rates is None
    assert text.text_embeds.shape == (3, config.projection_dim)
    torch.testing.assert_close(text.text_embeds.norm(dim=-1), torch.ones(3))

    image = model(pixel_values=inputs["pixel_values"])
    assert image.last_hidden_state.shape == (3, 4, config.hidden_size)
    assert image.image_embeds.shape == (3, config.projection_dim)
    assert model.get_image_features(inputs["pixel_values"]).pooler_output.shape == (3, config.projection_dim)
    assert model.get_text_features(inputs["input_ids"]).pooler_output.shape == (3, config.projection_dim)


def test_hidden_states_attentions_and_tuple_output(config):
    model = seeded_model(config)
    model.set_attn_implementation("eager")
    inputs = random_inputs()
    output = model(**inputs, output_hidden_states=True, output_attentions=True)
    assert len(output.hidden_states) == config.num_hidden_layers + 1
    assert all(h.shape == (3, 11, config.hidden_size) for h in output.hidden_states)
    assert len(output.attentions) == config.num_hidden_layers
    assert output.attentions[0].shape == (3, config.num_attention_heads, 11, 11)
    as_tuple = model(**inputs, return_dict=False)
    torch.testing.assert_close(as_tuple[0], output.last_hidden_state)


def test_real_processor_inputs(config, processor, easy_vqa_samples):
    model = seeded_model(config)
    batch = make_batch(processor, easy_vqa_samples)
    output = model(**batch)
    assert output.last_hidden_state.shape[0] == len(easy_vqa_samples)
    assert output.num_visual_tokens == 4


def test_determinism_and_state_reset(config):
    model = seeded_model(config)
    inputs = random_inputs()
    first = model(**inputs, output_spikes=True)
    second = model(**inputs, output_spikes=True)  # a stateful LIF would integrate the first call's membrane
    torch.testing.assert_close(first.last_hidden_state, second.last_hidden_state, rtol=0, atol=0)
    for a, b in zip(first.snn_spikes, second.snn_spikes):
        assert torch.equal(a, b)


def test_batching_equivalence(config):
    inputs = random_inputs()
    model = calibrated(seeded_model(config), inputs)
    inputs["attention_mask"][1, 5:] = 0  # padding must not change a sample's result
    batched = model(**inputs, output_spikes=True)
    assert (batched.snn_firing_rates > 0.01).all()  # every block fires, so the comparison means something
    text_only = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    image_only = model(pixel_values=inputs["pixel_values"])
    for i in range(3):
        length = int(inputs["attention_mask"][i].sum())
        ids, pixels = inputs["input_ids"][i : i + 1, :length], inputs["pixel_values"][i : i + 1]
        single = model(input_ids=ids, pixel_values=pixels, output_spikes=True)
        torch.testing.assert_close(single.pooler_output[0], batched.pooler_output[i], atol=1e-5, rtol=1e-4)
        for alone, together in zip(single.snn_spikes, batched.snn_spikes):
            assert torch.equal(alone[:, 0], together[:, i])
        torch.testing.assert_close(model(input_ids=ids).text_embeds[0], text_only.text_embeds[i], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(model(pixel_values=pixels).image_embeds[0], image_only.image_embeds[i], atol=1e-5, rtol=1e-4)


def test_eager_equals_sdpa(config):
    model = seeded_model(config)
    inputs = random_inputs()
    inputs["attention_mask"][0, 4:] = 0
    model.set_attn_implementation("sdpa")
    sdpa = model(**inputs).last_hidden_state
    model.set_attn_implementation("eager")
    eager = model(**inputs).last_hidden_state
    torch.testing.assert_close(sdpa, eager, atol=1e-5, rtol=1e-4)
    model.set_attn_implementation("sdpa")
    logging.warning_once.cache_clear()  # the warning is logged once per process
    with CaptureLogger(logging.get_logger("modeling_ashnets.modeling_ashnets")) as captured:
        fallback = model(**inputs, output_attentions=True)  # as transformers: warn and run eager attention
    assert "needs eager attention" in captured.out
    torch.testing.assert_close(fallback.last_hidden_state, eager, atol=1e-5, rtol=1e-4)
    assert len(fallback.attentions) == config.num_hidden_layers
    torch.testing.assert_close(fallback.attentions[0][0, :, :, 4:7], torch.zeros_like(fallback.attentions[0][0, :, :, 4:7]))


def test_gradients_reach_cnn_snn_and_fusion(config):
    torch.manual_seed(0)
    model = AshNetsForQuestionAnswering(tiny_config(id2label={i: str(i) for i in range(5)})).train()
    inputs = random_inputs(batch=4)
    loss = model(**inputs, labels=torch.tensor([0, 1, 2, 3])).loss
    loss.backward()
    parameters = dict(model.named_parameters())
    for name in (
        "ashnets.visual_encoder.backbone.embedder.embedder.convolution.weight",  # CNN
        "ashnets.snn.blocks.0.linear.weight",  # SNN, only reachable through the surrogate gradient
        "ashnets.snn.blocks.1.norm.weight",  # tdBN
        "ashnets.summary_ratio.ratio",
        "ashnets.encoder.layers.0.self_attn.q_proj.weight",  # fusion transformer
        "ashnets.text_embeddings.word_embeddings.weight",
    ):
        grad = parameters[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_spikes_are_binary_and_rates_are_k_over_t(config):
    model = seeded_model(config).train()  # tdBN's batch statistics make untrained neurons fire
    output = model(**random_inputs(batch=4), output_spikes=True)
    assert len(output.snn_spikes) == config.snn_num_layers
    for spikes in output.snn_spikes:
        assert spikes.shape == (config.snn_time_steps, 4, config.num_visual_tokens, config.snn_hidden_size)
        assert set(spikes.unique().tolist()) == {0.0, 1.0}
    rates = output.snn_spikes[-1].mean(dim=0) * config.snn_time_steps
    torch.testing.assert_close(rates, rates.round())
    assert ((output.snn_firing_rates >= 0) & (output.snn_firing_rates <= 1)).all()


def test_similar_input_mode_uses_other_images(config):
    model = seeded_model(config)
    inputs = random_inputs(batch=4)

    def first_block_spikes(**kwargs):
        return model(**inputs, output_spikes=True, **kwargs).snn_spikes[0]

    repeat = first_block_spikes(snn_input_mode="repeat")
    similar = first_block_spikes(snn_input_mode="similar")
    assert torch.equal(repeat[0], similar[0])  # step 0 is the image itself in both modes
    assert not torch.equal(repeat, similar)
    # An explicit similarity matrix decides which images feed the later time steps.
    order_a = first_block_spikes(snn_input_mode="similar", image_similarity=torch.eye(4).roll(1, dims=1))
    order_b = first_block_spikes(snn_input_mode="similar", image_similarity=torch.eye(4).roll(-1, dims=1))
    assert not torch.equal(order_a, order_b)
    with pytest.raises(ValueError, match="image_similarity must have shape"):
        model(**inputs, snn_input_mode="similar", image_similarity=torch.eye(3))


def test_summary_ratio_switch():
    inputs = random_inputs()
    with_ratio = calibrated(seeded_model(tiny_config(summary_ratio_init=0.0)), inputs)
    ablation = seeded_model(tiny_config(use_summary_ratio=False))
    assert ablation.summary_ratio.ratio is None  # no parameter the forward would not use
    ablation.load_state_dict({k: v for k, v in with_ratio.state_dict().items() if k != "summary_ratio.ratio"})
    ablation.eval()
    no_snn = with_ratio(**inputs).last_hidden_state  # r = 0 removes the SNN's contribution
    with_ratio.summary_ratio.spike_projection.weight.data.zero_()
    with_ratio.summary_ratio.spike_projection.bias.data.zero_()
    torch.testing.assert_close(with_ratio(**inputs).last_hidden_state, no_snn)  # ... as W = 0 does
    with_ratio.load_state_dict(ablation.state_dict(), strict=False)  # all but the ratio
    with_ratio.summary_ratio.ratio.data.fill_(1.0)  # r = 1 is the ablation V = F_ann + W rate(S)
    torch.testing.assert_close(with_ratio(**inputs).last_hidden_state, ablation(**inputs).last_hidden_state)
    with_ratio.summary_ratio.ratio.data.fill_(0.5)
    half = with_ratio(**inputs).last_hidden_state
    assert not torch.allclose(half, no_snn) and not torch.allclose(half, ablation(**inputs).last_hidden_state)
    assert with_ratio.summary_ratio.ratio.shape == (32,)


def test_without_the_snn_the_visual_tokens_are_the_cnns_alone():
    from modeling_ashnets import AshNetsForPreTraining
    from modeling_ashnets.energy import estimate_energy

    inputs = random_inputs()
    silent = seeded_model(tiny_config(summary_ratio_init=0.0))  # r = 0: the SNN adds nothing
    ablation = seeded_model(tiny_config(use_snn=False))
    assert ablation.snn is None and ablation.summary_ratio is None
    assert not any(name.startswith(("snn.", "summary_ratio.")) for name, _ in ablation.named_parameters())
    missing, unexpected = ablation.load_state_dict(silent.state_dict(), strict=False)
    assert not missing and all(key.startswith(("snn.", "summary_ratio.")) for key in unexpected)
    outputs = ablation(**inputs)
    torch.testing.assert_close(outputs.last_hidden_state, silent(**inputs).last_hidden_state)
    assert outputs.snn_firing_rates.shape == (3, 0) and outputs.snn_summary is None
    report = estimate_energy(ablation, inputs)
    assert not report.spiking and not report.sops and report.firing_rate_per_block == []
    with pytest.raises(ValueError, match="set stua_weight=0"):
        AshNetsForPreTraining(tiny_config(use_snn=False))
    AshNetsForPreTraining(tiny_config(use_snn=False, stua_weight=0.0))


def test_contrastive_embeddings_read_the_pooler_or_a_layer_normed_summary():
    inputs = random_inputs()
    pooler = seeded_model(tiny_config())
    normed = seeded_model(tiny_config(contrastive_summary="layer_norm"))
    assert pooler.contrastive_norm is None and normed.contrastive_norm is not None
    text = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
    expected = torch.nn.functional.normalize(
        normed.text_projection(normed.contrastive_norm(normed(**text).last_hidden_state[:, 0])), dim=-1)
    torch.testing.assert_close(normed(**text).text_embeds, expected)
    image = normed(pixel_values=inputs["pixel_values"])
    expected = torch.nn.functional.normalize(
        normed.visual_projection(normed.contrastive_norm(image.last_hidden_state.mean(dim=1))), dim=-1)
    torch.testing.assert_close(image.image_embeds, expected)
    for model in (pooler, normed):  # get_*_features are the same embeddings before normalisation
        torch.testing.assert_close(torch.nn.functional.normalize(model.get_text_features(**text).pooler_output, dim=-1),
                                   model(**text).text_embeds)
        torch.testing.assert_close(
            torch.nn.functional.normalize(model.get_image_features(inputs["pixel_values"]).pooler_output, dim=-1),
            model(pixel_values=inputs["pixel_values"]).image_embeds)


def test_visual_embeds_stand_in_for_pixel_values(config):
    """MVM's path: visual features computed, (masked,) embedded and passed in give the pixel path's outputs."""
    model = seeded_model(config)
    inputs = random_inputs()
    with torch.no_grad():
        expected = model(**inputs).last_hidden_state
        visual, grid, *_ = model.visual_features(inputs["pixel_values"])
        given = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                      visual_embeds=model.embed_visual(visual, grid)).last_hidden_state
    assert torch.allclose(expected, given, atol=1e-6)


def test_gradient_checkpointing(config):
    model = seeded_model(config).train()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert model.encoder.layers[0].gradient_checkpointing
    model(**random_inputs()).last_hidden_state.sum().backward()
    assert model.encoder.layers[0].fc1.weight.grad is not None


def test_save_and_load(config, tmp_path):
    model = seeded_model(config, AshNetsForQuestionAnswering)
    inputs = random_inputs()
    expected = model(**inputs).logits
    model.save_pretrained(tmp_path)
    loaded = AshNetsForQuestionAnswering.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded(**inputs).logits, expected, rtol=0, atol=0)
    # Buffers and constants set in _init_weights survive meta-device loading.
    torch.testing.assert_close(
        loaded.ashnets.text_embeddings.position_ids, torch.arange(config.max_position_embeddings)[None]
    )
    base = AshNetsModel.from_pretrained(tmp_path).eval()  # a head checkpoint loads into the base model
    torch.testing.assert_close(base(**inputs).pooler_output, model.ashnets(**inputs).pooler_output)


def test_non_main_process_leaves_the_folder_to_the_main_one(config, tmp_path):
    """Every rank of a multi-process run calls save_pretrained; the others must not read the main one's config.json
    while it is being written."""
    (tmp_path / "config.json").write_text("")  # the main process's file, caught mid-write
    seeded_model(config, AshNetsForQuestionAnswering).save_pretrained(tmp_path, is_main_process=False)
    assert os.listdir(tmp_path) == ["config.json"] and (tmp_path / "config.json").read_text() == ""


def test_fresh_init_is_complete(config, tmp_path):
    """Tensors missing from a checkpoint get their real init after meta-device loading, not leftover memory."""
    from safetensors.torch import load_file, save_file

    seeded_model(config).save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    kept = {k: v for k, v in weights.items() if k.startswith("pooler.")}  # drop CNN, SNN, fusion and embeddings
    save_file(kept, tmp_path / "model.safetensors", metadata={"format": "pt"})
    loaded = AshNetsForQuestionAnswering.from_pretrained(tmp_path, id2label={0: "a", 1: "b"}, snn_num_layers=3)
    for name, tensor in loaded.state_dict().items():
        assert torch.isfinite(tensor.float()).all(), name
    for block in loaded.ashnets.snn.blocks:
        norm = block.norm
        torch.testing.assert_close(norm.weight, torch.full_like(norm.weight, config.snn_tdbn_alpha * config.snn_v_threshold))
        assert norm.bias.eq(0).all() and norm.running_mean.eq(0).all() and norm.running_var.eq(1).all()
        assert int(norm.num_batches_tracked) == 0
        assert 0.5 < block.linear.weight.std() * block.linear.in_features**0.5 < 1.5
    torch.testing.assert_close(loaded.ashnets.summary_ratio.ratio, torch.full((32,), config.summary_ratio_init))
    bn = loaded.ashnets.visual_encoder.backbone.embedder.embedder.normalization
    assert bn.running_var.eq(1).all() and bn.weight.eq(1).all()
    assert 0.01 < loaded.vqa_classifier[0].weight.std() < 0.03  # normal(0, initializer_range)
    torch.testing.assert_close(
        loaded.ashnets.text_embeddings.position_ids, torch.arange(config.max_position_embeddings)[None]
    )
    # A pre-training head loaded from a task checkpoint starts with an empty visual dictionary and its own init.
    from modeling_ashnets import AshNetsForPreTraining

    pretraining = AshNetsForPreTraining.from_pretrained(tmp_path)
    dictionary = pretraining.visual_dictionary
    assert dictionary.embeddings.eq(0).all() and dictionary.cluster_size.eq(0).all() and not bool(dictionary.initialized)
    assert 0.01 < pretraining.visual_mask_embedding.std() < 0.03
    assert pretraining.logit_scale.item() == pytest.approx(config.logit_scale_init_value)


def test_visual_grid_rounds_up_like_the_cnn():
    for image_size, pool, side in [(100, 1, 4), (224, 2, 4), (96, 2, 2), (64, 1, 2)]:
        config = tiny_config(image_size=image_size, visual_pool_size=pool)
        assert config.visual_grid_size == side
        output = seeded_model(config)(pixel_values=torch.randn(1, 3, image_size, image_size))
        assert output.num_visual_tokens == side * side


def test_heads_pass_snn_arguments_and_reject_unknown_ones():
    model = seeded_model(tiny_config(id2label={0: "a", 1: "b"}), AshNetsForQuestionAnswering)
    inputs = random_inputs(batch=4)
    calibrated(model.ashnets, inputs)
    repeat = model(**inputs, snn_input_mode="repeat").snn_firing_rates
    assert not torch.equal(model(**inputs, snn_input_mode="similar").snn_firing_rates, repeat)
    with pytest.raises(TypeError, match="snn_input_mod"):
        model(**inputs, snn_input_mod="similar")
    with pytest.raises(ValueError, match="Unknown SNN input mode 'simlar'"):
        model(**{k: v[:1] for k, v in inputs.items()}, snn_input_mode="simlar")  # checked even for one image


def test_question_answering_loss_and_label_errors():
    config = tiny_config(id2label={i: str(i) for i in range(4)})
    model = seeded_model(config, AshNetsForQuestionAnswering)
    inputs = random_inputs(batch=2)
    soft = torch.tensor([[1.0, 0.3, 0.0, 0.0], [0.0, 0.0, 0.6, 1.0]])
    output = model(**inputs, labels=soft)
    assert output.logits.shape == (2, 4) and output.loss.ndim == 0 and torch.isfinite(output.loss)
    hard = model(**inputs, labels=torch.tensor([0, 3])).loss
    one_hot = model(**inputs, labels=torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 1.0]])).loss
    torch.testing.assert_close(hard, one_hot)
    for labels, error, message in [
        (torch.tensor([0, 4]), ValueError, r"labels hold answer ids from 0 to 4; expected answer ids in \[0, 4\)"),
        (torch.tensor([0.0, 1.0]), TypeError, "labels of shape \\(batch,\\) must be integer answer ids"),
        (torch.ones(2, 3), ValueError, r"labels have shape \(2, 3\); .* soft scores in \[0, 1\] .* shape \(2, 4\)"),
        (torch.ones(2, 4, dtype=torch.long), TypeError, "labels of shape \\(batch, num_labels\\) must be float scores"),
        (torch.full((2, 4), 1.5), ValueError, r"labels hold soft scores that .* outside \[0, 1\]"),
        (torch.tensor([0, 1, 2]), ValueError, r"labels have shape \(3,\); expected answer ids in \[0, 4\)"),
        ([0, 3], TypeError, r"labels must be a torch.Tensor, got list; expected answer ids in \[0, 4\)"),
        ("yes", TypeError, "labels must be a torch.Tensor, got str"),
    ]:
        with pytest.raises(error, match=message):  # a fresh model: values are checked until one call passed them
            seeded_model(config, AshNetsForQuestionAnswering)(**inputs, labels=labels)


def test_values_are_checked_until_a_call_passes_them_and_shapes_always(config, monkeypatch):
    """Value checks read the tensors (a device wait on a GPU), so a model runs them until a call has passed them;
    shape checks run on every call; `check_input_values=False` skips the value checks."""
    import modeling_ashnets.modeling_ashnets as modeling

    checked = []
    original = modeling._check_values
    monkeypatch.setattr(modeling, "_check_values", lambda *args: checked.append(1) or original(*args))
    model = seeded_model(config)
    bad = {**random_inputs(), "input_ids": torch.full((3, 7), 40000)}
    with pytest.raises(ValueError, match=r"input_ids must lie in \[0, 30522\)"):
        model(**bad)
    for _ in range(3):
        model(**random_inputs())
    assert len(checked) == 2  # the failed call and the first good one
    with pytest.raises(ValueError, match="pixel_values must have 3 channels"):
        model(**{**random_inputs(), "pixel_values": torch.randn(3, 1, 64, 64)})
    quiet = seeded_model(tiny_config(check_input_values=False))
    quiet(**random_inputs())
    assert len(checked) == 2


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda i: i.update(pixel_values=torch.randn(3, 1, 64, 64)), "pixel_values must have 3 channels .* got 1 channels"),
        (lambda i: i.update(pixel_values=torch.randn(3, 64, 64, 3)), "pixel_values must have 3 channels .* channels-first"),
        (lambda i: i.update(pixel_values=torch.randn(3, 64, 64)), r"pixel_values must have shape \(batch, 3, height"),
        (lambda i: i.update(pixel_values=torch.randn(3, 2, 3, 64, 64)), "holds image pairs"),
        (lambda i: i["pixel_values"].__setitem__((0, 0, 0, 0), float("nan")), "NaN"),
        (lambda i: i.update(pixel_values=torch.randn(2, 3, 64, 64)), "Batch sizes differ: 3 texts but 2 images"),
        (lambda i: i.update(input_ids=torch.full((3, 7), 40000)), r"input_ids must lie in \[0, 30522\)"),
        (lambda i: i.update(input_ids=torch.ones(3, 100, dtype=torch.long), attention_mask=None), "at most 64"),
        (lambda i: i.update(attention_mask=torch.ones(3, 5)), r"attention_mask must have shape \(3, 7\)"),
        (lambda i: i.update(input_ids=torch.ones(3, 0, dtype=torch.long), attention_mask=None), "empty"),
        (lambda i: i.update(pixel_values=torch.randn(3, 3, 256, 256)), "grid of visual tokens"),
        (lambda i: i.clear(), "Nothing to encode"),
        (lambda i: i.update(visual_embeds=torch.randn(3, 4, 32)), "either pixel_values or visual_embeds"),
        (lambda i: i.update(pixel_values=None, visual_embeds=torch.randn(3, 4, 31)), r"visual_embeds must have shape"),
        (lambda i: i.update(pixel_values=None, visual_embeds=torch.randn(2, 4, 32)), "2 visual_embeds"),
    ],
)
def test_bad_inputs_raise_clear_errors(config, change, message):
    model = seeded_model(config)
    inputs = random_inputs()
    change(inputs)
    with pytest.raises(ValueError, match=message):
        model(**inputs)


def test_softmax_vqa_loss_is_cross_entropy_against_normalised_scores():
    config = tiny_config(id2label={i: str(i) for i in range(4)}, vqa_loss="softmax")
    model = seeded_model(config, AshNetsForQuestionAnswering)
    inputs = random_inputs(batch=3)
    logits = model(**inputs).logits
    hard = model(**inputs, labels=torch.tensor([0, 3, 1])).loss
    torch.testing.assert_close(hard, torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3, 1])))
    soft = torch.tensor([[0.6, 0.3, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])  # row 2: no known answer
    expected = torch.stack([
        -(torch.tensor([2 / 3, 1 / 3, 0, 0]) * logits[0].log_softmax(-1)).sum(), -logits[2].log_softmax(-1)[1]
    ]).mean()
    torch.testing.assert_close(model(**inputs, labels=soft).loss, expected)


def record_calls(model) -> list[str]:
    """Names of the encoders that ran: a bad input must be refused before any of them does."""
    calls = []
    for name in ("text_embeddings", "visual_encoder"):
        getattr(model, name).register_forward_pre_hook(lambda module, args, name=name: calls.append(name))
    return calls


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda i: i.update(pixel_values=torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)),
         "pixel_values must be a floating-point tensor of normalised images, got torch.uint8"),
        (lambda i: i.update(pixel_values=torch.zeros(3, 3, 64, 64, dtype=torch.long)), "got torch.int64"),
        (lambda i: i.update(pixel_values=[[0.5] * 64] * 64), "pixel_values must be a torch.Tensor .* got list"),
        (lambda i: i.update(input_ids=i["input_ids"].float()),
         r"input_ids must hold integer token ids \(torch.long\), got torch.float32"),
        (lambda i: i.update(input_ids=[[101, 2054, 102]] * 3), "input_ids must be a torch.Tensor .* got list"),
        (lambda i: i.update(input_ids="what colour is the shape?"), "input_ids must be a torch.Tensor .* got str"),
        (lambda i: i.update(attention_mask=[[1] * 7] * 3), "attention_mask must be a torch.Tensor"),
    ],
)
def test_wrong_types_raise_type_errors_before_any_work(config, change, message):
    model = seeded_model(config)
    calls = record_calls(model)
    inputs = random_inputs()
    change(inputs)
    with pytest.raises(TypeError, match=message):
        model(**inputs)
    assert calls == []


@pytest.mark.parametrize("keep", [("input_ids", "attention_mask", "pixel_values"), ("input_ids",), ("pixel_values",)])
def test_an_empty_batch_is_refused(config, keep):
    model = seeded_model(config)
    calls = record_calls(model)
    empty = {name: tensor[:0] for name, tensor in random_inputs().items() if name in keep}
    with pytest.raises(ValueError, match=r"(input_ids|pixel_values) holds an empty batch \(batch size 0\)"):
        model(**empty)
    assert calls == []


def test_head_label_errors_come_before_the_forward_pass():
    model = seeded_model(tiny_config(id2label={i: str(i) for i in range(4)}), AshNetsForQuestionAnswering)
    calls = record_calls(model.ashnets)
    with pytest.raises(ValueError, match=r"labels hold answer ids from 0 to 9"):
        model(**random_inputs(batch=2), labels=torch.tensor([0, 9]))
    with pytest.raises(TypeError, match="input_ids must hold integer token ids"):
        model(**{**random_inputs(batch=2), "input_ids": torch.ones(2, 7)}, labels=torch.tensor([0, 1]))
    assert calls == []


def test_parameter_counts_of_presets():
    from modeling_ashnets import AshNetsConfig

    with torch.device("meta"):
        tiny = AshNetsModel(AshNetsConfig.from_preset("ashnets-tiny"))
        base = AshNetsModel(AshNetsConfig.from_preset("ashnets-base"))
    assert sum(p.numel() for p in tiny.parameters()) == 5_683_872
    assert sum(p.numel() for p in base.parameters()) == 171_390_016  # ResNet-152 + BERT-base-sized fusion
    assert sum(p.numel() for p in base.visual_encoder.parameters()) == 59_717_440


@pytest.mark.parametrize("training", [True, False])
def test_repeat_mode_projects_the_input_once_with_the_same_results(training):
    """The fast path (first spiking block's projection computed once, not T times) changes no output or gradient."""
    config = tiny_config(snn_time_steps=6)
    inputs = random_inputs()
    results = []
    for reuse in (True, False):
        model = seeded_model(config).train(training)
        model.snn.reuse_static_projection = reuse
        output = model(**inputs, output_spikes=True)
        output.pooler_output.sum().backward()
        grad = model.snn.blocks[0].linear.weight.grad
        results.append((output.pooler_output.detach(), output.snn_spikes, grad))
    (fast, fast_spikes, fast_grad), (slow, slow_spikes, slow_grad) = results
    torch.testing.assert_close(fast, slow)
    assert all(torch.equal(a, b) for a, b in zip(fast_spikes, slow_spikes))
    torch.testing.assert_close(fast_grad, slow_grad)


def test_bf16_autocast_stays_close_to_fp32():
    """bf16 autocast (CPU here; the same path runs on GPUs) changes the logits by rounding only, and trains."""
    model = seeded_model(tiny_config(id2label={i: str(i) for i in range(5)}), AshNetsForQuestionAnswering)
    inputs = random_inputs(batch=8)
    with torch.no_grad():
        expected = model(**inputs).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(**inputs).logits
    assert mixed.dtype == torch.bfloat16
    torch.testing.assert_close(mixed.float(), expected, atol=0.02, rtol=0)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(**inputs, labels=torch.zeros(8, 5)).loss
    loss.backward()
    assert torch.isfinite(loss) and model.ashnets.snn.blocks[0].linear.weight.grad.abs().sum() > 0


def test_compiled_neurons_give_the_eager_spikes():
    """The opt-in torch.compile path for the LIF layers: the same spikes, outputs and gradients as spikingjelly's."""
    config = tiny_config(snn_time_steps=4)
    inputs = random_inputs()
    results = []
    for compiled in (False, True):
        model = seeded_model(config).train()
        model.snn.use_compiled_neurons(compiled)
        output = model(**inputs, output_spikes=True)
        output.pooler_output.sum().backward()
        results.append((output.snn_spikes, output.pooler_output.detach(), model.snn.blocks[0].linear.weight.grad))
    (eager_spikes, eager, eager_grad), (spikes, pooled, grad) = results
    assert all(torch.equal(a, b) for a, b in zip(eager_spikes, spikes))
    torch.testing.assert_close(pooled, eager)
    torch.testing.assert_close(grad, eager_grad)
    model.snn.use_compiled_neurons(False)
    assert type(model.snn.blocks[0].lif).__name__ == "LIFNode" and "_eager_lif" not in model.snn.blocks[0].__dict__
