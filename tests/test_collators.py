"""The collator: model inputs per task, and bad samples reported and skipped instead of crashing a run."""

import torch

from modeling_ashnets.data.collators import AshNetsCollator


def _vqa_row(image, question="what color is the shape?", answers=("red",)):
    return {"question_id": 1, "image": image, "question": question, "answers": list(answers), "labels": [1, 3],
            "scores": [1.0, 0.3], "answer_type": "other"}


def test_vqa_batch_with_soft_targets_and_meta(processor, easy_vqa_samples):
    collator = AshNetsCollator(processor, "vqa", num_labels=5)
    batch = collator([_vqa_row(easy_vqa_samples[0][0]), _vqa_row(easy_vqa_samples[1][0], "is it blue?")])
    inputs = batch["inputs"]
    assert inputs["pixel_values"].shape == (2, 3, 64, 64)
    assert inputs["input_ids"].shape[0] == 2
    assert inputs["labels"].tolist()[0] == [0.0, 1.0, 0.0, 0.30000001192092896, 0.0]
    assert batch["meta"]["answers"] == [["red"], ["red"]] and batch["skipped"] == []
    # Pixels equal the processor's own.
    expected = processor(images=[easy_vqa_samples[0][0]], text=["x"], return_tensors="pt")["pixel_values"][0]
    assert torch.allclose(inputs["pixel_values"][0], expected)


def test_missing_corrupt_and_empty_samples_are_skipped_and_reported(tmp_path, processor, easy_vqa_samples):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    missing = tmp_path / "missing.png"
    collator = AshNetsCollator(processor, "vqa", num_labels=5)
    good = _vqa_row(easy_vqa_samples[0][0])
    batch = collator([_vqa_row(str(missing)), good, _vqa_row(str(corrupt)), _vqa_row(easy_vqa_samples[1][0], "  ")])
    assert batch["inputs"]["pixel_values"].shape[0] == 1
    reasons = {sample.where: sample.reason for sample in batch["skipped"]}
    assert set(reasons) == {str(missing), str(corrupt), easy_vqa_samples[1][0]}
    assert "does not exist" in reasons[str(missing)]
    assert "Cannot decode" in reasons[str(corrupt)]
    assert "empty" in reasons[easy_vqa_samples[1][0]]
    everything_bad = collator([_vqa_row(str(missing))])
    assert everything_bad["inputs"] is None and len(everything_bad["skipped"]) == 1


def test_entailment_nlvr2_and_bytes_cells(processor, easy_vqa_samples):
    path = easy_vqa_samples[0][0]
    with open(path, "rb") as handle:
        encoded = {"bytes": handle.read(), "path": "in-memory.png"}
    entailment = AshNetsCollator(processor, "entailment")(
        [{"image": encoded, "hypothesis": "there is a shape", "label": 2}, {"image": path, "hypothesis": "x", "label": 0}]
    )
    assert entailment["inputs"]["labels"].tolist() == [2, 0]
    assert torch.allclose(entailment["inputs"]["pixel_values"][0], entailment["inputs"]["pixel_values"][1])
    pair = [easy_vqa_samples[0][0], easy_vqa_samples[1][0]]
    nlvr2 = AshNetsCollator(processor, "nlvr2")([{"images": pair, "sentence": "both are red", "label": 1}])
    assert nlvr2["inputs"]["pixel_values"].shape == (1, 2, 3, 64, 64)


def test_image_cache_returns_the_same_pixels(processor, easy_vqa_samples):
    collator = AshNetsCollator(processor, "entailment", image_cache_size=1)
    rows = [{"image": s[0], "hypothesis": "a shape", "label": 0} for s in easy_vqa_samples[:2]]
    first = collator(rows)["inputs"]["pixel_values"]
    again = collator(rows)["inputs"]["pixel_values"]
    assert torch.equal(first, again) and len(collator._cache) == 1


def test_rows_with_bad_labels_are_skipped_and_reported(processor, easy_vqa_samples):
    image = easy_vqa_samples[0][0]
    collator = AshNetsCollator(processor, "vqa", num_labels=5)
    out_of_range = {**_vqa_row(image), "labels": [1, 7]}
    strings = {**_vqa_row(image), "labels": ["red"], "scores": [1.0]}
    bad_scores = {**_vqa_row(image), "scores": [1.0, 3.0]}
    batch = collator([out_of_range, _vqa_row(image), strings, bad_scores])
    assert batch["inputs"]["labels"].shape == (1, 5)
    reasons = [sample.reason for sample in batch["skipped"]]
    assert reasons[0] == "labels must be a list of answer ids in [0, 5), got [1, 7]"
    assert reasons[1] == "labels must be a list of answer ids in [0, 5), got ['red']"
    assert reasons[2].startswith("scores must be a list of soft scores in [0, 1], one per label")
    entailment = AshNetsCollator(processor, "entailment", num_labels=3)(
        [{"image": image, "hypothesis": "a shape", "label": "entailment"}, {"image": image, "hypothesis": "x", "label": 3}]
    )
    assert entailment["inputs"] is None
    assert [sample.reason for sample in entailment["skipped"]] == [
        "label must be an integer class id [0, 3), got 'entailment'", "label must be an integer class id [0, 3), got 3"
    ]
