"""GSHN's inputs end to end: the processor's segment sources on real scene images, segments given with the data (the
collator reading COCO panoptic PNGs), a panoptic model inside the processor, the scripts' GSHN presets, and a saved
folder loading through remote code and the VQA pipeline where the package is not importable."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import tiny_gshn_config
from test_segments import tiny_mask2former  # noqa: F401 (a fixture)
from transformers import AutoProcessor, AutoTokenizer

from modeling_ashnets import GshnForQuestionAnswering, GshnImageProcessor, GshnProcessor
from modeling_ashnets.data.collators import AshNetsCollator
from modeling_ashnets.data.shape_scenes import load_shape_scenes, shape_scenes_answers
from modeling_ashnets.segments import read_coco_panoptic
from modeling_ashnets.training import default_tokenizer_path


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    return load_shape_scenes("test", max_samples=40, root=root, num_images=6)


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(default_tokenizer_path(), max_length=40)


def make_processor(tokenizer, source="pixels", size=96, max_segments=8):
    image_processor = GshnImageProcessor(size={"height": size, "width": size}, segment_source=source,
                                         max_segments=max_segments)
    return GshnProcessor(image_processor=image_processor, tokenizer=tokenizer)


def same_partition(first: np.ndarray, second: np.ndarray) -> bool:
    """Two id maps split the image the same way, whatever the ids' order."""
    pairs = set(zip(first.ravel().tolist(), second.ravel().tolist()))
    return len(pairs) == len(set(first.ravel().tolist())) == len(set(second.ravel().tolist()))


def test_pixel_segments_are_the_scenes_panoptic_annotation(scenes, tokenizer):
    processor = make_processor(tokenizer)
    batch = processor(images=scenes["image"][:6], text=scenes["question"][:6], return_tensors="pt")
    assert batch["segment_ids"].shape == (6, 96, 96) and batch["segment_ids"].dtype == torch.long
    for ids, panoptic in zip(batch["segment_ids"], scenes["panoptic"][:6]):
        annotation, _ = read_coco_panoptic(panoptic, max_segments=8)
        assert same_partition(ids.numpy(), annotation)
        assert (ids >= 0).all()  # every pixel belongs to the background or a shape


def test_superpixels_cover_every_pixel_within_the_limit(scenes, tokenizer):
    batch = make_processor(tokenizer, "superpixels", max_segments=6)(images=scenes["image"][:3], return_tensors="pt")
    ids = batch["segment_ids"]
    assert ids.shape == (3, 96, 96) and ids.min() >= 0 and ids.max() < 6


def test_given_segments_and_their_errors(scenes, tokenizer):
    processor = make_processor(tokenizer, "given")
    annotation, _ = read_coco_panoptic(scenes["panoptic"][0], max_segments=8)
    with pytest.raises(ValueError, match="segment_source='given'"):
        processor(images=scenes["image"][:1], return_tensors="pt")
    batch = processor(images=scenes["image"][:1], segments=[annotation], return_tensors="pt")
    assert np.array_equal(batch["segment_ids"][0].numpy(), annotation)
    with pytest.raises(ValueError, match="one id map per image: 2 images but 1"):
        processor(images=scenes["image"][:2], segments=[annotation], return_tensors="pt")
    with pytest.raises(ValueError, match=r"outside \[-1, 8\)"):
        processor(images=scenes["image"][:1], segments=[annotation + 8], return_tensors="pt")
    with pytest.raises(ValueError, match="every id is -1"):
        processor(images=scenes["image"][:1], segments=[np.full_like(annotation, -1)], return_tensors="pt")
    with pytest.raises(ValueError, match="Unknown segment_source 'panoptic'"):
        GshnImageProcessor(segment_source="panoptic")


def test_segments_follow_resizing_and_pairs(scenes, tokenizer):
    """Segments are computed at the image's own size and resized with nearest neighbours to the output size;
    NLVR2 pairs give (batch, 2, H, W)."""
    processor = make_processor(tokenizer, size=192)
    pairs = [[scenes["image"][0], scenes["image"][1]]]
    batch = processor(images=pairs, text=["both images have a circle"], return_tensors="pt")
    assert batch["pixel_values"].shape == (1, 2, 3, 192, 192) and batch["segment_ids"].shape == (1, 2, 192, 192)
    native = make_processor(tokenizer)(images=scenes["image"][:1], return_tensors="pt")["segment_ids"][0]
    torch.testing.assert_close(batch["segment_ids"][0, 0, ::2, ::2], native)


def test_processor_saves_its_segment_settings(tmp_path, tokenizer):
    make_processor(tokenizer, "superpixels", max_segments=5).save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert type(loaded) is GshnProcessor
    assert (loaded.image_processor.segment_source, loaded.image_processor.max_segments) == ("superpixels", 5)


def test_panoptic_model_inside_the_processor(scenes, tokenizer, tiny_mask2former):
    """A randomly initialised Mask2Former (built from a local config) computes the segments; thresholds of 0 keep
    its arbitrary masks, so the contract is what is checked."""
    model, image_processor = tiny_mask2former
    processor = make_processor(tokenizer).use_panoptic_model(model, image_processor, threshold=0.0,
                                                             mask_threshold=0.0, overlap_mask_area_threshold=0.0)
    batch = processor(images=scenes["image"][:2], text=scenes["question"][:2], return_tensors="pt")
    ids = batch["segment_ids"]
    assert ids.shape == (2, 96, 96) and ids.max() < 8 and (ids >= 0).any(dim=(1, 2)).all()
    assert processor.use_panoptic_model(None, None).segmenter is None


def test_collator_reads_the_panoptic_pngs_when_segments_come_with_the_data(scenes, tokenizer):
    rows = [scenes[index] for index in range(5)]
    given = AshNetsCollator(make_processor(tokenizer, "given"), "vqa", num_labels=len(shape_scenes_answers()))
    computed = AshNetsCollator(make_processor(tokenizer, "pixels"), "vqa", num_labels=len(shape_scenes_answers()))
    first, second = given(rows), computed(rows)
    assert not first["skipped"] and "panoptic" not in first["meta"]
    assert first["inputs"]["segment_ids"].shape == (5, 96, 96)
    for a, b in zip(first["inputs"]["segment_ids"], second["inputs"]["segment_ids"]):
        assert same_partition(a.numpy(), b.numpy())
    broken = {**rows[0], "panoptic": None}
    result = given([broken, rows[1]])
    assert len(result["skipped"]) == 1 and "'panoptic'" in result["skipped"][0].reason


FRESH_PROCESS = textwrap.dedent(
    """
    import sys, torch
    sys.modules["modeling_ashnets"] = None  # the package must not be importable here
    from transformers import AutoModel, AutoModelForVisualQuestionAnswering, AutoProcessor, pipeline
    folder, expected_file, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(threads)  # as the saving process: the same summation order
    expected = torch.load(expected_file)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True, backend="pil")
    batch = processor(images=expected["images"], text=expected["questions"], return_tensors="pt")
    for key, value in expected["batch"].items():
        torch.testing.assert_close(batch[key], value, rtol=0, atol=0)
    vqa = AutoModelForVisualQuestionAnswering.from_pretrained(folder, trust_remote_code=True).eval()
    base = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(vqa).__module__.startswith("transformers_modules"), type(vqa).__module__
    assert (type(vqa).__name__, type(base).__name__) == ("GshnForQuestionAnswering", "GshnModel")
    with torch.no_grad():
        torch.testing.assert_close(vqa(**batch).logits, expected["logits"])
        torch.testing.assert_close(base(**batch).pooler_output, expected["pooler_output"])
    answerer = pipeline("visual-question-answering", model=folder, trust_remote_code=True)
    got = answerer({"image": expected["images"][0], "question": expected["questions"][0]}, top_k=3)
    assert [entry["answer"] for entry in got] == [entry["answer"] for entry in expected["answers"]], got
    torch.testing.assert_close([entry["score"] for entry in got], [entry["score"] for entry in expected["answers"]])
    print("FRESH PROCESS OK", type(processor).__name__, type(vqa).__name__, type(answerer).__name__)
    """
)


def test_remote_code_and_vqa_pipeline_in_a_fresh_process(tmp_path, scenes, tokenizer):
    """A saved GSHN VQA folder loads through AutoModel, AutoModelForVisualQuestionAnswering, AutoProcessor and the
    visual-question-answering pipeline where this package is not importable, with the saving process's outputs."""
    from transformers import pipeline

    answers = shape_scenes_answers()
    torch.manual_seed(0)
    model = GshnForQuestionAnswering(tiny_gshn_config(
        image_size=96, max_segments=8, id2label=dict(enumerate(answers)),
        label2id={answer: index for index, answer in enumerate(answers)})).eval()
    processor = make_processor(tokenizer)
    folder = tmp_path / "checkpoint"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    images = scenes["image"][:2]  # paths
    questions = scenes["question"][:2]
    batch = processor(images=images, text=questions, return_tensors="pt")
    answerer = pipeline("visual-question-answering", model=str(folder), trust_remote_code=True)
    with torch.no_grad():
        expected = {"images": images, "questions": questions, "batch": dict(batch), "logits": model(**batch).logits,
                    "pooler_output": model.ashnets(**batch).pooler_output,
                    "answers": answerer({"image": images[0], "question": questions[0]}, top_k=3)}
    torch.save(expected, tmp_path / "expected.pt")
    (tmp_path / "fresh.py").write_text(FRESH_PROCESS)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run(
        [sys.executable, str(tmp_path / "fresh.py"), str(folder), str(tmp_path / "expected.pt"),
         str(torch.get_num_threads())], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "FRESH PROCESS OK GshnProcessor GshnForQuestionAnswering" in result.stdout


@pytest.mark.parametrize("source", ["pixels", "given"])
def test_vqa_script_trains_gshn_on_the_shape_scenes(tmp_path, monkeypatch, source):
    """`run_vqa.py --preset gshn-tiny --dataset shape-scenes`: a few steps with segments from the pixels or from the
    data's panoptic PNGs; the saved folder loads as GSHN with its processor's segment settings."""
    from examples import run_vqa
    from transformers import AutoModelForVisualQuestionAnswering

    from modeling_ashnets.data.shape_scenes import SHAPE_SCENES_NUM_IMAGES

    monkeypatch.setenv("ASHNETS_SHAPE_SCENES_DIR", str(tmp_path / "scenes"))
    monkeypatch.setitem(SHAPE_SCENES_NUM_IMAGES, "train", 12)  # the default sizes, made small for the test
    monkeypatch.setitem(SHAPE_SCENES_NUM_IMAGES, "test", 6)
    output = tmp_path / "gshn-vqa"
    result = run_vqa.main(["--preset", "gshn-tiny", "--dataset", "shape-scenes", "--segment_source", source,
                           "--snn_time_steps", "2", "--per_device_train_batch_size", "8", "--max_train_steps", "2",
                           "--max_eval_samples", "16", "--output_dir", str(output), "--seed", "0"])
    assert result.global_step == 2 and 0.0 <= result.eval_metrics["eval_accuracy"] <= 1.0
    model = AutoModelForVisualQuestionAnswering.from_pretrained(output)
    processor = AutoProcessor.from_pretrained(output, backend="pil")
    assert type(model) is GshnForQuestionAnswering and model.config.max_segments == 8
    assert processor.image_processor.segment_source == source
    from modeling_ashnets.cli import main as cli

    metrics_file = tmp_path / "m.json"
    assert cli(["evaluate", "--model", str(output), "--dataset", "shape-scenes", "--output", str(metrics_file)]) == 0
    metrics = json.loads(metrics_file.read_text())
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and metrics["eval_samples"] > 0, metrics
    with pytest.raises(SystemExit, match="shape-scenes"):
        cli(["evaluate", "--model", str(output), "--dataset", "vqa-v2"])


def test_exported_entailment_checkpoint_is_served_by_the_handler(tmp_path, scenes, tokenizer):
    """`ashnets export` of a GSHN entailment checkpoint (a head without a pipeline): the exported folder's
    handler loads GSHN's head from its own code and answers JSON payloads."""
    import base64
    import importlib.util

    from modeling_ashnets import GshnForEntailment
    from modeling_ashnets.hub_export import export_checkpoint

    torch.manual_seed(0)
    folder = tmp_path / "ve"
    GshnForEntailment(tiny_gshn_config(image_size=96, max_segments=8)).eval().save_pretrained(folder)
    make_processor(tokenizer).save_pretrained(folder)
    exported = export_checkpoint(str(folder), str(tmp_path / "exported"), "org/gshn-tiny-ve")
    spec = importlib.util.spec_from_file_location("exported_gshn_handler", os.path.join(exported, "handler.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = module.EndpointHandler(exported)
    image = base64.b64encode(open(scenes["image"][0], "rb").read()).decode()
    result = handler({"inputs": {"image": image, "hypothesis": "there are two circles"}})
    assert [entry["label"] for entry in result] == ["entailment", "neutral", "contradiction"]
    assert "GSHN" in open(os.path.join(exported, "README.md"), encoding="utf-8").read()
