"""`ashnets push` to a local server speaking the Hub's API, then the repository loaded back by id in a process where
this package cannot be imported: the Auto classes, the pipeline and the endpoint handler give the outputs the
checkpoint gave before the push."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from conftest import make_batch, tiny_config
from hub_server import LocalHub
from modeling_ashnets import AshNetsForQuestionAnswering, AshNetsVisualQuestionAnsweringPipeline

ANSWERS = {0: "circle", 1: "rectangle", 2: "triangle", 3: "red", 4: "blue"}

FROM_THE_HUB = textwrap.dedent(
    """
    import base64, json, sys, torch
    sys.modules["modeling_ashnets"] = None
    from huggingface_hub import snapshot_download
    from transformers import AutoModel, AutoModelForVisualQuestionAnswering, AutoProcessor, pipeline
    repo, expected_file = sys.argv[1], sys.argv[2]
    expected = torch.load(expected_file)
    processor = AutoProcessor.from_pretrained(repo, trust_remote_code=True, backend="pil")
    batch = processor(images=expected["images"], text=expected["texts"], return_tensors="pt")
    with torch.no_grad():
        vqa = AutoModelForVisualQuestionAnswering.from_pretrained(repo, trust_remote_code=True).eval()
        torch.testing.assert_close(vqa(**batch).logits, expected["logits"], rtol=0, atol=0)
        base = AutoModel.from_pretrained(repo, trust_remote_code=True).eval()
        torch.testing.assert_close(base(**batch).pooler_output, expected["pooler_output"], rtol=0, atol=0)
    answers = pipeline(model=repo, trust_remote_code=True)(expected["images"][0], expected["texts"][0], top_k=3)
    folder = snapshot_download(repo)
    sys.path.insert(0, folder)  # as the Inference Endpoints toolkit does before it imports the repository's handler.py
    from handler import EndpointHandler
    image = base64.b64encode(open(expected["images"][0], "rb").read()).decode()
    served = EndpointHandler(folder)({"inputs": {"image": image, "question": expected["texts"][0]},
                                      "parameters": {"top_k": 3}})
    print(json.dumps({"pipeline": answers, "handler": served}))
    """
)


def _client_env(hub, tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_ENDPOINT=hub.endpoint, HF_HUB_OFFLINE="0", HF_TOKEN="local-token", HF_HUB_DISABLE_XET="1",
               HF_HUB_DISABLE_TELEMETRY="1", HF_HOME=str(tmp_path / "hf_home"),
               HF_MODULES_CACHE=str(tmp_path / "modules"))
    return env


def test_push_then_load_by_id_without_the_package(tmp_path, processor, easy_vqa_samples):
    torch.manual_seed(0)
    model = AshNetsForQuestionAnswering(tiny_config(id2label=ANSWERS)).eval()
    run = tmp_path / "run"
    model.save_pretrained(run)
    processor.save_pretrained(run)
    (run / "eval_results.json").write_text(json.dumps({"eval_accuracy": 0.5, "eval_samples": 4}))
    batch = make_batch(processor, easy_vqa_samples)
    with torch.no_grad():
        expected = {"images": [s[0] for s in easy_vqa_samples], "texts": [s[1] for s in easy_vqa_samples],
                    "logits": model(**batch).logits, "pooler_output": model.ashnets(**batch).pooler_output}
    torch.save(expected, tmp_path / "expected.pt")
    before = AshNetsVisualQuestionAnsweringPipeline(model=model, processor=processor)(
        expected["images"][0], expected["texts"][0], top_k=3)

    script = Path(sys.executable).with_name("ashnets")  # the console script the package installs
    assert script.is_file(), f"{script} is missing: install the package (make install)"
    with LocalHub(tmp_path / "hub") as hub:
        env = _client_env(hub, tmp_path)
        pushed = subprocess.run(
            [str(script), "push", "--model", str(run), "--repo_id", "org/ashnets-tiny-test", "--private",
             "--dataset", "easy-vqa", "--commit_message", "ASH-Nets tiny, first upload"],
            env=env, capture_output=True, text=True, timeout=300,
        )
        assert pushed.returncode == 0, pushed.stderr[-4000:]
        assert json.loads(pushed.stdout)["repo_id"] == "org/ashnets-tiny-test"
        files = hub.files("org/ashnets-tiny-test")
        assert {"README.md", "handler.py", "pipeline_ashnets.py", "model.safetensors", "processor_config.json"} <= set(files)
        assert "value: 50.0" in files["README.md"].decode()
        assert hub.commits("org/ashnets-tiny-test")[-1]["summary"] == "ASH-Nets tiny, first upload"
        # A second push to a branch leaves main as it was.
        again = subprocess.run(
            [str(script), "push", "--model", str(run), "--repo_id", "org/ashnets-tiny-test", "--revision", "v2"],
            env=env, capture_output=True, text=True, timeout=300,
        )
        assert again.returncode == 0, again.stderr[-4000:]
        assert hub.files("org/ashnets-tiny-test", revision="v2").keys() == files.keys()

        (tmp_path / "from_hub.py").write_text(FROM_THE_HUB)
        loaded = subprocess.run([sys.executable, str(tmp_path / "from_hub.py"), "org/ashnets-tiny-test",
                                 str(tmp_path / "expected.pt")], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=300)
        assert loaded.returncode == 0, loaded.stderr[-4000:]
    outputs = json.loads(loaded.stdout.strip().splitlines()[-1])
    # The pipeline loads the default (torchvision) image processor; its resize differs from PIL's in the last digits.
    assert [a["answer"] for a in outputs["pipeline"]] == [a["answer"] for a in before]
    assert outputs["handler"] == outputs["pipeline"]
