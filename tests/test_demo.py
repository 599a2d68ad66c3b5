"""Smoke test of `make demo`'s script: the whole path, with a few training steps instead of the full recipe."""

import json
import os
import subprocess
import sys
from pathlib import Path


def test_demo_trains_saves_reloads_and_answers(tmp_path):
    script = Path(__file__).resolve().parents[1] / "examples" / "demo_easy_vqa.py"
    output = tmp_path / "easy-vqa"
    result = subprocess.run(
        [sys.executable, str(script), "--output_dir", str(output), "--max_train_steps", "3",
         "--max_train_samples", "200", "--max_eval_samples", "300"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "easy-VQA test accuracy:" in result.stdout and "on 300 questions" in result.stdout
    assert "yes_no questions:" in result.stdout
    assert f"reloaded from {output}: Q: 'what is the red shape?'" in result.stdout
    assert "SNN firing rate per layer: layer 0:" in result.stdout
    with open(output / "eval_results.json", encoding="utf-8") as handle:
        assert 0.0 <= json.load(handle)["eval_accuracy"] <= 1.0
    assert (output / "model.safetensors").is_file() and (output / "processor_config.json").is_file()
