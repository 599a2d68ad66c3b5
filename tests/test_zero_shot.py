"""Zero-shot image classification of SpikeCLIP checkpoints through zero_shot.py, the `ashnets` CLI, the Inference
Endpoints handler and the exported repository folder, checked against transformers' own zero-shot-image-classification
pipeline on real easy-VQA test images. One tiny random SpikeCLIP (thresholds lowered so that it fires and its scores
differ) serves every test."""

import base64
import importlib.util
import io
import json
import os
import subprocess
import sys
import textwrap

import datasets
import pytest
import torch
import yaml
from PIL import Image
from transformers import pipeline

from modeling_ashnets import SpikeClipConfig, SpikeClipImageProcessor, SpikeClipModel, SpikeClipProcessor
from modeling_ashnets.cli import main as cli
from modeling_ashnets.zero_shot import (
    PROMPT_SETS,
    check_templates,
    classify_images,
    evaluate_zero_shot,
    load_zero_shot_dataset,
)

NAMES = list(PROMPT_SETS["easy-vqa"].class_names)
LABELS = ["red circle", "blue triangle", "green rectangle"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tokenizer):
    """A saved tiny SpikeCLIP: model, processor and tokenizer, as a training run leaves them."""
    torch.manual_seed(0)
    config = SpikeClipConfig.from_preset(
        "spikeclip-tiny", projection_dim=16,
        vision_config={"tokenizer_channels": [4, 8, 8, 16], "hidden_size": 16, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "mlp_ratio": 2, "v_threshold": 0.5},
        text_config={"embedding_size": 8, "intermediate_size": 32, "hidden_size": 16, "v_threshold": 0.5},
    )
    folder = tmp_path_factory.mktemp("zero_shot") / "spikeclip"
    SpikeClipModel(config).eval().save_pretrained(folder)
    SpikeClipProcessor(SpikeClipImageProcessor(), tokenizer, max_text_length=20).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def loaded(checkpoint):
    from modeling_ashnets.hub_export import load_checkpoint

    model, processor, architecture = load_checkpoint(str(checkpoint))
    assert architecture == "SpikeClipModel" and isinstance(model, SpikeClipModel)
    assert processor.tokenizer.model_max_length == 20
    return model.eval(), processor


@pytest.fixture(scope="module")
def reference(checkpoint, loaded):
    """transformers' pipeline on the folder, with the PIL image processor (the reference the package uses)."""
    return pipeline("zero-shot-image-classification", model=str(checkpoint), image_processor=loaded[1].image_processor,
                    trust_remote_code=True)


@pytest.fixture(scope="module")
def samples():
    return load_easy_vqa_classification_rows(8)


def load_easy_vqa_classification_rows(n):
    rows = load_zero_shot_dataset("easy-vqa", split="test", max_samples=n)
    assert len(rows) == n and rows.features["label"].names == NAMES
    return rows


def _scores(result) -> dict:
    return {item["label"]: item["score"] for item in result}


def test_evaluate_zero_shot_equals_the_pipeline_by_hand(loaded, reference, samples):
    model, processor = loaded
    metrics = evaluate_zero_shot(model, processor, samples, "easy-vqa", batch_size=3, templates="a {}")
    hand = [reference(row["image"], candidate_labels=NAMES, hypothesis_template="a {}") for row in samples]
    # The random model's scores depend on the image (its top label may still be the same for all eight).
    assert len({tuple(sorted(_scores(result).items())) for result in hand}) > 1
    top1 = sum(result[0]["label"] == NAMES[row["label"]] for result, row in zip(hand, samples)) / len(samples)
    top5 = sum(NAMES[row["label"]] in [r["label"] for r in result[:5]] for result, row in zip(hand, samples))
    assert metrics == {"accuracy": top1, "top5_accuracy": top5 / len(samples), "num_samples": 8, "num_classes": 24}
    # The same scores as the pipeline, label by label.
    ours = classify_images(model, processor, [row["image"] for row in samples.select(range(2))], NAMES, "a {}")
    for mine, theirs in zip(ours, hand):
        assert [r["label"] for r in mine] == [r["label"] for r in theirs]
        assert _scores(mine) == pytest.approx(_scores(theirs), abs=1e-5)
    # The prompt set's own templates (averaged): still a valid accuracy over the same samples.
    averaged = evaluate_zero_shot(model, processor, samples, PROMPT_SETS["easy-vqa"], batch_size=8)
    assert averaged["num_samples"] == 8 and 0 <= averaged["accuracy"] <= averaged["top5_accuracy"] <= 1


def test_cli_predict_and_evaluate(checkpoint, loaded, reference, samples, tmp_path, capsys):
    image = samples[0]["image"].filename
    assert cli(["predict", "--model", str(checkpoint), "--image", image, "--labels", ",".join(LABELS),
                "--template", "a {}"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = reference(image, candidate_labels=LABELS, hypothesis_template="a {}")
    assert [r["label"] for r in printed] == [r["label"] for r in expected]
    assert _scores(printed) == pytest.approx(_scores(expected), abs=1e-5)
    predict = ["predict", "--model", str(checkpoint), "--image", image]
    assert cli([*predict, "--labels", *LABELS, "--template", "a {}"]) == 0
    assert json.loads(capsys.readouterr().out) == printed
    assert cli([*predict, "--prompt_set", "easy-vqa", "--top_k", "3"]) == 0
    ranked = json.loads(capsys.readouterr().out)
    assert len(ranked) == 3 and {r["label"] for r in ranked} <= set(NAMES) and ranked[0]["score"] >= ranked[2]["score"]

    output = tmp_path / "metrics.json"
    assert cli(["evaluate", "--model", str(checkpoint), "--prompt_set", "easy-vqa", "--split", "test",
                "--max_samples", "8", "--batch_size", "4", "--output", str(output)]) == 0
    metrics = json.loads(output.read_text())
    assert json.loads(capsys.readouterr().out) == metrics
    direct = evaluate_zero_shot(*loaded, samples, "easy-vqa")
    assert metrics == {**{f"eval_{k}": v for k, v in direct.items()}, "eval_prompt_set": "easy-vqa",
                       "eval_dataset": "easy-vqa", "eval_split": "test",
                       "eval_templates": list(PROMPT_SETS["easy-vqa"].templates)}

    # A local data set (save_to_disk) with another prompt set's columns: CIFAR-10's `img` and `label`.
    cifar_like = datasets.Dataset.from_dict(
        {"img": [row["image"] for row in samples.select(range(6))], "label": [0, 1, 2, 3, 4, 9]},
        features=datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(
            names=list(PROMPT_SETS["cifar10"].class_names))}),
    )
    cifar_like.save_to_disk(str(tmp_path / "cifar_like"))
    assert cli(["evaluate", "--model", str(checkpoint), "--prompt_set", "cifar10", "--dataset",
                str(tmp_path / "cifar_like"), "--template", "a photo of a {}."]) == 0
    cifar = json.loads(capsys.readouterr().out)
    assert cifar["eval_num_samples"] == 6 and cifar["eval_num_classes"] == 10 and 0 <= cifar["eval_accuracy"] <= 1
    assert cifar["eval_templates"] == ["a photo of a {}."] and "eval_top5_accuracy" in cifar


def test_bad_requests_say_what_to_fix(checkpoint, loaded, samples, capsys):
    image = samples[0]["image"].filename
    for arguments, message in (
        (["predict", "--image", image, "--labels", " , "], "--labels is empty"),
        (["predict", "--image", image, "--labels", "red circle", "--template", "a photo"], "exactly one '{}'"),
        (["predict", "--image", image, "--labels", "red circle", "--template", "{} and {}"], "exactly one '{}'"),
        (["predict", "--image", image, "--prompt_set", "imagenet"], "Unknown prompt set"),
        (["evaluate", "--prompt_set", "imagenet"], "Unknown prompt set"),
        (["evaluate", "--max_samples", "0"], "max_samples must be >= 1"),
    ):
        assert cli([arguments[0], "--model", str(checkpoint), *arguments[1:]]) == 2, arguments
        assert message in capsys.readouterr().err, arguments
    with pytest.raises(SystemExit, match="pass --labels"):
        cli(["predict", "--model", str(checkpoint), "--image", image])
    with pytest.raises(SystemExit, match="not --question"):
        cli(["predict", "--model", str(checkpoint), "--image", image, "--question", "what shape?"])
    model, processor = loaded
    with pytest.raises(ValueError, match="candidate labels"):
        classify_images(model, processor, [image], [], "a {}")
    with pytest.raises(ValueError, match="exactly one"):
        check_templates(["a {}", "{name}"])
    with pytest.raises(ValueError, match="lacks the column"):
        evaluate_zero_shot(model, processor, samples.rename_column("label", "class"), "easy-vqa")
    with pytest.raises(ValueError, match="not the 'cifar10' prompt set's"):
        evaluate_zero_shot(model, processor, samples.rename_column("image", "img"), "cifar10")


def test_cli_in_a_subprocess(checkpoint, samples, capsys):
    image = samples[1]["image"].filename
    arguments = ["predict", "--model", str(checkpoint), "--image", image, "--labels", ",".join(LABELS)]
    result = subprocess.run([sys.executable, "-m", "modeling_ashnets.cli", *arguments], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert cli(arguments) == 0
    in_process = json.loads(capsys.readouterr().out)
    printed = json.loads(result.stdout)
    assert [r["label"] for r in printed] == [r["label"] for r in in_process]
    assert _scores(printed) == pytest.approx(_scores(in_process), abs=1e-6)


FRESH = textwrap.dedent(
    """
    import base64, json, sys
    sys.modules["modeling_ashnets"] = None  # as on the Hub: only transformers and the repository's own code
    from transformers import AutoImageProcessor, AutoModel, pipeline
    folder, image_path, expected_file = sys.argv[1:4]
    expected = json.load(open(expected_file))
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    assert type(model).__name__ == "SpikeClipModel" and type(model).__module__.startswith("transformers_modules")
    sys.path.insert(0, folder)  # as the Inference Endpoints toolkit does before it imports the repository's handler.py
    from handler import EndpointHandler

    encoded = base64.b64encode(open(image_path, "rb").read()).decode()
    request = {"inputs": encoded, "parameters": {"candidate_labels": expected["labels"], "hypothesis_template": "a {}"}}
    served = EndpointHandler(folder)(request)
    processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=True, backend="pil")
    classify = pipeline("zero-shot-image-classification", model=folder, image_processor=processor,
                        trust_remote_code=True)
    direct = classify(image_path, candidate_labels=expected["labels"], hypothesis_template="a {}")
    assert served == direct, (served, direct)
    print(json.dumps(served))
    """
)


def test_export_card_and_handler_with_and_without_the_package(checkpoint, reference, samples, tmp_path, capsys):
    from modeling_ashnets.hub_export import load_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    for name in os.listdir(checkpoint):
        (run / name).write_bytes((checkpoint / name).read_bytes())
    assert cli(["evaluate", "--model", str(run), "--max_samples", "8", "--output", str(run / "eval_results.json")]) == 0
    metrics = json.loads(capsys.readouterr().out)
    exported = tmp_path / "exported"
    assert cli(["export", "--model", str(run), "--repo_id", "org/spikeclip-tiny-test", "--output", str(exported)]) == 0
    capsys.readouterr()
    files = set(os.listdir(exported))
    assert {"config.json", "model.safetensors", "modeling_spikeclip.py", "processing_spikeclip.py", "tokenizer.json",
            "processor_config.json", "handler.py", "README.md", "eval_results.json"} <= files
    assert isinstance(load_checkpoint(str(exported))[0], SpikeClipModel)
    card = (exported / "README.md").read_text()
    metadata = yaml.safe_load(card.split("---")[1])
    assert metadata["pipeline_tag"] == "zero-shot-image-classification" and "spikeclip" in metadata["tags"]
    result = metadata["model-index"][0]["results"][0]
    assert result["task"]["type"] == "zero-shot-image-classification" and result["dataset"]["type"] == "easy-vqa"
    assert [m["value"] for m in result["metrics"]] == [round(100 * metrics["eval_accuracy"], 2),
                                                      round(100 * metrics["eval_top5_accuracy"], 2)]
    assert "SpikeCLIP" in card and f"| accuracy | {100 * metrics['eval_accuracy']:.2f} % |" in card
    assert "`a small {} at the top left`, `a small {} at the top`" in card  # the templates it was measured with
    from modeling_ashnets.model_card import build_model_card

    untrained = build_model_card(str(checkpoint), "org/untrained").content  # no eval_results.json: no numbers
    assert "model-index" not in untrained.split("---")[1] and "no recorded training or evaluation" in untrained

    # The handler, imported from the exported folder as an endpoint imports it.
    spec = importlib.util.spec_from_file_location("exported_handler", exported / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = module.EndpointHandler(str(exported))
    image_path = samples[2]["image"].filename
    raw = open(image_path, "rb").read()
    encoded = base64.b64encode(raw).decode()
    expected = reference(image_path, candidate_labels=LABELS, hypothesis_template="a {}")
    parameters = {"candidate_labels": LABELS, "hypothesis_template": "a {}"}
    for inputs in (encoded, "data:image/png;base64," + encoded, raw, Image.open(io.BytesIO(raw))):
        served = handler({"inputs": inputs, "parameters": parameters})
        assert [r["label"] for r in served] == [r["label"] for r in expected]
        assert _scores(served) == pytest.approx(_scores(expected), abs=1e-6)
    assert handler({"inputs": {"image": encoded, **parameters}}) == served
    assert handler({"inputs": encoded, "parameters": {**parameters, "top_k": 1}}) == served[:1]
    default = handler({"inputs": encoded, "parameters": {"candidate_labels": LABELS}})  # the pipeline's template
    assert _scores(default) == pytest.approx(_scores(reference(image_path, candidate_labels=LABELS)), abs=1e-6)
    for payload, message in (
        ([encoded], "must be a JSON object"),
        ({"inputs": encoded}, "candidate_labels' is missing"),
        ({"inputs": encoded, "parameters": {"candidate_labels": []}}, "list of 1 to"),
        ({"inputs": encoded, "parameters": {"candidate_labels": ["a", " "]}}, "non-empty string"),
        ({"inputs": encoded, "parameters": {**parameters, "hypothesis_template": "a photo"}}, "exactly one '{}'"),
        ({"inputs": encoded, "parameters": {**parameters, "top_k": 0}}, "top_k"),
        ({"inputs": "not base64!", "parameters": parameters}, "not valid base64"),
        ({"inputs": 3, "parameters": parameters}, "base64-encoded image"),
        ({"inputs": encoded, "parameters": {"candidate_labels": ["word " * 30]}}, "longer than the model's 20"),
    ):
        with pytest.raises(ValueError, match=message):
            handler(payload)

    # A fresh process where the package cannot be imported: AutoModel, the handler and the pipeline.
    (tmp_path / "expected.json").write_text(json.dumps({"labels": LABELS}))
    (tmp_path / "fresh.py").write_text(FRESH)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    fresh = subprocess.run([sys.executable, str(tmp_path / "fresh.py"), str(exported), image_path,
                            str(tmp_path / "expected.json")], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)
    assert fresh.returncode == 0, fresh.stderr[-4000:]
    served = json.loads(fresh.stdout.strip().splitlines()[-1])
    assert _scores(served) == pytest.approx(_scores(expected), abs=1e-6)
