"""Auto classes after `import modeling_ashnets`, and remote-code loading where the package is not importable."""

import json
import os
import subprocess
import sys
import textwrap

import torch
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForVisualQuestionAnswering,
    AutoModelForZeroShotImageClassification,
    AutoProcessor,
)

from conftest import make_batch, tiny_config
from modeling_ashnets import (
    AshNetsConfig,
    AshNetsForQuestionAnswering,
    AshNetsForRetrieval,
    AshNetsImageProcessor,
    AshNetsModel,
    AshNetsProcessor,
)


def test_auto_classes_are_registered(tmp_path, processor):
    config = tiny_config(id2label={0: "yes", 1: "no"})
    assert isinstance(AutoConfig.for_model("ashnets"), AshNetsConfig)
    assert type(AutoModel.from_config(config)) is AshNetsModel
    assert type(AutoModelForVisualQuestionAnswering.from_config(config)) is AshNetsForQuestionAnswering
    assert type(AutoModelForZeroShotImageClassification.from_config(config)) is AshNetsForRetrieval
    AshNetsForQuestionAnswering(config).save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert type(AutoModelForVisualQuestionAnswering.from_pretrained(tmp_path)) is AshNetsForQuestionAnswering
    assert type(AutoProcessor.from_pretrained(tmp_path)) is AshNetsProcessor
    assert type(AutoImageProcessor.from_pretrained(tmp_path, backend="pil")) is AshNetsImageProcessor


def test_model_alone_gives_a_folder_whose_auto_map_resolves(tmp_path):
    AshNetsModel(tiny_config()).save_pretrained(tmp_path)
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    for target in [auto_map["AutoProcessor"], *auto_map["AutoImageProcessor"].values(), auto_map["AutoModel"]]:
        assert (tmp_path / f"{target.split('.')[0]}.py").is_file(), target


def test_saved_folder_is_self_contained(tmp_path, processor):
    AshNetsForQuestionAnswering(tiny_config(id2label={0: "yes", 1: "no"})).save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    files = set(os.listdir(tmp_path))
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json", "tokenizer_config.json"} <= files
    assert {"modeling_ashnets.py", "configuration_ashnets.py", "semantic_abstract_encoder.py", "fusion_transformer.py",
            "visual_concrete_encoder.py", "processing_ashnets.py", "image_processing_ashnets.py", "image_inputs.py"} <= files
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert set(auto_map) == {"AutoConfig", "AutoModel", "AutoModelForVisualQuestionAnswering",
                             "AutoModelForZeroShotImageClassification", "AutoImageProcessor", "AutoProcessor"}
    for target in [auto_map["AutoModel"], auto_map["AutoConfig"], *auto_map["AutoImageProcessor"].values()]:
        assert f"{target.split('.')[0]}.py" in files


FRESH_PROCESS = textwrap.dedent(
    """
    import sys, torch
    sys.modules["modeling_ashnets"] = None  # the package must not be importable here
    from transformers import AutoModel, AutoModelForVisualQuestionAnswering, AutoProcessor
    folder, expected_file = sys.argv[1], sys.argv[2]
    expected = torch.load(expected_file)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True, backend="pil")
    batch = processor(images=expected["images"], text=expected["texts"], return_tensors="pt")
    for key, value in expected["batch"].items():
        torch.testing.assert_close(batch[key], value)
    vqa = AutoModelForVisualQuestionAnswering.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(vqa).__module__.startswith("transformers_modules"), type(vqa).__module__
    with torch.no_grad():
        torch.testing.assert_close(vqa(**batch).logits, expected["logits"])
        base = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
        torch.testing.assert_close(base(**batch).pooler_output, expected["pooler_output"])
    # transformers' default backend (torchvision) resizes slightly differently from PIL: close, not equal.
    default_processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    default_batch = default_processor(images=expected["images"], text=expected["texts"], return_tensors="pt")
    torch.testing.assert_close(default_batch["pixel_values"], expected["batch"]["pixel_values"], atol=0.1, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(vqa(**default_batch).logits, expected["logits"], atol=1e-2, rtol=0)
    # What was loaded through remote code saves again, and reloads equal.
    processor.save_pretrained(folder + "-again")
    vqa.save_pretrained(folder + "-again")
    again = AutoProcessor.from_pretrained(folder + "-again", trust_remote_code=True, backend="pil")
    with torch.no_grad():
        vqa_again = AutoModelForVisualQuestionAnswering.from_pretrained(folder + "-again", trust_remote_code=True).eval()
        again_batch = again(images=expected["images"], text=expected["texts"], return_tensors="pt")
        torch.testing.assert_close(vqa_again(**again_batch).logits, expected["logits"])
    print("FRESH PROCESS OK", type(processor).__name__, type(vqa).__name__, type(base).__name__)
    """
)


def test_remote_code_load_in_a_fresh_process(tmp_path, processor, easy_vqa_samples):
    folder = tmp_path / "checkpoint"
    torch.manual_seed(0)
    model = AshNetsForQuestionAnswering(tiny_config(id2label={i: f"answer {i}" for i in range(5)})).eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    batch = make_batch(processor, easy_vqa_samples)
    with torch.no_grad():
        expected = {
            "images": [s[0] for s in easy_vqa_samples],
            "texts": [s[1] for s in easy_vqa_samples],
            "batch": dict(batch),
            "logits": model(**batch).logits,
            "pooler_output": model.ashnets(**batch).pooler_output,
        }
    torch.save(expected, tmp_path / "expected.pt")
    (tmp_path / "fresh.py").write_text(FRESH_PROCESS)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run(
        [sys.executable, str(tmp_path / "fresh.py"), str(folder), str(tmp_path / "expected.pt")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "FRESH PROCESS OK AshNetsProcessor AshNetsForQuestionAnswering AshNetsModel" in result.stdout
