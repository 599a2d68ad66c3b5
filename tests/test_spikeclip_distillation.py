"""SpikeCLIP's distillation recipe (examples/run_spikeclip_distillation.py) end to end with tiny teachers: the three
stages from a transformers CLIPModel and from an ASH-Nets retrieval checkpoint, exact resume, a local
image-classification data set with a bad image, and a 2-process `accelerate launch` run. Students are spikeclip-tiny
with T = 2, trained for a few steps on a few samples."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import tiny_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TEACHER_DIM = 16
FAST = ["--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "64",
        "--logging_steps", "1", "--seed", "0"]


def _json(folder, name):
    with open(os.path.join(folder, name), encoding="utf-8") as handle:
        return json.load(handle)


def _losses(folder, name="loss"):
    return [entry[name] for entry in _json(folder, "train_results.json")["log_history"] if name in entry]


@pytest.fixture(scope="module")
def clip_teacher(tmp_path_factory, minilm_path):
    """A tiny random transformers CLIPModel. CLIP's own BPE tokenizer needs vocab/merges files that cannot be had
    offline, but CLIPProcessor takes any tokenizer (it is saved and reloaded through AutoTokenizer), so this CLIP
    reads BERT's WordPiece ids: a 30,522-token vocabulary, and [SEP] (102) as eos_token_id, where CLIP's text tower
    pools."""
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    torch.manual_seed(0)
    text = dict(vocab_size=30522, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                max_position_embeddings=32, bos_token_id=101, eos_token_id=102, pad_token_id=0)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, image_size=32,
                  patch_size=8)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=TEACHER_DIM))
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=AutoTokenizer.from_pretrained(minilm_path))
    folder = tmp_path_factory.mktemp("clip-teacher")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def ashnets_teacher(tmp_path_factory, minilm_path):
    """A tiny ASH-Nets retrieval checkpoint (conftest's shrunk ashnets-tiny), as examples/run_retrieval.py saves
    one."""
    from transformers import AutoTokenizer

    from modeling_ashnets import AshNetsForRetrieval, AshNetsImageProcessor, AshNetsProcessor

    torch.manual_seed(0)
    model = AshNetsForRetrieval(tiny_config(projection_dim=TEACHER_DIM))
    processor = AshNetsProcessor(image_processor=AshNetsImageProcessor(size={"height": 64, "width": 64}),
                                 tokenizer=AutoTokenizer.from_pretrained(minilm_path))
    folder = tmp_path_factory.mktemp("ashnets-teacher")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def shapes_dataset(tmp_path_factory):
    """A local image-classification data set (`save_to_disk`, train and test) with a ClassLabel column and CIFAR's
    column names, made of real easy-VQA images; one training image is not an image."""
    import datasets
    from easy_vqa import get_train_image_paths

    from modeling_ashnets.data.easy_vqa import easy_vqa_image_facts

    facts = easy_vqa_image_facts("test")[:40]
    names = ["circle", "rectangle", "triangle"]
    features = datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(names=names)})

    def split(rows):
        return datasets.Dataset.from_dict({"img": [fact.path for fact in rows],
                                           "label": [names.index(fact.shape) for fact in rows]}, features=features)

    train = split(facts[:24])
    bad = datasets.Dataset.from_dict({"img": [{"bytes": b"not an image", "path": "bad.png"}], "label": [0]},
                                     features=features)
    folder = tmp_path_factory.mktemp("shapes") / "data"
    datasets.DatasetDict({"train": datasets.concatenate_datasets([train, bad]),
                          "test": split(facts[24:])}).save_to_disk(str(folder))
    assert get_train_image_paths()  # the easy-VQA package is there
    return str(folder)


def _run(*args):
    from examples import run_spikeclip_distillation

    fresh = [] if "--model_name_or_path" in args else ["--time_steps", "2"]  # a fresh student: T = 2
    return run_spikeclip_distillation.main([*FAST, *fresh, *map(str, args)])


def test_losses():
    from modeling_ashnets.losses import cosine_distillation_loss, dual_distillation_loss

    teacher = torch.randn(5, 8)
    assert cosine_distillation_loss(3.0 * teacher, teacher).item() == pytest.approx(0.0, abs=1e-6)
    assert cosine_distillation_loss(-teacher, teacher).item() == pytest.approx(2.0)
    logits, labels = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    same = dual_distillation_loss(logits, labels, logits, kl_weight=0.5, temperature=2.0)
    assert same.kl_loss.item() == pytest.approx(0.0, abs=1e-6)
    assert same.ce_loss.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item())
    teacher_logits = torch.randn(6, 4)
    dual = dual_distillation_loss(logits, labels, teacher_logits, kl_weight=0.5, temperature=2.0)
    p = (teacher_logits / 2).softmax(-1)
    expected = (p * (p.log() - (logits / 2).log_softmax(-1))).sum(-1).mean() * 4
    assert dual.kl_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert dual.loss.item() == pytest.approx(dual.ce_loss.item() + 0.5 * dual.kl_loss.item(), rel=1e-6)


def test_three_stages_from_a_clip_teacher(tmp_path, clip_teacher, capsys):
    """text -> image -> dual, each from the previous folder; the teacher's features are cached on disk by the first
    stages and read back by the last; the result loads as a zero-shot classifier through remote code."""
    from transformers import AutoModelForZeroShotImageClassification, AutoProcessor

    cache = tmp_path / "teacher-cache"
    common = ["--teacher", clip_teacher, "--teacher_cache_dir", cache, "--max_eval_samples", "8",
              "--max_train_samples", "16", "--max_train_steps", "2"]
    text = _run(*common, "--stage", "text", "--output_dir", tmp_path / "text", "--report_to", "tensorboard")
    image = _run(*common, "--stage", "image", "--model_name_or_path", tmp_path / "text", "--output_dir",
                 tmp_path / "image")
    capsys.readouterr()
    dual = _run(*common, "--stage", "dual", "--model_name_or_path", tmp_path / "image", "--output_dir",
                tmp_path / "dual")
    assert "teacher features of" not in capsys.readouterr().out  # every image's features came from the cache
    assert {path.name.split("-")[0] for path in cache.iterdir()} == {"images", "texts"}
    assert list((tmp_path / "text").rglob("events.out.tfevents.*")), "no TensorBoard log written"
    for result, stage in ((text, "text"), (image, "image"), (dual, "dual")):
        folder = tmp_path / stage
        assert result.eval_metrics == pytest.approx(_json(folder, "eval_results.json"))
        metrics = result.eval_metrics
        assert metrics["eval_samples"] == 8 and 0.0 <= metrics["eval_zero_shot_accuracy"] <= 1.0
        assert metrics["eval_zero_shot_accuracy"] <= metrics["eval_zero_shot_top5_accuracy"] <= 1.0
        assert -1.0 <= metrics["eval_image_cosine"] <= 1.0 and -1.0 <= metrics["eval_text_cosine"] <= 1.0
        trained = _json(folder, "train_results.json")
        assert trained["task"] == f"spikeclip-{stage}" and trained["train_steps"] == 2
        assert trained["arguments"]["stage"] == stage and trained["arguments"]["teacher"] == clip_teacher
        assert all(torch.isfinite(torch.tensor(_losses(folder)))), _losses(folder)
    # The teacher's accuracy is the same reference in every stage.
    assert len({result.eval_metrics["eval_teacher_zero_shot_accuracy"] for result in (text, image, dual)}) == 1
    assert set(_losses(tmp_path / "dual", "ce_loss")) and set(_losses(tmp_path / "dual", "kl_loss"))
    config = _json(tmp_path / "dual", "config.json")
    assert config["projection_dim"] == TEACHER_DIM and config["text_config"]["hidden_size"] == TEACHER_DIM
    assert config["vision_config"]["time_steps"] == 2

    model = AutoModelForZeroShotImageClassification.from_pretrained(tmp_path / "dual", trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(tmp_path / "dual", trust_remote_code=True)
    from easy_vqa import get_test_image_paths
    from PIL import Image

    inputs = processor(images=Image.open(get_test_image_paths()[0]), text=["a red circle", "a blue triangle"],
                       return_tensors="pt")
    assert inputs["input_ids"].shape[1] == 20 and inputs["pixel_values"].shape[-1] == 32
    with torch.no_grad():
        assert model(**inputs).logits_per_image.shape == (1, 2)


def test_losses_decrease_on_a_repeated_batch_from_an_ashnets_teacher(tmp_path, ashnets_teacher):
    """One batch of 8, seen again at every step with a constant learning rate: each stage's loss goes down."""
    common = ["--teacher", ashnets_teacher, "--max_eval_samples", "8", "--max_train_samples", "8",
              "--lr_scheduler_type", "constant", "--warmup_ratio", "0"]
    _run(*common, "--stage", "text", "--max_train_steps", "6", "--output_dir", tmp_path / "text")
    _run(*common, "--stage", "image", "--max_train_steps", "4", "--model_name_or_path", tmp_path / "text",
         "--output_dir", tmp_path / "image")
    _run(*common, "--stage", "dual", "--max_train_steps", "4", "--model_name_or_path", tmp_path / "image",
         "--output_dir", tmp_path / "dual")
    for stage in ("text", "image", "dual"):
        losses = _losses(tmp_path / stage)
        assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0], (stage, losses)
    assert _json(tmp_path / "image", "eval_results.json")["eval_image_cosine"] > _json(
        tmp_path / "text", "eval_results.json")["eval_image_cosine"]


def test_resume_continues_exactly(tmp_path, clip_teacher):
    """The dual stage (fresh student) resumed from its step-2 checkpoint ends as the uninterrupted run does."""
    from safetensors.torch import load_file

    # 3 batches an epoch: the checkpoint is mid-epoch, the run ends in the next epoch.
    common = ["--teacher", clip_teacher, "--stage", "dual", "--max_eval_samples", "4", "--max_train_samples", "6",
              "--per_device_train_batch_size", "2", "--max_train_steps", "4", "--checkpointing_steps", "2"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    _run(*common, "--output_dir", straight)
    shutil.copytree(straight / "checkpoint-2", resumed / "checkpoint-2")
    _run(*common, "--output_dir", resumed, "--resume_from_checkpoint", "latest")
    assert _json(resumed, "train_results.json")["train_steps"] == 4
    assert _losses(resumed) == pytest.approx(_losses(straight)[2:])
    assert _json(resumed, "eval_results.json") == pytest.approx(_json(straight, "eval_results.json"))
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a), "resumed weights differ"


def test_a_local_classification_dataset_with_a_bad_image(tmp_path, clip_teacher, shapes_dataset, capsys):
    """`--dataset <save_to_disk folder>`: CIFAR's column names given as options, class names from the ClassLabel,
    the unreadable image skipped and reported; an ANN-twin student."""
    result = _run("--teacher", clip_teacher, "--dataset", shapes_dataset, "--image_column", "img", "--stage",
                  "image", "--ann_twin", "--max_train_steps", "2", "--output_dir", tmp_path / "out")
    assert "skipped 1 of 25 images, e.g. bad.png" in capsys.readouterr().out
    assert result.eval_metrics["eval_samples"] == 16
    config = _json(tmp_path / "out", "config.json")
    assert config["vision_config"]["neuron"] == "relu" and config["text_config"]["time_steps"] == 1


def test_options_are_checked(tmp_path, clip_teacher):
    from examples import run_spikeclip_distillation

    with pytest.raises(SystemExit):  # --stage is required
        run_spikeclip_distillation.parse_args(["--teacher", clip_teacher, "--output_dir", str(tmp_path)])
    with pytest.raises(SystemExit):
        run_spikeclip_distillation.parse_args(["--teacher", "t", "--output_dir", "o", "--stage", "vision"])
    model_args, data_args, training_args = run_spikeclip_distillation.parse_args(
        ["--teacher", "t", "--output_dir", "o", "--stage", "dual", "--kl_temperature", "2"])
    assert (training_args.stage, training_args.kl_temperature, training_args.learning_rate) == ("dual", 2.0, 1e-3)
    assert model_args.preset == "spikeclip-tiny" and data_args.dataset == "easy-vqa"
    with pytest.raises(ValueError, match="--ann_twin and --time_steps build a fresh student"):
        _run("--teacher", clip_teacher, "--stage", "image", "--model_name_or_path", clip_teacher, "--ann_twin",
             "--output_dir",
             tmp_path / "x", "--max_train_steps", "1", "--max_train_samples", "8", "--max_eval_samples", "8")


def test_two_process_accelerate_launch(tmp_path, clip_teacher, shapes_dataset):
    output = tmp_path / "ddp"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               str(EXAMPLES / "run_spikeclip_distillation.py"), *FAST, "--time_steps", "2", "--teacher", clip_teacher,
               "--dataset", shapes_dataset, "--image_column", "img", "--stage", "image",
               "--per_device_train_batch_size", "4", "--max_train_steps", "2", "--max_eval_samples", "8",
               "--output_dir", str(output)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    trained = _json(output, "train_results.json")
    assert trained["num_processes"] == 2 and trained["train_steps"] == 2
    assert len(set(trained["parameter_digest_per_process"])) == 1
    assert _json(output, "eval_results.json")["eval_samples"] == 8
