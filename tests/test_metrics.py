import pytest
import torch

from modeling_ashnets.metrics import accuracy, normalize_vqa_answer, retrieval_recall_at_k, vqa_accuracy, vqa_answer_score


def test_vqa_answer_normalisation():
    assert normalize_vqa_answer("The Red Circle!") == "red circle"
    assert normalize_vqa_answer("two") == "2"
    assert normalize_vqa_answer("3.5") == "3.5"


def test_vqa_accuracy_follows_the_official_rule():
    ten = ["yes"] * 2 + ["no"] * 8
    # Official: mean over 10 leave-one-out subsets of min(matches / 3, 1): 2 subsets see 1 "yes", 8 see 2.
    assert vqa_answer_score("yes", ten) == pytest.approx((2 * (1 / 3) + 8 * (2 / 3)) / 10)
    assert vqa_answer_score("no", ten) == 1.0
    assert vqa_answer_score("maybe", ten) == 0.0
    assert vqa_accuracy(["circle", "red"], [["circle"], ["blue"]]) == 0.5
    with pytest.raises(ValueError, match="2 predictions but 1 answer lists"):
        vqa_accuracy(["a", "b"], [["a"]])


def test_retrieval_recall_in_both_directions():
    # 3 images, 2 captions each (texts 0,1 -> image 0; 2,3 -> image 1; 4,5 -> image 2).
    owner = [0, 0, 1, 1, 2, 2]
    similarity = torch.tensor(
        [
            [0.9, 0.1, 0.8, 0.0, 0.0, 0.5],  # image 0: its caption 0 is first
            [0.0, 0.0, 0.1, 0.2, 0.9, 0.0],  # image 1: its best caption (3) is second
            [0.0, 0.7, 0.0, 0.0, 0.1, 0.0],  # image 2: caption 1 (wrong) first, then 4 (right)
        ]
    )
    result = retrieval_recall_at_k(similarity, owner, ks=(1, 2))
    assert result["tr_r@1"] == pytest.approx(1 / 3)
    assert result["tr_r@2"] == pytest.approx(1.0)
    # text -> image, best image per text: 0, 2, 0, 1, 1, 0 -> hits@1 for texts 0 and 3 only
    assert result["ir_r@1"] == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="one image index per text"):
        retrieval_recall_at_k(similarity, owner[:5])


def test_accuracy():
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    with pytest.raises(ValueError, match="must be equal, non-empty shapes"):
        accuracy([0, 1], [0])
