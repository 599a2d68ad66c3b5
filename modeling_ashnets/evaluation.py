"""Evaluation loops of the four downstream tasks: model + data -> the metrics of `metrics.py`, keys prefixed `eval_`.

Why here: the fine-tuning scripts, the demo and the benchmarks must score a model the same way.
"""

import re
from collections import defaultdict

import torch
from torch.utils.data import DataLoader

from .metrics import accuracy, retrieval_recall_at_k, vqa_answer_score
from .tasks import get_task, resolve


__all__ = ["evaluate_classification", "evaluate_retrieval", "evaluate_vqa", "evaluate_task"]


def _key(name: str) -> str:
    """A metric-name-safe form of a category ("yes/no" -> "yes_no")."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower() or "none"


def _batches(loader: DataLoader, device):
    """Non-empty batches of an AshNetsCollator loader, on `device`, and the number of skipped samples."""
    for batch in loader:
        inputs = batch["inputs"]
        if inputs is None:
            yield None, batch
            continue
        yield {name: value.to(device) for name, value in inputs.items()}, batch


@torch.no_grad()
def evaluate_vqa(model, loader: DataLoader) -> dict[str, float]:
    """VQA accuracy (official rule against the human answers; exact match when there is one), overall and per
    `answer_type`. Questions without human answers (test splits) are not scored."""
    model.eval()
    id2label = model.config.id2label
    scores, by_type, skipped = [], defaultdict(list), 0
    for inputs, batch in _batches(loader, model.device):
        skipped += len(batch["skipped"])
        if inputs is None:
            continue
        inputs.pop("labels", None)
        predictions = model(**inputs).logits.argmax(dim=-1).tolist()
        kinds = batch["meta"].get("answer_type") or [""] * len(predictions)
        for prediction, answers, kind in zip(predictions, batch["meta"]["answers"], kinds):
            if answers:
                score = vqa_answer_score(id2label[prediction], answers)
                scores.append(score)
                by_type[kind].append(score)
    if not scores:
        raise ValueError("No evaluation question has human answers to score against.")
    metrics = {"eval_accuracy": sum(scores) / len(scores), "eval_samples": len(scores), "eval_skipped_samples": skipped}
    for kind, values in sorted(by_type.items()):
        if kind:
            metrics[f"eval_accuracy_{_key(kind)}"] = sum(values) / len(values)
    return metrics


@torch.no_grad()
def evaluate_classification(model, loader: DataLoader) -> dict[str, float]:
    """Accuracy of a single-label head (entailment, NLVR2), overall and per class."""
    model.eval()
    predictions, references, skipped = [], [], 0
    for inputs, batch in _batches(loader, model.device):
        skipped += len(batch["skipped"])
        if inputs is None:
            continue
        labels = inputs.pop("labels")
        predictions.append(model(**inputs).logits.argmax(dim=-1).cpu())
        references.append(labels.cpu())
    if not predictions:
        raise ValueError("The evaluation set has no usable samples.")
    predictions, references = torch.cat(predictions), torch.cat(references)
    metrics = {"eval_accuracy": accuracy(predictions, references), "eval_samples": len(references),
               "eval_skipped_samples": skipped}
    for label, name in model.config.id2label.items():
        chosen = references == int(label)
        if chosen.any():
            metrics[f"eval_accuracy_{_key(str(name))}"] = accuracy(predictions[chosen], references[chosen])
    return metrics


@torch.no_grad()
def evaluate_retrieval(model, processor, dataset, batch_size: int = 64, rerank_k: int = 0) -> dict[str, float]:
    """Recall@1/5/10 in both directions over a gallery (rows with `image` and `captions`, as the Karpathy loader's).

    Every image is scored against every caption by the contrastive similarity; with `rerank_k > 0` the best
    `rerank_k` candidates of each query are re-scored by the image-text matching head (ITM), the usual protocol.
    Images that cannot be read are reported and left out with their captions.
    """
    from .data.collators import decode_image_cell

    model.eval()
    device = model.device
    images, captions, owners, skipped = [], [], [], 0
    for row in dataset:
        try:
            image = decode_image_cell(row["image"])
        except (ValueError, OSError) as error:
            skipped += 1
            print(f"skipping retrieval image {row['image']!r}: {error}")
            continue
        usable = [caption for caption in row["captions"] if caption.strip()]
        if not usable:
            skipped += 1
            continue
        captions.extend(usable)
        owners.extend([len(images)] * len(usable))
        images.append(image)
    if not images:
        raise ValueError("The retrieval gallery has no readable images.")
    base = model.ashnets
    image_embeds, text_embeds, pixels = [], [], []
    for start in range(0, len(images), batch_size):
        batch = processor.image_processor(images[start : start + batch_size], return_tensors="pt")["pixel_values"]
        pixels.append(batch)
        image_embeds.append(base(pixel_values=batch.to(device)).image_embeds)
    tokens = dict(processor(text=captions, return_tensors="pt"))  # once, for the embeddings and the re-ranking
    for start in range(0, len(captions), batch_size):
        batch = {name: value[start : start + batch_size].to(device) for name, value in tokens.items()}
        text_embeds.append(base(**batch).text_embeds)
    similarity = (torch.cat(image_embeds) @ torch.cat(text_embeds).t()).float().cpu()
    metrics = _recalls(similarity, similarity, owners)
    if rerank_k > 0:
        pixels = torch.cat(pixels)
        image_to_text = _rerank(model, tokens, similarity, pixels, rerank_k)
        text_to_image = _rerank(model, tokens, similarity.t(), pixels, rerank_k, texts_are_queries=True)
        metrics = _recalls(image_to_text, text_to_image.t(), owners)
    return {**metrics, "eval_images": len(images), "eval_texts": len(captions), "eval_skipped_samples": skipped}


def _recalls(image_to_text: torch.Tensor, text_to_image: torch.Tensor, owners: list[int]) -> dict[str, float]:
    """Image->text recalls from one (images x texts) matrix, text->image recalls from another."""
    forward = retrieval_recall_at_k(image_to_text, owners)
    backward = forward if text_to_image is image_to_text else retrieval_recall_at_k(text_to_image, owners)
    metrics = {f"eval_{k}": v for k, v in forward.items() if k.startswith("tr_")}
    metrics.update({f"eval_{k}": v for k, v in backward.items() if k.startswith("ir_")})
    metrics["eval_r_mean"] = sum(metrics.values()) / len(metrics)
    return metrics


def _rerank(model, tokens, scores, pixels, k, texts_are_queries=False) -> torch.Tensor:
    """Scores with each query's top-k candidates replaced by ITM match probabilities (placed above the rest)."""
    reranked = scores.clone() - 2.0  # cosine similarities lie in [-1, 1]; ITM probabilities in [0, 1]
    top = scores.topk(min(k, scores.shape[1]), dim=1).indices
    for query in range(scores.shape[0]):
        candidates = top[query].tolist()
        if texts_are_queries:
            text_ids, image_ids = [query] * len(candidates), candidates
        else:
            text_ids, image_ids = candidates, [query] * len(candidates)
        logits = model.match_logits(
            pixel_values=pixels[image_ids].to(model.device),
            **{name: value[text_ids].to(model.device) for name, value in tokens.items()},
        )
        reranked[query, candidates] = logits.float().softmax(dim=-1)[:, 1].cpu()
    return reranked


def evaluate_task(task: str, model, processor, dataset, collator, batch_size: int, rerank_k: int = 0) -> dict:
    """The evaluation of `task` (its `TaskSpec.evaluator`) on a data set."""
    spec = get_task(task)
    if spec.evaluator is None:
        raise ValueError(f"The {task!r} task has no evaluation.")
    evaluator = resolve(spec.evaluator)
    if spec.evaluates_gallery:
        return evaluator(model, processor, dataset, batch_size=batch_size, rerank_k=rerank_k)
    return evaluator(model, DataLoader(dataset, batch_size=batch_size, collate_fn=collator))

