"""Smoke tests of the fine-tuning scripts (tiny model, a few steps): outputs, resume, and a 2-process run."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

TINY = ["--image_size", "64", "--snn_time_steps", "2", "--per_device_train_batch_size", "8",
        "--per_device_eval_batch_size", "32", "--learning_rate", "1e-3", "--logging_steps", "1", "--seed", "0"]


def _json(folder, name):
    with open(os.path.join(folder, name), encoding="utf-8") as handle:
        return json.load(handle)


def test_vqa_script_trains_saves_and_reloads(tmp_path):
    import run_vqa
    from transformers import AutoModelForVisualQuestionAnswering, AutoProcessor

    import modeling_ashnets  # noqa: F401

    output = tmp_path / "vqa"
    metrics = run_vqa.main([*TINY, "--output_dir", str(output), "--max_train_steps", "3",
                            "--max_train_samples", "64", "--max_eval_samples", "40"])
    saved = _json(output, "eval_results.json")
    assert saved == pytest.approx(metrics)
    assert saved["eval_samples"] == 40 and 0.0 <= saved["eval_accuracy"] <= 1.0
    assert {"eval_accuracy_yes_no", "eval_accuracy_color", "eval_accuracy_shape"} & set(saved)
    assert _json(output, "train_results.json")["train_steps"] == 3
    model = AutoModelForVisualQuestionAnswering.from_pretrained(output)
    processor = AutoProcessor.from_pretrained(output, backend="pil")
    assert model.config.id2label[0] == "circle" and model.config.snn_time_steps == 2
    assert processor.image_processor.size["height"] == 64


def test_resume_after_a_kill_continues_from_the_checkpoint(tmp_path):
    import run_entailment

    common = [*TINY, "--max_train_samples", "48", "--max_eval_samples", "24", "--max_train_steps", "4",
              "--checkpointing_steps", "2"]
    straight = tmp_path / "straight"
    run_entailment.main([*common, "--output_dir", str(straight)])
    # A run killed right after its step-2 checkpoint left exactly that checkpoint behind: resume from a copy of it.
    resumed = tmp_path / "resumed"
    shutil.copytree(straight / "checkpoint-2", resumed / "checkpoint-2")
    run_entailment.main([*common, "--output_dir", str(resumed), "--resume_from_checkpoint", "latest"])
    assert _json(resumed, "train_results.json")["train_steps"] == 4
    assert _json(resumed, "eval_results.json") == _json(straight, "eval_results.json")
    from safetensors.torch import load_file

    a = load_file(straight / "model.safetensors")
    b = load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a), "resumed weights differ from the uninterrupted run"


def test_retrieval_and_nlvr2_scripts_run(tmp_path):
    import run_nlvr2
    import run_retrieval

    retrieval = run_retrieval.main([*TINY, "--output_dir", str(tmp_path / "r"), "--max_train_steps", "2",
                                    "--max_train_samples", "32", "--max_eval_samples", "20", "--rerank_k", "3"])
    assert {"eval_tr_r@1", "eval_ir_r@10", "eval_r_mean"} <= set(retrieval) and retrieval["eval_images"] == 20
    nlvr2 = run_nlvr2.main([*TINY, "--output_dir", str(tmp_path / "n"), "--max_train_steps", "2",
                            "--max_train_samples", "32", "--max_eval_samples", "20"])
    assert nlvr2["eval_samples"] == 20


def test_two_process_accelerate_launch(tmp_path):
    output = tmp_path / "ddp"
    # On a machine without GPUs, `--multi_gpu` starts torchrun processes that train on the CPU over gloo (MULTI_CPU).
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               str(EXAMPLES / "run_entailment.py"), *TINY, "--output_dir", str(output), "--max_train_steps", "2",
               "--max_train_samples", "32", "--max_eval_samples", "16"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    trained = _json(output, "train_results.json")
    assert trained["num_processes"] == 2 and trained["train_steps"] == 2
    assert _json(output, "eval_results.json")["eval_samples"] == 16
