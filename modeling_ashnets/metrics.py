"""Downstream metrics as plain functions (nothing to download): VQA accuracy, retrieval recall@K, accuracy."""

import os
import re
from collections.abc import Sequence

import torch


__all__ = ["metric_path", "normalize_vqa_answer", "vqa_accuracy", "vqa_answer_score", "retrieval_recall_at_k", "accuracy"]

_NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}
_ARTICLES = {"a", "an", "the"}
_PUNCTUATION = re.compile(r"[;/\[\]\"{}()=+\\_\-><@`,?!*#%^&$~|']")
_PERIOD = re.compile(r"(?<!\d)\.(?!\d)")


def normalize_vqa_answer(answer: str) -> str:
    """The VQA evaluation's answer normalisation: lower case, punctuation and articles dropped, number words
    as digits (a simplified form of the official script's rules)."""
    answer = _PERIOD.sub("", _PUNCTUATION.sub("", answer.lower().replace("\n", " ").replace("\t", " ")))
    words = [_NUMBER_WORDS.get(word, word) for word in answer.split() if word not in _ARTICLES]
    return " ".join(words)


def vqa_answer_score(prediction: str, human_answers: Sequence[str]) -> float:
    """Official VQA accuracy of one prediction: the mean, over the 10 leave-one-annotator-out subsets, of
    min(#matching answers in the subset / 3, 1). With fewer than 10 annotators the same rule is applied to all."""
    if len(human_answers) == 0:
        raise ValueError("A question needs at least one human answer to be scored.")
    prediction = normalize_vqa_answer(prediction)
    answers = [normalize_vqa_answer(a) for a in human_answers]
    matches = [a == prediction for a in answers]
    if len(answers) == 1:
        return float(matches[0])
    total = sum(matches)
    return sum(min((total - m) / 3.0, 1.0) for m in matches) / len(answers)


def vqa_accuracy(predictions: Sequence[str], human_answers: Sequence[Sequence[str]]) -> float:
    """Mean VQA accuracy in [0, 1]; `human_answers[i]` holds question i's annotator answers (10 in VQA v2,
    one in easy-VQA, where the metric is plain exact match)."""
    if len(predictions) != len(human_answers):
        raise ValueError(f"{len(predictions)} predictions but {len(human_answers)} answer lists.")
    if len(predictions) == 0:
        raise ValueError("No predictions to score.")
    return sum(vqa_answer_score(p, a) for p, a in zip(predictions, human_answers)) / len(predictions)


def retrieval_recall_at_k(
    similarity: torch.Tensor, text_to_image: Sequence[int], ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """Recall@K in both directions from an (images x texts) similarity matrix.

    `text_to_image[j]` is the index of text j's image (COCO and Flickr30K have 5 captions per image).
    Image-to-text retrieval counts a hit when any of the image's captions is in the top K ("tr_r@K"); text-to-image
    when the caption's image is ("ir_r@K"). Values are in [0, 1].
    """
    similarity = torch.as_tensor(similarity, dtype=torch.float32)
    num_images, num_texts = similarity.shape
    owner = torch.as_tensor(text_to_image, dtype=torch.long)
    if owner.shape != (num_texts,):
        raise ValueError(f"text_to_image needs one image index per text ({num_texts}), got shape {tuple(owner.shape)}.")
    if num_texts == 0 or owner.min() < 0 or owner.max() >= num_images:
        raise ValueError(f"text_to_image must index the {num_images} images.")
    if not torch.isfinite(similarity).all():
        raise ValueError("The similarity matrix contains NaN or infinite values.")
    results = {}
    image_ranks = similarity.argsort(dim=1, descending=True)  # texts ranked for each image
    text_ranks = similarity.t().argsort(dim=1, descending=True)  # images ranked for each text
    # Rank of the best-ranked correct caption of each image, and of the correct image of each text.
    correct_caption = owner[image_ranks] == torch.arange(num_images)[:, None]
    best_caption_rank = torch.where(correct_caption.any(dim=1), correct_caption.float().argmax(dim=1), num_texts)
    image_rank_of_text = (text_ranks == owner[:, None]).float().argmax(dim=1)
    has_caption = correct_caption.any(dim=1)
    for k in ks:
        results[f"tr_r@{k}"] = float((best_caption_rank[has_caption] < k).float().mean())
        results[f"ir_r@{k}"] = float((image_rank_of_text < k).float().mean())
    results["r_mean"] = sum(results.values()) / len(results)
    return results


def accuracy(predictions: Sequence[int] | torch.Tensor, references: Sequence[int] | torch.Tensor) -> float:
    """Fraction of predictions equal to their reference (entailment, NLVR2)."""
    predictions, references = torch.as_tensor(predictions), torch.as_tensor(references)
    if predictions.shape != references.shape or predictions.numel() == 0:
        raise ValueError(
            f"predictions {tuple(predictions.shape)} and references {tuple(references.shape)} must be equal, non-empty shapes."
        )
    return float((predictions == references).float().mean())


LOCAL_METRICS = ("vqa_accuracy", "retrieval_recall", "classification_accuracy")


def metric_path(name: str) -> str:
    """Path of this package's metric script `name` for `evaluate.load(...)`, which works offline (the Hub's
    canonical metrics do not)."""
    if name not in LOCAL_METRICS:
        raise ValueError(f"Unknown metric {name!r}; this package has {LOCAL_METRICS}.")
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "evaluate_metrics", f"{name}.py")
