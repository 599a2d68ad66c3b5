"""Export, pipelines, the Inference Endpoints handler and the `ashnets` CLI, on tiny checkpoints; the pipelines and the
handler also in a fresh process where the package cannot be imported (as on the Hub or an endpoint)."""

import base64
import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import tiny_config
from modeling_ashnets import AshNetsForQuestionAnswering, AshNetsForRetrieval
from modeling_ashnets.cli import main as cli
from modeling_ashnets.hub_export import export_checkpoint

ANSWERS = {0: "circle", 1: "rectangle", 2: "triangle", 3: "red", 4: "blue"}


def _checkpoint(folder, model, processor, metrics=None):
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    if metrics is not None:
        (folder / "eval_results.json").write_text(json.dumps(metrics))
        (folder / "train_results.json").write_text(json.dumps({
            "train_steps": 12, "train_runtime": 30.0, "train_samples_per_second": 40.0, "num_processes": 1,
            "train_skipped_samples": 0, "task": "vqa",
            "arguments": {"dataset": "easy-vqa", "learning_rate": 0.001, "preset": "ashnets-tiny", "seed": 0},
        }))
    return folder


@pytest.fixture
def vqa_checkpoint(tmp_path, processor):
    torch.manual_seed(0)
    model = AshNetsForQuestionAnswering(tiny_config(id2label=ANSWERS)).eval()
    metrics = {"eval_accuracy": 0.8472, "eval_accuracy_color": 0.99, "eval_samples": 40}
    return _checkpoint(tmp_path / "run", model, processor, metrics)


def _card_metadata(folder) -> dict:
    text = (folder / "README.md").read_text()
    return yaml.safe_load(text.split("---")[1])


def test_export_writes_a_self_contained_repository_with_a_card_from_the_run(vqa_checkpoint, tmp_path):
    exported = tmp_path / "exported"
    export_checkpoint(str(vqa_checkpoint), str(exported), "org/ashnets-tiny-test")
    files = set(os.listdir(exported))
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json", "handler.py",
            "pipeline_ashnets.py", "modeling_ashnets.py", "image_inputs.py", "README.md", "eval_results.json"} <= files
    config = json.loads((exported / "config.json").read_text())
    assert {"AutoModel", "AutoModelForVisualQuestionAnswering", "AutoProcessor"} <= set(config["auto_map"])
    assert config["custom_pipelines"]["visual-question-answering"]["impl"].startswith("pipeline_ashnets.")
    card = _card_metadata(exported)
    assert card["pipeline_tag"] == "visual-question-answering" and "custom_code" in card["tags"]
    result = card["model-index"][0]["results"][0]
    assert result["metrics"][0]["value"] == 84.72 and result["dataset"]["type"] == "easy-vqa"
    assert "| accuracy_color | 99.00 % |" in (exported / "README.md").read_text()
    with pytest.raises(FileExistsError, match="not empty"):
        export_checkpoint(str(vqa_checkpoint), str(exported), "org/ashnets-tiny-test")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        export_checkpoint(str(tmp_path), str(tmp_path / "elsewhere"), "org/x")


def test_card_of_an_untrained_model_claims_no_results(tmp_path, processor):
    from modeling_ashnets.model_card import build_model_card

    folder = _checkpoint(tmp_path / "base", AshNetsForQuestionAnswering(tiny_config(id2label=ANSWERS)), processor)
    card = build_model_card(str(folder), "org/untrained")
    assert "model-index" not in card.content.split("---")[1]
    assert "randomly initialised" in card.content and "Not evaluated" in card.content
    assert "spiking blocks of" in card.content


def test_card_of_the_ann_only_ablation_says_it_has_no_snn(tmp_path, processor):
    from modeling_ashnets.model_card import build_model_card

    model = AshNetsForQuestionAnswering(tiny_config(id2label=ANSWERS, use_snn=False))
    card = build_model_card(str(_checkpoint(tmp_path / "ann", model, processor)), "org/ann-only")
    assert "none (`use_snn=False`" in card.content and "spiking blocks of" not in card.content


FRESH = textwrap.dedent(
    """
    import base64, json, sys
    sys.modules["modeling_ashnets"] = None  # as on the Hub: only transformers and the repository's own code
    from PIL import Image
    from transformers import pipeline
    folder, image_path, expected_file = sys.argv[1:4]
    expected = json.load(open(expected_file))
    sys.path.insert(0, folder)  # as the Inference Endpoints toolkit does before it imports the repository's handler.py
    from handler import EndpointHandler

    raw = open(image_path, "rb").read()
    encoded = base64.b64encode(raw).decode()
    if expected["kind"] == "vqa":
        vqa = pipeline(model=folder, trust_remote_code=True)
        answers = [vqa(image, "what shape is this?", top_k=3)
                   for image in (image_path, raw, encoded, "data:image/png;base64," + encoded, Image.open(image_path))]
        assert all(a == answers[0] for a in answers), answers
        assert [a["answer"] for a in answers[0]] == expected["answers"], (answers[0], expected)
        handler = EndpointHandler(folder)
        served = handler({"inputs": {"image": encoded, "question": "what shape is this?"}, "parameters": {"top_k": 3}})
        assert served == answers[0], (served, answers[0])
        errors = []
        for payload in ([], {"inputs": "x"}, {"inputs": {"image": encoded}}, {"inputs": {"question": "q"}},
                        {"inputs": {"image": "not base64!", "question": "q"}},
                        {"inputs": {"image": base64.b64encode(b"not an image").decode(), "question": "q"}},
                        {"inputs": {"image": encoded, "question": "q"}, "parameters": {"top_k": 0}},
                        {"inputs": {"image": "A" * (11 * 2**20 * 4 // 3), "question": "q"}}):
            try:
                handler(payload)
            except ValueError as error:
                errors.append(str(error))
        print(json.dumps({"errors": errors}))
    else:
        retrieve = pipeline(model=folder, trust_remote_code=True)
        ranking = retrieve(images=[image_path, encoded], texts=["a red circle", "a blue square"])
        assert ranking["image_to_text"][0][0]["text"] == expected["best_text"], ranking
        zero_shot = pipeline("zero-shot-image-classification", model=folder, trust_remote_code=True)
        labels = zero_shot(image_path, candidate_labels=["a red circle", "a blue square"])
        served = EndpointHandler(folder)({"inputs": {"image": encoded, "candidate_labels": ["a red circle", "a blue square"]}})
        assert [s["label"] for s in served][0] == expected["best_text"], served
        features = pipeline("image-feature-extraction", model=folder, trust_remote_code=True)(image_path)
        print(json.dumps({"labels": labels, "features": [len(features), len(features[0])]}))
    print("FRESH OK")
    """
)


def _fresh(tmp_path, folder, image, expected) -> dict:
    (tmp_path / "expected.json").write_text(json.dumps(expected))
    (tmp_path / "fresh.py").write_text(FRESH)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run([sys.executable, str(tmp_path / "fresh.py"), str(folder), image, str(tmp_path / "expected.json")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "FRESH OK" in result.stdout, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-2])


def test_vqa_pipeline_and_handler_without_the_package(vqa_checkpoint, tmp_path, processor, easy_vqa_samples):
    from modeling_ashnets import AshNetsVisualQuestionAnsweringPipeline

    exported = export_checkpoint(str(vqa_checkpoint), str(tmp_path / "exported"), "org/ashnets-tiny-test")
    model = AshNetsForQuestionAnswering.from_pretrained(exported).eval()
    image = easy_vqa_samples[0][0]
    local = AshNetsVisualQuestionAnsweringPipeline(model=model, processor=processor)(image, "what shape is this?", top_k=3)
    assert len(local) == 3 and local[0]["score"] >= local[1]["score"]
    errors = _fresh(tmp_path, exported, image, {"kind": "vqa", "answers": [a["answer"] for a in local]})["errors"]
    assert len(errors) == 8, errors
    for message, expected in zip(errors, ['"inputs"', '"inputs"', "inputs.question", "inputs.image", "not valid base64",
                                          "Cannot decode", "top_k", "over the limit"]):
        assert expected in message, (expected, message)


def test_retrieval_zero_shot_and_feature_extraction_without_the_package(tmp_path, processor, easy_vqa_samples):
    from modeling_ashnets import AshNetsImageTextRetrievalPipeline

    torch.manual_seed(0)
    model = AshNetsForRetrieval(tiny_config()).eval()
    folder = _checkpoint(tmp_path / "retrieval", model, processor)
    exported = export_checkpoint(str(folder), str(tmp_path / "exported"), "org/ashnets-tiny-retrieval")
    image = easy_vqa_samples[0][0]
    local = AshNetsImageTextRetrievalPipeline(model=model, processor=processor)(
        images=[image], texts=["a red circle", "a blue square"])
    best = local["image_to_text"][0][0]["text"]
    assert len(local["text_to_image"]) == 2 and local["text_to_image"][0][0]["image"] == 0
    output = _fresh(tmp_path, exported, image, {"kind": "retrieval", "best_text": best})
    assert output["features"] == [1, model.config.num_visual_tokens]


def test_cli_predict_evaluate_and_errors(vqa_checkpoint, easy_vqa_samples, capsys, tmp_path, processor):
    image = easy_vqa_samples[0][0]
    assert cli(["predict", "--model", str(vqa_checkpoint), "--image", image, "--question", "what shape?",
                "--top_k", "2"]) == 0
    answers = json.loads(capsys.readouterr().out)
    assert len(answers) == 2 and answers[0]["answer"] in ANSWERS.values()
    with pytest.raises(SystemExit, match="pass --question"):
        cli(["predict", "--model", str(vqa_checkpoint), "--image", image])
    capsys.readouterr()
    # The tiny model's answers are not easy-VQA's, so load a checkpoint whose labels are: the demo's vocabulary.
    from modeling_ashnets.data.easy_vqa import easy_vqa_answers

    labels = dict(enumerate(easy_vqa_answers()))
    torch.manual_seed(0)
    model = AshNetsForQuestionAnswering(tiny_config(id2label=labels)).eval()
    folder = _checkpoint(tmp_path / "easy", model, processor)
    assert cli(["evaluate", "--model", str(folder), "--max_samples", "24", "--output", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["eval_samples"] == 24 and 0 <= metrics["eval_accuracy"] <= 1
    capsys.readouterr()
    assert cli(["energy", "--model", str(folder), "--num_samples", "4"]) == 0
    energy = json.loads(capsys.readouterr().out)["model"]
    assert energy["total_pj"] > energy["visual_semantic_branch_pj"] > 0 and len(energy["firing_rate_per_block"]) == 2
    assert cli(["export", "--model", str(tmp_path / "missing"), "--repo_id", "a/b", "--output", str(tmp_path / "o")]) == 2
    assert "no config.json" in capsys.readouterr().err


def test_console_script_help_explains_the_commands():
    result = subprocess.run([sys.executable, "-m", "modeling_ashnets.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("predict", "evaluate", "energy", "export", "push"):
        assert f"ashnets {command}" in result.stdout


def test_image_references(tmp_path, easy_vqa_samples):
    from modeling_ashnets.image_inputs import load_image_reference

    raw = open(easy_vqa_samples[0][0], "rb").read()
    reference = load_image_reference(easy_vqa_samples[0][0])
    for given in (raw, base64.b64encode(raw).decode(), "data:image/png;base64," + base64.b64encode(raw).decode(),
                  Image.open(io.BytesIO(raw))):
        assert np.array_equal(np.asarray(load_image_reference(given)), np.asarray(reference))
    # An http(s) URL, served here from 127.0.0.1.
    import functools
    import http.server
    import shutil
    import threading

    shutil.copyfile(easy_vqa_samples[0][0], tmp_path / "shape.png")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/shape.png"
        assert np.array_equal(np.asarray(load_image_reference(url)), np.asarray(reference))
        with pytest.raises(ValueError, match="Cannot download"):
            load_image_reference(url.replace("shape.png", "missing.png"))
    finally:
        server.shutdown()
    with pytest.raises(ValueError, match="neither an existing file"):
        load_image_reference(str(tmp_path / "missing.png"))
    with pytest.raises(ValueError, match="over the limit"):
        load_image_reference(raw, max_bytes=100)


def test_entailment_handler(tmp_path, processor, easy_vqa_samples):
    """The handler as an endpoint runs it: imported from the exported folder, called with JSON payloads."""
    import importlib.util

    from modeling_ashnets import AshNetsForEntailment

    torch.manual_seed(0)
    folder = _checkpoint(tmp_path / "ve", AshNetsForEntailment(tiny_config()).eval(), processor)
    exported = export_checkpoint(str(folder), str(tmp_path / "exported"), "org/ashnets-tiny-ve")
    spec = importlib.util.spec_from_file_location("exported_handler", os.path.join(exported, "handler.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = module.EndpointHandler(exported)
    image = base64.b64encode(open(easy_vqa_samples[0][0], "rb").read()).decode()
    result = handler({"inputs": {"image": image, "hypothesis": "there is a red shape"}})
    assert [r["label"] for r in result] == ["entailment", "neutral", "contradiction"]
    assert sum(r["score"] for r in result) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="inputs.hypothesis"):
        handler({"inputs": {"image": image}})
    with pytest.raises(ValueError, match="parameters"):
        handler({"inputs": {"image": image, "hypothesis": "h"}, "parameters": [1]})
