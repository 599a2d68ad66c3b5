"""examples/pretrain.py end to end (tiny model, a few steps): the built-in corpus then fine-tuning, exact resume after
a real kill, and a 2-process `accelerate launch` on COCO, Visual Genome and webdataset fixtures."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import write_pretraining_fixtures

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

TINY = ["--image_size", "64", "--snn_time_steps", "2", "--per_device_train_batch_size", "8", "--learning_rate", "1e-3",
        "--logging_steps", "1", "--seed", "0", "--config_overrides", "visual_dictionary_size=64"]
OBJECTIVES = ("itc_loss", "itm_loss", "mlm_loss", "mvm_loss", "stua_loss")
ENV = {**os.environ, "OMP_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _file_sources(files):
    return ["--coco_captions", str(files["coco_captions"]), "--coco_images", str(files["coco_images"]),
            "--vg_regions", str(files["vg_regions"]), "--vg_images", *map(str, files["vg_images"])]


def test_pretraining_on_the_builtin_corpus_then_fine_tuning(tmp_path):
    from examples import pretrain
    from examples import run_vqa

    output = tmp_path / "pretrained"
    pretrain.main([*TINY, "--output_dir", str(output), "--max_train_samples", "96", "--max_train_steps", "3",
                   "--report_to", "tensorboard"])
    trained = _json(output / "train_results.json")
    assert trained["train_steps"] == 3 and len(trained["log_history"]) == 3
    for logged in trained["log_history"]:
        for name in (*OBJECTIVES, "loss", "firing_rate/block_0", "firing_rate/block_1"):
            assert name in logged and logged[name] == logged[name], name  # present and not NaN
        assert 0.0 <= logged["firing_rate/block_0"] <= 1.0
    assert list(output.rglob("events.out.tfevents.*")), "no TensorBoard log written"
    assert _json(output / "config.json")["architectures"] == ["AshNetsForPreTraining"]
    result = run_vqa.main([*TINY[:-2], "--model_name_or_path", str(output), "--output_dir", str(tmp_path / "vqa"),
                           "--max_train_steps", "2", "--max_train_samples", "32", "--max_eval_samples", "16"])
    assert result.eval_metrics["eval_samples"] == 16


def test_kill_and_resume_reproduce_the_uninterrupted_losses(tmp_path):
    """A streamed run is killed (SIGKILL) after a checkpoint and resumed: the steps after the checkpoint have the
    losses of a run that was never interrupted (same data position, same random draws)."""
    from examples import pretrain

    files = write_pretraining_fixtures(tmp_path / "raw")
    common = [*TINY, *_file_sources(files), "--streaming", "--max_train_steps", "8", "--checkpointing_steps", "2"]
    straight = pretrain.main([*common, "--output_dir", str(tmp_path / "straight")])

    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, str(EXAMPLES / "pretrain.py"), *common, "--output_dir", str(killed)],
                               env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (killed / "checkpoint-2" / "checkpoint_complete").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "train_results.json").exists(), "the run finished before it could be killed"
    resumed = pretrain.main([*common, "--output_dir", str(killed), "--resume_from_checkpoint", "latest"]).log_history

    expected = {entry["step"]: entry for entry in straight.log_history}
    assert resumed and resumed[0]["step"] > 2 and resumed[-1]["step"] == 8
    for entry in resumed:
        for name in (*OBJECTIVES, "loss"):
            assert entry[name] == pytest.approx(expected[entry["step"]][name], rel=1e-4, abs=1e-5), (entry["step"], name)


def test_two_process_pretraining_on_coco_visual_genome_and_webdataset(tmp_path):
    from modeling_ashnets.data import pretraining as corpus
    from modeling_ashnets.data.webdataset_writer import write_webdataset

    files = write_pretraining_fixtures(tmp_path / "raw")
    coco = corpus.load_coco_captions(files["coco_captions"], files["coco_images"])
    write_webdataset(coco, str(tmp_path / "shards"), prefix="coco", samples_per_shard=4)
    output = tmp_path / "ddp"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(EXAMPLES / "accelerate_configs" / "cpu_2_processes.yaml"), str(EXAMPLES / "pretrain.py"),
               *TINY, *_file_sources(files), "--webdataset", str(tmp_path / "shards" / "coco-*.tar"),
               "--mixing_weights", "1", "1", "2", "--max_train_steps", "3", "--output_dir", str(output)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**ENV, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-4000:]
    trained = _json(output / "train_results.json")
    assert trained["num_processes"] == 2 and trained["train_steps"] == 3
    first, second = trained["parameter_digest_per_process"]
    assert first == second, "the two processes ended with different weights"
