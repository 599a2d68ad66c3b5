"""SpikeCLIP (SpikeClipConfig, SpikeClipModel, SpikeClipProcessor): what every ASH-Nets class guarantees, checked on
SpikeCLIP. Most tests use a config far smaller than spikeclip-tiny (16x16 images, 32 wide); the preset itself is
checked where its sizes matter."""

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from spikingjelly.activation_based import neuron
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForZeroShotImageClassification,
    AutoProcessor,
    AutoTokenizer,
)

from modeling_ashnets import (
    SpikeClipConfig,
    SpikeClipImageProcessor,
    SpikeClipModel,
    SpikeClipProcessor,
    SpikeClipTextConfig,
    SpikeClipVisionConfig,
)
from modeling_ashnets.configuration_spikeclip import SPIKECLIP_AUTO_MAP
from modeling_ashnets.training import default_tokenizer_path


def small_config(**overrides) -> SpikeClipConfig:
    """spikeclip-tiny shrunk for unit tests: 16x16 images (16 tokens), 32-wide towers, T = 4, the real BERT
    vocabulary (so that the processor's ids fit)."""
    vision = {"tokenizer_channels": [8, 16, 16, 32], "hidden_size": 32, "num_attention_heads": 4, "image_size": 16,
              **overrides.pop("vision_config", {})}
    text = {"embedding_size": 16, "intermediate_size": 64, "hidden_size": 32, **overrides.pop("text_config", {})}
    return SpikeClipConfig.from_preset("spikeclip-tiny", projection_dim=32, vision_config=vision, text_config=text,
                                       **overrides)


def comparable(config) -> dict:
    """A config's values, without what loading records about the load (the folder, the dtype)."""
    values = config.to_dict()
    for tower in ("text_config", "vision_config"):
        values[tower] = {k: v for k, v in values[tower].items() if k not in ("_name_or_path", "dtype")}
    return {k: v for k, v in values.items() if k not in ("_name_or_path", "dtype")}


def seeded_model(config=None) -> SpikeClipModel:
    torch.manual_seed(0)
    return SpikeClipModel(config or small_config()).eval()


def random_inputs(batch=3, length=16, image=16):
    """Random ids and images; texts of 16 tokens."""
    generator = torch.Generator().manual_seed(1)
    return {
        "input_ids": torch.randint(1000, 5000, (batch, length), generator=generator),
        "attention_mask": torch.ones(batch, length, dtype=torch.long),
        "pixel_values": torch.randn(batch, 3, image, image, generator=generator),
    }


def lif_outputs(model, run):
    """{name: output} of every LIF layer during `run()`."""
    outputs, handles = {}, []
    for name, module in model.named_modules():
        if isinstance(module, neuron.LIFNode):
            handles.append(module.register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out)))
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return outputs


def make_processor(config):
    """The processor a SpikeCLIP checkpoint is saved with (a tokenizer of its own: the processor sets its length)."""
    tokenizer = AutoTokenizer.from_pretrained(default_tokenizer_path())
    return SpikeClipProcessor(SpikeClipImageProcessor(size={"height": config.vision_config.image_size,
                                                             "width": config.vision_config.image_size}),
                              tokenizer, max_text_length=config.text_config.max_position_embeddings)


# --- configuration ----------------------------------------------------------------------------------------------------


def test_presets_and_round_trip(tmp_path):
    base, tiny = SpikeClipConfig.from_preset("spikeclip-base"), SpikeClipConfig.from_preset("spikeclip-tiny")
    assert (base.projection_dim, base.vision_config.hidden_size, base.vision_config.num_hidden_layers) == (512, 384, 4)
    assert base.vision_config.num_tokens == 64 and base.text_config.max_position_embeddings == 20
    assert (tiny.projection_dim, tiny.text_config.hidden_size, tiny.vision_config.tokenizer_channels) == (
        128, 128, [16, 32, 64, 128])
    assert tiny.vision_config.time_steps == tiny.text_config.time_steps == 4
    overridden = SpikeClipConfig.from_preset("spikeclip-tiny", vision_config={"num_hidden_layers": 1})
    assert overridden.vision_config.num_hidden_layers == 1 and overridden.vision_config.hidden_size == 128  # merged
    tiny.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert type(loaded) is SpikeClipConfig and comparable(loaded) == comparable(tiny)
    assert loaded.auto_map == SPIKECLIP_AUTO_MAP
    assert isinstance(loaded.text_config, SpikeClipTextConfig)
    assert isinstance(loaded.vision_config, SpikeClipVisionConfig)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"vision_config": {"hidden_size": 48}}, r"tokenizer's last width \(32\) must equal hidden_size \(48\)"),
        ({"vision_config": {"neuron": "relu"}}, "no time dimension: set time_steps=1, got 4"),
        ({"text_config": {"neuron": "relu", "time_steps": 2}}, "no time dimension: set time_steps=1, got 2"),
        ({"text_config": {"hidden_size": 16}}, r"text_config.hidden_size \(16\) must equal projection_dim \(32\)"),
        ({"vision_config": {"num_attention_heads": 5}}, "must be divisible by num_attention_heads"),
        ({"vision_config": {"tokenizer_channels": [8, 16, 32]}}, "tokenizer_channels must list 4 positive widths"),
        ({"vision_config": {"neuron": "izhikevich"}}, "Unknown neuron 'izhikevich'"),
        ({"text_config": {"time_steps": 0}}, r"time_steps \(T\) must be >= 1"),
        ({"text_config": {"tau": 1.0}}, "tau must be > 1"),
        ({"vision_config": {"v_threshold": 0.0}}, "must be above v_reset"),
        ({"vision_config": {"attention_v_threshold": 0.0}}, "attention_v_threshold must be above v_reset"),
        ({"text_config": {"surrogate_alpha": 0}}, "surrogate_alpha must be > 0"),
        ({"text_config": {"max_position_embeddings": 0}}, "max_position_embeddings must be >= 1"),
    ],
)
def test_config_validation_errors(overrides, message):
    with pytest.raises(Exception, match=message) as error:
        small_config(**overrides)
    # transformers' strict dataclasses wrap a validator's ValueError in StrictDataclassClassValidationError.
    cause = error.value if isinstance(error.value, ValueError) else error.value.__cause__
    assert isinstance(cause, ValueError), type(error.value)


def test_unknown_preset():
    with pytest.raises(ValueError, match="Unknown SpikeCLIP preset 'spikeclip-huge'"):
        SpikeClipConfig.from_preset("spikeclip-huge")


# --- outputs ----------------------------------------------------------------------------------------------------------


def test_tiny_preset_on_real_images_and_text(easy_vqa_samples):
    config = SpikeClipConfig.from_preset("spikeclip-tiny")
    model = seeded_model(config)
    processor = make_processor(config)
    texts = ["a red circle", "a blue square on white", "is there a green triangle in the image?"]
    batch = processor(images=[s[0] for s in easy_vqa_samples], text=texts, return_tensors="pt")
    assert batch["pixel_values"].shape == (4, 3, 32, 32) and batch["input_ids"].shape == (3, 20)
    with torch.no_grad():
        output = model(**batch, output_hidden_states=True)
    assert output.logits_per_image.shape == (4, 3) and output.logits_per_text.shape == (3, 4)
    torch.testing.assert_close(output.logits_per_text, output.logits_per_image.t())
    assert output.image_embeds.shape == (4, 128) and output.text_embeds.shape == (3, 128)
    torch.testing.assert_close(output.image_embeds.norm(dim=-1), torch.ones(4))
    torch.testing.assert_close(output.text_embeds.norm(dim=-1), torch.ones(3))
    # logit_scale exp(2.6592) times cosine similarities
    cosine = output.image_embeds @ output.text_embeds.t()
    torch.testing.assert_close(output.logits_per_image, cosine * math.exp(2.6592), rtol=1e-4, atol=1e-4)
    vision = output.vision_model_output
    assert vision.last_hidden_state.shape == (4, 64, 128)  # 8x8 tokens
    assert vision.pooler_output.shape == (4, 128)
    assert len(vision.hidden_states) == config.vision_config.num_hidden_layers + 1
    assert all(state.shape == (4, 64, 128) for state in vision.hidden_states)
    text = output.text_model_output
    assert text.last_hidden_state.shape == (3, 1024)  # the hidden layer's firing rates
    assert ((text.last_hidden_state >= 0) & (text.last_hidden_state <= 1)).all()
    assert text.pooler_output.shape == (3, 128)
    embeddings, rates = text.hidden_states
    assert embeddings.shape == (3, 20, 64) and rates.shape == (3, 1024)
    assert output.logits_per_image.std() > 0  # the towers do not collapse every input to one point


def test_feature_methods_tuples_and_one_tower():
    model = seeded_model()
    inputs = random_inputs()
    with torch.no_grad():
        both = model(**inputs)
        text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"])
        image = model.get_image_features(inputs["pixel_values"])
        text_only = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        image_only = model(pixel_values=inputs["pixel_values"])
        as_tuple = model(**inputs, return_dict=False)
        image_tuple = model.get_image_features(inputs["pixel_values"], return_dict=False)
    torch.testing.assert_close(both.text_embeds.norm(dim=-1), torch.ones(3))  # unit length: no text is silent
    torch.testing.assert_close(both.text_embeds, torch.nn.functional.normalize(text.pooler_output, dim=-1))
    torch.testing.assert_close(both.image_embeds, torch.nn.functional.normalize(image.pooler_output, dim=-1))
    assert text_only.logits_per_image is None and text_only.image_embeds is None
    torch.testing.assert_close(text_only.text_embeds, both.text_embeds)
    assert image_only.logits_per_image is None and image_only.text_embeds is None
    torch.testing.assert_close(image_only.image_embeds, both.image_embeds)
    assert isinstance(as_tuple, tuple) and isinstance(image_tuple, tuple)
    torch.testing.assert_close(as_tuple[0], both.logits_per_image)
    torch.testing.assert_close(image_tuple[1], image.pooler_output)
    assert both.vision_model_output.hidden_states is None  # only when asked (or config.output_hidden_states)
    model.config.output_hidden_states = True
    with torch.no_grad():
        assert len(model.get_image_features(inputs["pixel_values"]).hidden_states) == 3


def test_hidden_states_are_weighted_over_time():
    """Each returned state is the temporal weighting of its (T, B, N, C) spikes: in the tokenizer's output (not spikes:
    BatchNorm-ed currents) and after each block."""
    model = seeded_model()
    pixels = random_inputs()["pixel_values"]
    with torch.no_grad():
        output = model.get_image_features(pixels, output_hidden_states=True)
        per_step = model.vision_model.tokenizer(pixels)
    weights = torch.tensor([0.1, 0.2, 0.4, 0.8]) / 1.5
    torch.testing.assert_close(output.hidden_states[0], torch.tensordot(weights, per_step, dims=1))
    torch.testing.assert_close(output.last_hidden_state, output.hidden_states[-1])


# --- save / load / Auto classes / remote code -------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path):
    model = seeded_model()
    inputs = random_inputs()
    model.save_pretrained(tmp_path)
    reloaded = SpikeClipModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        expected, got = model(**inputs), reloaded(**inputs)
    for key in ("logits_per_image", "text_embeds", "image_embeds"):
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)
    assert comparable(reloaded.config) == comparable(model.config)
    files = set(os.listdir(tmp_path))
    assert {"config.json", "model.safetensors", "modeling_spikeclip.py", "configuration_spikeclip.py",
            "processing_spikeclip.py", "image_processing_spikeclip.py", "image_inputs.py"} <= files
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map == SPIKECLIP_AUTO_MAP
    for target in [auto_map["AutoModel"], auto_map["AutoModelForZeroShotImageClassification"], auto_map["AutoConfig"],
                   auto_map["AutoProcessor"], *auto_map["AutoImageProcessor"].values()]:
        assert f"{target.split('.')[0]}.py" in files, target


def test_auto_classes_in_process(tmp_path):
    config = small_config()
    assert isinstance(AutoConfig.for_model("spikeclip"), SpikeClipConfig)
    assert type(AutoModel.from_config(config)) is SpikeClipModel
    assert type(AutoModelForZeroShotImageClassification.from_config(config)) is SpikeClipModel
    seeded_model(config).save_pretrained(tmp_path)
    make_processor(config).save_pretrained(tmp_path)
    assert type(AutoModel.from_pretrained(tmp_path)) is SpikeClipModel
    assert type(AutoModelForZeroShotImageClassification.from_pretrained(tmp_path)) is SpikeClipModel
    processor = AutoProcessor.from_pretrained(tmp_path, backend="pil")
    assert type(processor) is SpikeClipProcessor and type(processor.image_processor) is SpikeClipImageProcessor
    assert type(AutoImageProcessor.from_pretrained(tmp_path, backend="pil")) is SpikeClipImageProcessor
    assert processor(text="x " * 50, return_tensors="pt")["input_ids"].shape == (1, 20)  # still truncates at 20


FRESH_PROCESS = textwrap.dedent(
    """
    import sys, torch
    sys.modules["modeling_ashnets"] = None  # the package must not be importable here
    from transformers import AutoModel, AutoModelForZeroShotImageClassification, AutoProcessor, pipeline
    folder, expected_file, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(threads)  # as the saving process: the same summation order
    expected = torch.load(expected_file)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True, backend="pil")
    batch = processor(images=expected["images"], text=expected["texts"], return_tensors="pt")
    assert set(batch) == set(expected["batch"]), sorted(batch)
    for key, value in expected["batch"].items():
        torch.testing.assert_close(batch[key], value, rtol=0, atol=0)
    zero_shot = AutoModelForZeroShotImageClassification.from_pretrained(folder, trust_remote_code=True).eval()
    base = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    for model in (zero_shot, base):
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        assert type(model).__name__ == "SpikeClipModel"
        with torch.no_grad():
            output = model(**batch)
        torch.testing.assert_close(output.logits_per_image, expected["logits_per_image"])
        torch.testing.assert_close(output.text_embeds, expected["text_embeds"])
    classifier = pipeline("zero-shot-image-classification", model=folder, trust_remote_code=True)
    assert type(classifier.model).__module__.startswith("transformers_modules"), type(classifier.model).__module__
    scores = classifier(expected["images"], candidate_labels=expected["labels"])
    for got, want in zip(scores, expected["scores"], strict=True):
        assert [entry["label"] for entry in got] == [entry["label"] for entry in want], (got, want)
        torch.testing.assert_close([entry["score"] for entry in got], [entry["score"] for entry in want])
    print("FRESH PROCESS OK", type(processor).__name__, type(zero_shot).__name__, type(classifier).__name__)
    """
)


def test_remote_code_in_a_fresh_process(tmp_path, easy_vqa_samples):
    """A saved folder (model, SpikeClipProcessor, tokenizer) loads through AutoModel,
    AutoModelForZeroShotImageClassification, AutoProcessor and the zero-shot pipeline where this package is not
    importable, and gives the saving process's logits and scores."""
    from transformers import pipeline

    folder = tmp_path / "checkpoint"
    config = small_config()
    model = seeded_model(config)
    processor = make_processor(config)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    images = [s[0] for s in easy_vqa_samples[:2]]
    texts = ["a red circle", "a blue square", "a green triangle"]
    batch = processor(images=images, text=texts, return_tensors="pt")
    labels = ["circle", "rectangle", "triangle"]
    classifier = pipeline("zero-shot-image-classification", model=str(folder), trust_remote_code=True)
    with torch.no_grad():
        output = model(**batch)
    expected = {
        "images": images, "texts": texts, "labels": labels, "batch": dict(batch),
        "logits_per_image": output.logits_per_image, "text_embeds": output.text_embeds,
        "scores": classifier(images, candidate_labels=labels),
    }
    assert len({entry["label"] for entry in expected["scores"][0]}) == 3
    torch.save(expected, tmp_path / "expected.pt")
    (tmp_path / "fresh.py").write_text(FRESH_PROCESS)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run(
        [sys.executable, str(tmp_path / "fresh.py"), str(folder), str(tmp_path / "expected.pt"),
         str(torch.get_num_threads())],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "FRESH PROCESS OK SpikeClipProcessor SpikeClipModel ZeroShotImageClassificationPipeline" in result.stdout


# --- batching, padding, determinism -----------------------------------------------------------------------------------


def test_batching_equivalence_and_padding_independence():
    model = seeded_model()
    inputs = random_inputs(batch=3, length=16)
    inputs["attention_mask"][1, 12:] = 0  # right padding (the processor's)
    inputs["input_ids"][1, 12:] = 0
    with torch.no_grad():
        batched = model(**inputs)
        rates = lif_outputs(model, lambda: model(**inputs))
    assert all(spikes.mean() > 0 for name, spikes in rates.items() if "attention_neuron" not in name)  # they fire
    assert (batched.text_model_output.pooler_output.norm(dim=-1) > 0).all()  # no text is silent
    for i in range(3):
        length = int(inputs["attention_mask"][i].sum())
        ids, pixels = inputs["input_ids"][i : i + 1, :length], inputs["pixel_values"][i : i + 1]
        with torch.no_grad():
            single = model(input_ids=ids, pixel_values=pixels)
        torch.testing.assert_close(single.text_embeds[0], batched.text_embeds[i], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(single.image_embeds[0], batched.image_embeds[i], rtol=1e-5, atol=1e-5)
    # One text, padded to different lengths (or with other ids under the padding), gives one embedding.
    ids = inputs["input_ids"][1:2, :12]
    with torch.no_grad():
        reference = model.get_text_features(ids).pooler_output
        assert reference.norm() > 0
        for length in (13, 16, 20):
            padded = torch.nn.functional.pad(ids, (0, length - 12), value=0)
            mask = (torch.arange(length) < 12).long()[None]
            torch.testing.assert_close(model.get_text_features(padded, mask).pooler_output, reference, rtol=0, atol=0)
        other_padding = torch.cat([ids, torch.full((1, 4), 2000)], dim=1)
        mask = torch.tensor([[1] * 12 + [0] * 4])
        other = model.get_text_features(other_padding, mask).pooler_output
        torch.testing.assert_close(other, reference, rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_determinism_and_membrane_reset(mode):
    model = seeded_model()
    getattr(model, mode)()
    inputs = random_inputs()
    with torch.no_grad():
        first = lif_outputs(model, lambda: model(**inputs))
        first_logits = model(**inputs).logits_per_image
        second = lif_outputs(model, lambda: model(**inputs))  # a LIF keeping its membrane would fire differently
        second_logits = model(**inputs).logits_per_image
    torch.testing.assert_close(first_logits, second_logits, rtol=0, atol=0)
    for name in first:
        assert torch.equal(first[name], second[name]), name
    # No membrane tensors stay alive between calls.
    lifs = [m for m in model.modules() if isinstance(m, neuron.LIFNode)]
    assert lifs and all(not isinstance(m.v, torch.Tensor) for m in lifs)


# --- meta device ------------------------------------------------------------------------------------------------------


def test_meta_device_init_then_from_pretrained(tmp_path):
    """Construction reads no parameter values (so it runs on the meta device, as from_pretrained builds models), and
    a model built there takes a checkpoint's weights."""
    config = small_config()
    with torch.device("meta"):
        on_meta = SpikeClipModel(config)
    assert all(t.device.type == "meta" for t in [*on_meta.parameters(), *on_meta.buffers()])
    model = seeded_model(config)
    model.save_pretrained(tmp_path)
    inputs = random_inputs()
    with torch.no_grad():
        expected = model(**inputs).logits_per_image
        reloaded = SpikeClipModel.from_pretrained(tmp_path).eval()
        torch.testing.assert_close(reloaded(**inputs).logits_per_image, expected, rtol=0, atol=0)
        on_meta.to_empty(device="cpu").load_state_dict(model.state_dict())
        torch.testing.assert_close(on_meta.eval()(**inputs).logits_per_image, expected, rtol=0, atol=0)


def test_missing_weights_are_initialised(tmp_path):
    """Weights missing from a checkpoint are initialised as at construction: the text embeddings (in a module without
    parameters of its own), the temporal weighting, BatchNorm's statistics, the logit scale."""
    config = small_config()
    seeded_model(config).save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    dropped = ("text_model.token_embedding.weight", "text_model.position_embedding.weight", "logit_scale",
               "vision_model.temporal_weighting.logits", "vision_model.tokenizer.stages.0.norm.running_var")
    save_file({k: v for k, v in weights.items() if k not in dropped}, tmp_path / "model.safetensors",
              metadata={"format": "pt"})
    model = SpikeClipModel.from_pretrained(tmp_path)
    token, position = model.text_model.token_embedding.weight, model.text_model.position_embedding.weight
    assert torch.isfinite(token).all() and abs(token.std().item() - 1.0) < 0.05
    assert torch.isfinite(position).all() and abs(position.std().item() - config.initializer_range) < 0.005
    assert model.logit_scale.item() == pytest.approx(config.logit_scale_init_value)
    torch.testing.assert_close(model.vision_model.temporal_weighting.logits,
                               torch.log(torch.tensor([0.1, 0.2, 0.4, 0.8])))
    torch.testing.assert_close(model.vision_model.tokenizer.stages[0].norm.running_var, torch.ones(8))


# --- ANN twin ---------------------------------------------------------------------------------------------------------


def test_ann_twin_runs_without_time_dimension():
    config = small_config()
    twin_config = config.ann_twin()
    for tower in (twin_config.text_config, twin_config.vision_config):
        assert (tower.neuron, tower.time_steps) == ("relu", 1)
    assert twin_config.projection_dim == config.projection_dim
    assert twin_config.vision_config.hidden_size == config.vision_config.hidden_size
    assert (config.text_config.neuron, config.text_config.time_steps) == ("lif", 4)  # the original is unchanged
    twin = seeded_model(twin_config)
    assert not any(isinstance(m, neuron.BaseNode) for m in twin.modules())
    assert any(isinstance(m, torch.nn.ReLU) for m in twin.modules())
    assert twin.vision_model.temporal_weighting.logits.shape == (1,)
    assert twin.text_model.temporal_weighting.logits.shape == (1,)
    # The same parameters as the SNN, but for the one-step temporal weighting.
    snn_shapes = {k: v.shape for k, v in seeded_model(config).state_dict().items()}
    twin_shapes = {k: v.shape for k, v in twin.state_dict().items()}
    assert snn_shapes.keys() == twin_shapes.keys()
    assert [k for k in snn_shapes if snn_shapes[k] != twin_shapes[k]] == [
        "text_model.temporal_weighting.logits", "vision_model.temporal_weighting.logits"]
    pixels = random_inputs()["pixel_values"]
    steps = []
    handle = twin.vision_model.tokenizer.register_forward_hook(lambda _m, _i, out: steps.append(out.shape[0]))
    with torch.no_grad():
        output = twin(**random_inputs())
    handle.remove()
    assert steps == [1]  # one step: the tokens are (1, B, N, C)
    assert output.logits_per_image.shape == (3, 3) and torch.isfinite(output.logits_per_image).all()
    rates = output.text_model_output.last_hidden_state
    assert not set(rates.unique().tolist()) <= {0.0, 1.0}  # ReLU activations, not spikes
    with torch.no_grad():
        assert twin.get_image_features(pixels, output_hidden_states=True).hidden_states[-1].shape == (3, 16, 32)


# --- input errors -----------------------------------------------------------------------------------------------------


def _bad(**changes):
    inputs = random_inputs(batch=2, length=5)
    inputs.update(changes)
    return {k: v for k, v in inputs.items() if v is not None}


@pytest.mark.parametrize(
    "inputs, error, message",
    [
        (_bad(pixel_values=torch.zeros(2, 3, 16, 16, dtype=torch.uint8)), TypeError, "floating-point tensor"),
        (_bad(pixel_values=torch.zeros(3, 16, 16)), ValueError, r"shape \(batch, 3, height, width\)"),
        (_bad(pixel_values=torch.zeros(2, 1, 16, 16)), ValueError, r"shape \(batch, 3, height, width\)"),
        (_bad(pixel_values=torch.zeros(2, 16, 16, 3)), ValueError, "channels-first"),
        (_bad(pixel_values=np.zeros((2, 3, 16, 16), dtype=np.float32)), TypeError, "must be a torch.Tensor"),
        (_bad(pixel_values=torch.zeros(0, 3, 16, 16)), ValueError, "empty batch"),
        (_bad(input_ids=torch.ones(2, 5)), TypeError, "integer token ids"),
        (_bad(input_ids=torch.ones(2, 5, dtype=torch.bool)), TypeError, "integer token ids"),
        (_bad(input_ids=torch.ones(5, dtype=torch.long)), ValueError, r"shape \(batch, length\)"),
        (_bad(input_ids=torch.ones(2, 21, dtype=torch.long), attention_mask=None), ValueError,
         "The text has 21 tokens but the SpikeCLIP text encoder reads a fixed 20"),
        (_bad(attention_mask=torch.ones(2, 4, dtype=torch.long)), ValueError,
         r"attention_mask must have shape \(2, 5\)"),
        (_bad(attention_mask=[[1] * 5] * 2), TypeError, "attention_mask must be a torch.Tensor"),
        (_bad(input_ids=torch.full((2, 5), 30522)), ValueError, r"input_ids must lie in \[0, 30522\)"),
        (_bad(input_ids=torch.full((2, 5), -1)), ValueError, r"input_ids must lie in \[0, 30522\)"),
        (_bad(pixel_values=torch.full((2, 3, 16, 16), float("nan"))), ValueError, "NaN or infinite"),
        (_bad(pixel_values=torch.full((2, 3, 16, 16), float("inf"))), ValueError, "NaN or infinite"),
        ({"input_ids": None, "pixel_values": None}, ValueError, "Nothing to encode"),
    ],
)
def test_bad_inputs_raise_clear_errors(inputs, error, message):
    model = seeded_model()  # a fresh model checks values (vocabulary, finite pixels) until a call has passed them
    with pytest.raises(error, match=message):
        model(**inputs)


def test_return_loss_needs_matched_pairs():
    model = seeded_model()
    inputs = random_inputs(batch=3)
    with pytest.raises(ValueError, match="one text per image: got 2 texts and 3 images"):
        model(input_ids=inputs["input_ids"][:2], pixel_values=inputs["pixel_values"], return_loss=True)
    with pytest.raises(ValueError, match="return_loss=True needs both input_ids and pixel_values"):
        model(pixel_values=inputs["pixel_values"], return_loss=True)
    loss = model(**inputs, return_loss=True).loss
    assert loss.dim() == 0 and torch.isfinite(loss)
    unequal = model(input_ids=inputs["input_ids"][:2], pixel_values=inputs["pixel_values"])  # fine without a loss
    assert unequal.logits_per_image.shape == (3, 2) and unequal.loss is None


def test_value_checks_cover_each_modality_once():
    """Value checks stop after a call has passed them, per modality: a first text-only call does not turn off the
    check of the first images."""
    model = seeded_model()
    inputs = random_inputs()
    model(input_ids=inputs["input_ids"])
    with pytest.raises(ValueError, match="NaN"):
        model(input_ids=inputs["input_ids"], pixel_values=torch.full((3, 3, 16, 16), float("nan")))
    model(pixel_values=inputs["pixel_values"])
    unchecked = model(pixel_values=torch.full((1, 3, 16, 16), float("nan")))  # shapes only, no device sync
    assert unchecked.image_embeds.shape == (1, 32)
    strict = seeded_model(small_config(check_input_values=False))
    with pytest.raises(IndexError):  # without value checks, an id out of the vocabulary fails inside the embedding
        strict(input_ids=torch.full((1, 3), 30522))


# --- processor --------------------------------------------------------------------------------------------------------


def test_processor_pads_and_truncates_to_twenty():
    processor = make_processor(SpikeClipConfig.from_preset("spikeclip-tiny"))
    batch = processor(text=["a cat", "x " * 100], return_tensors="pt")
    assert set(batch) == {"input_ids", "attention_mask"}  # no token_type_ids: the text encoder reads none
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, 20)
    assert batch["attention_mask"][0].tolist() == [1] * 4 + [0] * 16  # [CLS] a cat [SEP], then padding
    assert batch["attention_mask"][1].all() and batch["input_ids"][1, -1] == processor.tokenizer.sep_token_id
    assert set(processor.model_input_names) == {"input_ids", "attention_mask", "pixel_values"}
    # The tokenizer alone (as the zero-shot pipeline calls it) truncates at 20 too.
    assert len(processor.tokenizer("x " * 100, truncation=True)["input_ids"]) == 20
    assert processor(text="x " * 100, max_length=8, return_tensors="pt")["input_ids"].shape == (1, 8)  # the call wins


def test_processor_takes_any_numbers_of_texts_and_images(easy_vqa_samples):
    config = small_config()
    processor = make_processor(config)
    paths = [s[0] for s in easy_vqa_samples]
    batch = processor(images=paths[0], text=["a circle", "a square", "a triangle"], return_tensors="pt")
    assert batch["pixel_values"].shape == (1, 3, 16, 16) and batch["input_ids"].shape == (3, 20)
    with torch.no_grad():
        assert seeded_model(config)(**batch).logits_per_image.shape == (1, 3)
    assert processor(images=paths, text="one prompt", return_tensors="pt")["pixel_values"].shape == (4, 3, 16, 16)
    assert set(processor(images=paths[:2], return_tensors="pt")) == {"pixel_values"}


def test_image_processor_resizes_to_32_and_normalises_as_clip():
    from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    processor = SpikeClipImageProcessor()
    pixels = processor(Image.new("RGB", (50, 40), (255, 128, 0)), return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 3, 32, 32)
    expected = (torch.tensor([255, 128, 0]) / 255 - torch.tensor(OPENAI_CLIP_MEAN)) / torch.tensor(OPENAI_CLIP_STD)
    torch.testing.assert_close(pixels[0, :, 16, 16], expected.float(), atol=1e-5, rtol=0)
    gray = processor(Image.new("L", (8, 8), 255), return_tensors="pt")["pixel_values"]  # converted to RGB
    assert gray.shape == (1, 3, 32, 32)


@pytest.mark.parametrize(
    "image, error, message",
    [
        (np.zeros((0, 5, 3), dtype=np.uint8), ValueError, "zero size"),
        (b"definitely not a png", ValueError, "Cannot decode"),
        (np.full((4, 4, 3), 2.0), ValueError, r"must lie in \[0, 1\]"),
        (np.full((4, 4, 3), np.nan), ValueError, "NaN"),
        (12345, TypeError, "Unsupported image type int"),
        ([], ValueError, "empty list of images"),
    ],
)
def test_bad_images_raise_the_ashnets_errors(image, error, message):
    processor = make_processor(small_config())
    with pytest.raises(error, match=message):
        processor(images=image, text="a picture")


def test_processor_text_errors():
    processor = make_processor(small_config())
    with pytest.raises(ValueError, match=r"Empty text at batch position\(s\) \[1\]"):
        processor(text=["a cat", " "])
    with pytest.raises(ValueError, match="Pass images, text or both"):
        processor()


def test_non_main_process_leaves_the_folder_to_the_main_one(tmp_path):
    """In a multi-process run every rank calls save_pretrained; only the main one writes, so the others must not read
    a config.json that the main process may be half-way through writing."""
    (tmp_path / "config.json").write_text("")  # the main process's file, caught mid-write
    seeded_model().save_pretrained(tmp_path, is_main_process=False)
    assert os.listdir(tmp_path) == ["config.json"] and (tmp_path / "config.json").read_text() == ""


def test_processor_save_and_load(tmp_path, easy_vqa_samples):
    processor = make_processor(small_config())
    processor.save_pretrained(tmp_path)
    reloaded = AutoProcessor.from_pretrained(tmp_path, backend="pil")
    assert type(reloaded) is SpikeClipProcessor
    paths, texts = [s[0] for s in easy_vqa_samples], ["x " * 40, "a red circle"]
    expected, got = processor(images=paths, text=texts, return_tensors="pt"), reloaded(images=paths, text=texts,
                                                                                      return_tensors="pt")
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)
    assert got["input_ids"].shape == (2, 20)


# --- spikes, temporal weighting, gradients ----------------------------------------------------------------------------


def test_spikes_are_binary_and_fire_in_train_mode():
    model = seeded_model().train()  # BatchNorm's batch statistics, as in training
    outputs = lif_outputs(model, lambda: model(**random_inputs(batch=4)))
    assert len(outputs) == 2 + 4 + 2 * 7  # text: 2; tokenizer: 3 + position; each block: 5 attention + 2 MLP
    for name, spikes in outputs.items():
        assert spikes.shape[0] == 4, name  # T first
        assert set(spikes.unique().tolist()) <= {0.0, 1.0}, name
        rate = spikes.mean().item()
        if name.endswith("attention_neuron"):
            # Q (K^T V) of sparse spikes times 0.125 rarely reaches the threshold (0.5) at initialisation.
            assert rate < 0.05, (name, rate)
        else:
            assert 0.005 < rate < 0.5, (name, rate)  # neither silent nor saturated
    rates = model(**random_inputs(batch=4)).text_model_output.last_hidden_state
    torch.testing.assert_close(rates * 4, (rates * 4).round())  # a rate over T = 4 steps is k / 4


def test_temporal_weighting_starts_at_softmax_of_ln_doubling_weights():
    model = seeded_model()
    expected_logits = torch.log(torch.tensor([0.1, 0.2, 0.4, 0.8]))
    for weighting in (model.vision_model.temporal_weighting, model.text_model.temporal_weighting):
        torch.testing.assert_close(weighting.logits.detach(), expected_logits)
        torch.testing.assert_close(weighting.logits.softmax(0), torch.tensor([1, 2, 4, 8]) / 15.0)
    two_steps = seeded_model(small_config(vision_config={"time_steps": 2}))
    torch.testing.assert_close(two_steps.vision_model.temporal_weighting.logits.softmax(0),
                               torch.tensor([1 / 3, 2 / 3]))
    # The text embedding is the weighting of the per-step outputs of fc2.
    ids = random_inputs()["input_ids"]
    per_step = []
    handle = model.text_model.fc2.register_forward_hook(lambda _m, _i, out: per_step.append(out))
    with torch.no_grad():
        embedding = model.get_text_features(ids).pooler_output
    handle.remove()
    torch.testing.assert_close(embedding, torch.tensordot(torch.tensor([1, 2, 4, 8]) / 15.0, per_step[0], dims=1))


def test_short_texts_give_text_embeddings_and_finite_gradients():
    config = small_config()  # spikeclip-tiny and spikeclip-base as well
    model = seeded_model(config).train()
    batch = make_processor(config)(text=["red", "blue", "green", "yellow"], return_tensors="pt")
    output = model(**batch, pixel_values=random_inputs(batch=4)["pixel_values"], return_loss=True)
    output.loss.backward()
    gradient = model.text_model.token_embedding.weight.grad.norm()
    silent = output.text_model_output.pooler_output.norm(dim=-1) == 0
    assert not silent.any() and gradient < 1e3, (silent, gradient)


def test_gradients_reach_the_first_conv_and_the_token_embeddings():
    model = seeded_model().train()
    loss = model(**random_inputs(batch=4), return_loss=True).loss
    loss.backward()
    parameters = dict(model.named_parameters())
    for name in (
        "vision_model.tokenizer.stages.0.conv.weight",  # before the first LIF: only the surrogate gradient reaches it
        "vision_model.blocks.0.attention.query.linear.weight",
        "vision_model.blocks.1.mlp.fc1.linear.weight",
        "vision_model.temporal_weighting.logits",
        "visual_projection.weight",
        "text_model.token_embedding.weight",  # before the text encoder's first LIF
        "text_model.fc1.weight",
        "text_model.temporal_weighting.logits",
        "logit_scale",
    ):
        grad = parameters[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
