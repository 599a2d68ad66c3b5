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

TINY = ["--image_size", "64", "--snn_time_steps", "2", "--per_device_train_batch_size", "8",
        "--per_device_eval_batch_size", "32", "--learning_rate", "1e-3", "--logging_steps", "1", "--seed", "0"]


def _json(folder, name):
    with open(os.path.join(folder, name), encoding="utf-8") as handle:
        return json.load(handle)


def test_vqa_script_trains_saves_and_reloads(tmp_path):
    from examples import run_vqa
    from transformers import AutoModelForVisualQuestionAnswering, AutoProcessor

    import modeling_ashnets  # noqa: F401

    output = tmp_path / "vqa"
    result = run_vqa.main([*TINY, "--output_dir", str(output), "--max_train_steps", "3",
                           "--max_train_samples", "64", "--max_eval_samples", "40"])
    saved = _json(output, "eval_results.json")
    assert saved == pytest.approx(result.eval_metrics)
    assert saved["eval_samples"] == 40 and 0.0 <= saved["eval_accuracy"] <= 1.0
    assert {"eval_accuracy_yes_no", "eval_accuracy_color", "eval_accuracy_shape"} & set(saved)
    trained = _json(output, "train_results.json")
    assert trained["train_steps"] == result.global_step == 3 and result.output_dir == str(output)
    assert result.train_metrics == {k: v for k, v in trained.items() if k not in ("task", "arguments", "log_history")}
    assert result.log_history == trained["log_history"] and len(result.log_history) == 3
    assert trained["arguments"]["dataset"] == "easy-vqa" and trained["arguments"]["preset"] == "ashnets-tiny"
    model = AutoModelForVisualQuestionAnswering.from_pretrained(output)
    processor = AutoProcessor.from_pretrained(output, backend="pil")
    assert model.config.id2label[0] == "circle" and model.config.snn_time_steps == 2
    assert processor.image_processor.size["height"] == 64


def _straight_and_resumed(script, common, tmp_path):
    """Output folders of an uninterrupted run and of one resumed from its step-2 checkpoint."""
    straight = tmp_path / "straight"
    script.main([*common, "--output_dir", str(straight)])
    # A run killed right after its step-2 checkpoint left exactly that checkpoint behind: resume from a copy of it.
    resumed = tmp_path / "resumed"
    shutil.copytree(straight / "checkpoint-2", resumed / "checkpoint-2")
    script.main([*common, "--output_dir", str(resumed), "--resume_from_checkpoint", "latest"])
    return straight, resumed


def test_resume_after_a_kill_continues_from_the_checkpoint(tmp_path):
    from examples import run_entailment

    common = [*TINY, "--max_train_samples", "48", "--max_eval_samples", "24", "--max_train_steps", "4",
              "--checkpointing_steps", "2"]
    straight, resumed = _straight_and_resumed(run_entailment, common, tmp_path)
    assert _json(resumed, "train_results.json")["train_steps"] == 4
    assert _json(resumed, "eval_results.json") == _json(straight, "eval_results.json")
    from safetensors.torch import load_file

    a = load_file(straight / "model.safetensors")
    b = load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a), "resumed weights differ from the uninterrupted run"


def test_balanced_sampling_with_the_softmax_loss_resumes_exactly(tmp_path):
    from examples import run_vqa

    common = [*TINY, "--max_train_samples", "64", "--max_eval_samples", "24", "--max_train_steps", "4",
              "--checkpointing_steps", "2", "--balance_by", "question_type,answers",
              "--config_overrides", "vqa_loss=softmax"]
    straight, resumed = _straight_and_resumed(run_vqa, common, tmp_path)
    from safetensors.torch import load_file

    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a), "resumed weights differ from the uninterrupted run"
    with pytest.raises(ValueError, match="--balance_by: the training set has no column 'difficulty'"):
        run_vqa.main([*TINY, "--output_dir", str(tmp_path / "bad"), "--max_train_steps", "1",
                      "--max_train_samples", "8", "--balance_by", "difficulty"])


def test_retrieval_and_nlvr2_scripts_run(tmp_path):
    from examples import run_nlvr2
    from examples import run_retrieval

    retrieval = run_retrieval.main([*TINY, "--output_dir", str(tmp_path / "r"), "--max_train_steps", "2",
                                    "--max_train_samples", "32", "--max_eval_samples", "20",
                                    "--rerank_k", "3"]).eval_metrics
    assert {"eval_tr_r@1", "eval_ir_r@10", "eval_r_mean"} <= set(retrieval) and retrieval["eval_images"] == 20
    nlvr2 = run_nlvr2.main([*TINY, "--output_dir", str(tmp_path / "n"), "--max_train_steps", "2",
                            "--max_train_samples", "32", "--max_eval_samples", "20"]).eval_metrics
    assert nlvr2["eval_samples"] == 20


def test_a_task_starts_from_another_tasks_checkpoint(tmp_path):
    """Entailment and NLVR2 from a VQA checkpoint: the encoder is the checkpoint's, the head starts fresh."""
    from examples import run_entailment
    from examples import run_nlvr2
    from examples import run_vqa
    from safetensors.torch import load_file

    few = ["--max_train_steps", "1", "--max_train_samples", "16", "--max_eval_samples", "8"]
    run_vqa.main([*TINY, *few, "--output_dir", str(tmp_path / "vqa")])
    vqa = load_file(tmp_path / "vqa" / "model.safetensors")
    with pytest.raises(ValueError, match="This head has 3 classes.*--ignore_mismatched_sizes"):
        run_entailment.main([*TINY, *few, "--output_dir", str(tmp_path / "bad"), "--model_name_or_path",
                             str(tmp_path / "vqa")])
    for script, name, classes in ((run_entailment, "ve", ["entailment", "neutral", "contradiction"]),
                                  (run_nlvr2, "nlvr2", ["False", "True"])):
        script.main([*TINY, *few, "--learning_rate", "0", "--output_dir", str(tmp_path / name),
                     "--model_name_or_path", str(tmp_path / "vqa"), "--ignore_mismatched_sizes"])
        config = _json(tmp_path / name, "config.json")
        assert list(config["id2label"].values()) == classes
        weights = load_file(tmp_path / name / "model.safetensors")
        key = "ashnets.encoder.layers.0.self_attn.q_proj.weight"
        assert key in weights, sorted(weights)[:5]
        assert torch.equal(weights[key], vqa[key])  # learning rate 0: still the VQA checkpoint's encoder


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


@pytest.mark.parametrize("streaming", [False, True])
def test_vqa_v2_files_with_missing_and_corrupt_images_train_and_count_them(tmp_path, streaming):
    """The official VQA v2 format end to end: one image is missing, one is not a JPEG; both are skipped, counted."""
    from examples import run_vqa
    from PIL import Image

    images = tmp_path / "val2014"
    images.mkdir()
    for image_id, color in ((1, (200, 30, 30)), (2, (30, 30, 200))):
        Image.new("RGB", (40, 32), color).save(images / f"COCO_val2014_{image_id:012d}.jpg")
    (images / "COCO_val2014_000000000003.jpg").write_bytes(b"truncated")  # corrupt; image 4 is missing
    questions, annotations = [], []
    for index, (image_id, answer) in enumerate([(1, "red"), (2, "blue"), (3, "red"), (4, "blue")] * 2):
        question_id = 100 * image_id + index
        questions.append({"image_id": image_id, "question": "what color is it?", "question_id": question_id})
        annotations.append({"question_id": question_id, "image_id": image_id, "question_type": "what color",
                            "answer_type": "other", "multiple_choice_answer": answer,
                            "answers": [{"answer": answer, "answer_confidence": "yes", "answer_id": k} for k in range(10)]})
    header = {"info": {}, "license": {}, "data_type": "mscoco", "data_subtype": "val2014"}
    (tmp_path / "q.json").write_text(json.dumps({**header, "task_type": "Open-Ended", "questions": questions}))
    (tmp_path / "a.json").write_text(json.dumps({**header, "annotations": annotations}))
    files = ["--train_questions", str(tmp_path / "q.json"), "--train_annotations", str(tmp_path / "a.json"),
             "--train_images", str(images), "--eval_questions", str(tmp_path / "q.json"),
             "--eval_annotations", str(tmp_path / "a.json"), "--eval_images", str(images)]
    output = tmp_path / "out"
    result = run_vqa.main([*TINY, "--dataset", "vqa-v2", *files, "--output_dir", str(output),
                           "--max_train_steps", "3", *(["--streaming"] if streaming else [])])
    metrics, trained = result.eval_metrics, result.train_metrics
    assert trained["train_steps"] == 3 and trained["train_skipped_samples"] >= 2
    assert metrics["eval_samples"] == 4 and metrics["eval_skipped_samples"] == 4
    assert metrics["eval_accuracy_other"] == metrics["eval_accuracy"]


def test_config_overrides_read_each_value_as_the_type_of_its_option():
    """As transformers' `update_from_string`: strings stay strings (`hidden_act=tanh` is not JSON), numbers and
    booleans take the type of the option's default; a wrong name or value says how to write the option."""
    from argparse import Namespace

    from modeling_ashnets.training import _config_overrides

    def parse(text):
        return _config_overrides(Namespace(image_size=None, snn_time_steps=7, config_overrides=text))

    assert parse("hidden_act=tanh,use_snn=false,hidden_dropout_prob=0,visual_dictionary_size=64") == {
        "snn_time_steps": 7, "hidden_act": "tanh", "use_snn": False, "hidden_dropout_prob": 0.0,
        "visual_dictionary_size": 64}
    for text, problem in [("no_such_option=1", "no_such_option isn't in the original config"),
                          ("use_snn=maybe", "can't derive true or false"), ("vqa_loss", "length 1")]:
        with pytest.raises(ValueError, match=f"--config_overrides '{text}': .*{problem}.* name=value pairs"):
            parse(text)


def test_options_parse_into_typed_dataclasses_with_the_scripts_defaults():
    """(model, data, training) dataclasses from the scripts' flags; pre-training keeps its own warm-up and schedule,
    retrieval adds --rerank_k, and an unknown option is a usage error as before."""
    from examples import pretrain, run_retrieval, run_vqa

    model_args, data_args, training_args = run_vqa.parse_args(
        ["--output_dir", "o", "--train_questions", "a.json", "b.json", "--streaming", "--ignore_mismatched_sizes"])
    assert model_args.preset == "ashnets-tiny" and model_args.ignore_mismatched_sizes and model_args.image_size is None
    assert data_args.train_questions == ["a.json", "b.json"] and data_args.streaming and data_args.num_answers == 3129
    assert training_args.output_dir == "o" and training_args.warmup_ratio == 0.1 and training_args.seed == 42
    training_args = pretrain.parse_args(["--output_dir", "o"])[2]
    assert (training_args.warmup_ratio, training_args.lr_scheduler_type) == (0.05, "cosine")
    assert run_retrieval.parse_args(["--output_dir", "o", "--rerank_k", "3"])[2].rerank_k == 3
    with pytest.raises(SystemExit):
        run_vqa.parse_args(["--output_dir", "o", "--no_such_option", "1"])
