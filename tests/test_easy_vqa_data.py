"""The data sets derived from easy-VQA: facts agree with the questions, labels are right and balanced."""

from collections import Counter

import pytest

from modeling_ashnets import ENTAILMENT_LABELS
from modeling_ashnets.data.easy_vqa import (
    EASY_VQA_COLORS,
    EASY_VQA_SHAPES,
    _facts_from_questions,
    _questions,
    easy_vqa_answers,
    easy_vqa_image_facts,
    easy_vqa_question_type,
    load_easy_vqa,
    load_easy_vqa_entailment,
    load_easy_vqa_nlvr2,
    load_easy_vqa_retrieval,
)


@pytest.fixture(scope="module")
def facts():
    return {fact.image_id: fact for fact in easy_vqa_image_facts("test")}


def test_vqa_rows_have_the_vqa_v2_columns():
    rows = load_easy_vqa("test")
    assert len(rows) == 9673
    first = rows[0]
    answers = easy_vqa_answers()
    assert first["question"] == "what is the red shape?" and first["answers"] == ["triangle"]
    assert answers[first["labels"][0]] == "triangle" and first["scores"] == [1.0]
    assert first["answer_type"] == "shape" and first["image"].endswith("0.png")
    assert Counter(rows["answer_type"])["yes/no"] > 0.7 * len(rows)
    kinds = Counter(zip(rows["question_type"], rows["answer_type"]))
    assert set(kinds) == {("color", "color"), ("shape", "shape"), ("yes/no color", "yes/no"), ("yes/no shape", "yes/no")}
    assert easy_vqa_question_type("What is the blue shape?") == "shape"
    assert easy_vqa_question_type("what color is the circle?") == "color"
    assert easy_vqa_question_type("is there not a triangle in the image?") == "yes/no shape"
    assert easy_vqa_question_type("does the image not contain a teal shape?") == "yes/no color"
    with pytest.raises(ValueError, match="splits"):
        load_easy_vqa("validation")


def test_pixel_facts_agree_with_what_the_questions_say(facts):
    from_questions = _facts_from_questions(*_questions("test"))
    assert len(facts) == 1000
    checked = 0
    for image_id, said in from_questions.items():
        for attribute, value in said.items():
            assert getattr(facts[image_id], attribute) == value, (image_id, attribute)
            checked += 1
    assert checked > 1800  # nearly every image has its colour and shape named by some question
    assert {fact.color for fact in facts.values()} == set(EASY_VQA_COLORS)
    assert {fact.shape for fact in facts.values()} == set(EASY_VQA_SHAPES)


def test_retrieval_gallery_has_one_image_per_caption(facts):
    gallery = load_easy_vqa_retrieval("test")
    first_captions = [captions[0] for captions in gallery["captions"]]
    assert len(set(first_captions)) == len(gallery) > 200
    row = gallery[0]
    fact = facts[row["image_id"]]
    assert row["captions"][0] == f"a {fact.size} {fact.color} {fact.shape} at the {fact.position}"
    pairs = load_easy_vqa_retrieval("train", pairs=True, max_samples=6)
    assert pairs.column_names == ["image_id", "image", "caption"] and len(pairs) == 6


def test_entailment_labels_follow_the_image(facts):
    rows = load_easy_vqa_entailment("test")
    assert Counter(rows["label"]) == {0: 1000, 1: 1000, 2: 1000}
    for row in rows.select(range(300)):
        fact = facts[int(row["pair_id"].split("-")[1])]
        words = row["hypothesis"].split()
        named_colors = [w for w in words if w in EASY_VQA_COLORS]
        named_shapes = [w for w in words if w in EASY_VQA_SHAPES]
        true = all(c == fact.color for c in named_colors) and all(s == fact.shape for s in named_shapes)
        extra = not row["hypothesis"].endswith(("shape", *EASY_VQA_SHAPES))
        expected = "contradiction" if not true else "neutral" if extra else "entailment"
        assert ENTAILMENT_LABELS[row["label"]] == expected, row


def test_nlvr2_statements_are_true_exactly_when_labelled(facts):
    rows = load_easy_vqa_nlvr2("test", num_samples=400)
    assert Counter(rows["label"]) == {0: 200, 1: 200}
    by_path = {fact.path: fact for fact in facts.values()}
    for row in rows:
        left, right = (by_path[path] for path in row["images"])
        sentence = row["sentence"]
        value = sentence.split()[-2] if sentence.endswith(" shape") else sentence.split()[-1]
        attribute = "color" if sentence.endswith(" shape") else "shape"
        has = [getattr(left, attribute) == value, getattr(right, attribute) == value]
        truth = {"both": all(has), "exactly": sum(has) == 1, "neither": not any(has)}.get(sentence.split()[0])
        if truth is None:  # "the left/right image contains ..."
            truth = has[0] if sentence.startswith("the left") else has[1]
        assert truth == bool(row["label"]), row
