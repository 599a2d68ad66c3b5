"""The metrics load as local 🤗 evaluate metrics (offline) and agree with the plain functions."""

import evaluate
import pytest

from modeling_ashnets.metrics import metric_path, retrieval_recall_at_k


def test_vqa_accuracy_metric():
    metric = evaluate.load(metric_path("vqa_accuracy"))
    result = metric.compute(predictions=["yes", "red"], references=[["yes"] * 3 + ["no"] * 7, ["blue"]])
    assert result == {"vqa_accuracy": pytest.approx(0.45)}  # "yes" by 3 of 10 annotators scores 0.9


def test_retrieval_and_accuracy_metrics():
    similarity = [[0.9, 0.3, 0.2], [0.3, 0.2, 0.8]]  # image 0 owns text 0, image 1 owns texts 1 and 2 (text 1 ranks image 0 first)
    metric = evaluate.load(metric_path("retrieval_recall"))
    result = metric.compute(predictions=similarity, references=[[0], [1, 2]], ks=(1,))
    assert result == pytest.approx(retrieval_recall_at_k(similarity, [0, 1, 1], ks=(1,)))
    assert result["tr_r@1"] == 1.0 and result["ir_r@1"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="belongs to no image"):
        metric.compute(predictions=similarity, references=[[0], [1]])
    accuracy = evaluate.load(metric_path("classification_accuracy"))
    assert accuracy.compute(predictions=[0, 1, 2, 2], references=[0, 1, 1, 2]) == {"accuracy": 0.75}
    with pytest.raises(ValueError, match="Unknown metric"):
        metric_path("bleu")
