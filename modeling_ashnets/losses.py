"""Every training objective of ASH-Nets in one place (README "Model"; docs/model.md section 3): image-text contrast
(ITC), image-text matching on hard negatives (ITM), masked language and visual modelling (MLM, MVM) and the
spiking-to-text alignment (STUA); and SpikeCLIP's distillation losses (cosine distillation, dual CE + KL).

Why one module: pre-training and retrieval fine-tuning share the contrastive and matching losses. Written once,
both gather their negatives from every process and treat captions with the same tokens as positives of each other
by one rule. The heads compute features and hand them over; nothing here runs a model, and nothing here branches on
a tensor's values (on a GPU such a branch waits for the device).
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn


__all__ = [
    "caption_keys",
    "contrastive_loss",
    "cosine_distillation_loss",
    "dual_distillation_loss",
    "DualDistillationLoss",
    "gather_with_grad",
    "hardest_negative_triplet_loss",
    "image_text_matching_loss",
    "info_nce",
    "mask_tokens_for_mlm",
    "masked_prediction_loss",
    "MlmMasking",
    "positive_pairs",
    "sample_hard_negatives",
]


def gather_with_grad(tensor: torch.Tensor, grad: bool = True) -> tuple[torch.Tensor, int]:
    """All processes' `tensor`s concatenated along dim 0, with gradients flowing back to each process's own part
    (contrastive losses need the negatives of every process; `grad=False` for labels), and where this process's rows
    start. Processes may hold different numbers of rows (a batch that lost bad samples). A no-op outside
    torch.distributed."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return tensor, 0
    world_size = torch.distributed.get_world_size()
    if world_size == 1:
        return tensor, 0
    sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(world_size)]
    torch.distributed.all_gather(sizes, torch.tensor([tensor.shape[0]], device=tensor.device))
    sizes = [int(size) for size in sizes]
    padded = nn.functional.pad(tensor, (0, 0) * (tensor.dim() - 1) + (0, max(sizes) - tensor.shape[0]))
    if grad:
        from torch.distributed.nn.functional import all_gather

        parts = all_gather(padded)
    else:
        parts = [torch.empty_like(padded) for _ in range(world_size)]
        torch.distributed.all_gather(parts, padded)
    rank = torch.distributed.get_rank()
    return torch.cat([part[:size] for part, size in zip(parts, sizes)], dim=0), sum(sizes[:rank])


def info_nce(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each row of `logits` (queries x candidates) against the uniform distribution over its
    positive candidates (`positives`, bool, same shape; every row needs at least one, which the callers' pairs
    guarantee: a caption is always a positive of its own image)."""
    targets = positives.to(logits.dtype)
    return nn.functional.cross_entropy(logits, targets / targets.sum(dim=1, keepdim=True))


def caption_keys(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """One integer per caption, equal for equal token sequences whatever their padding: a polynomial hash modulo
    2**55 (two of a batch's captions collide with odds of about batch**2 / 2**56), so that processes compare captions
    by exchanging one number each."""
    real = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    key = torch.zeros(input_ids.shape[0], dtype=torch.long, device=input_ids.device)
    for position in range(input_ids.shape[1]):
        key = torch.where(real[:, position], (key * 31 + input_ids[:, position]) % 2**55, key)
    return key


def positive_pairs(keys: torch.Tensor) -> torch.Tensor:
    """(batch, batch) bool: pair (i, j) is a positive when caption i and caption j are the same (`caption_keys`)."""
    return keys[:, None] == keys[None, :]


def contrastive_loss(image_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: torch.Tensor,
                     keys: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of matched pairs (image i, caption i), as CLIP's: normalised embeddings, scaled by
    `logit_scale` (already exponentiated), negatives from every process (gathered with gradient), and captions with
    the same `keys` positives of each other (a repeated caption is not a wrong answer)."""
    all_images, offset = gather_with_grad(image_embeds)
    all_texts, _ = gather_with_grad(text_embeds)
    all_keys, _ = gather_with_grad(keys, grad=False)
    rows = slice(offset, offset + image_embeds.shape[0])
    positives = positive_pairs(all_keys)[rows]
    return (info_nce(logit_scale * all_images[rows] @ all_texts.t(), positives)
            + info_nce(logit_scale * all_texts[rows] @ all_images.t(), positives)) / 2


def hardest_negative_triplet_loss(similarity: torch.Tensor, positives: torch.Tensor,
                                  margin: float = 0.2) -> torch.Tensor:
    """GSHN's contrastive pairs, read as VSE++'s max-violation triplet loss (Faghri et al. 2018): each matched pair
    (image i, caption i) must beat its hardest negative caption and its hardest negative image by `margin` in
    cosine `similarity` (images x captions). Pairs marked in `positives` (equal captions) are never negatives; an
    image with no negative in the batch adds nothing."""
    matched = similarity.diagonal()
    negatives = similarity.masked_fill(positives, float("-inf"))
    hardest_caption, hardest_image = negatives.amax(dim=1), negatives.amax(dim=0)
    violations = (margin - matched + hardest_caption).clamp(min=0) + (margin - matched + hardest_image).clamp(min=0)
    return violations.mean()


def image_text_matching_loss(
    logits_per_image: torch.Tensor,
    positives: torch.Tensor,
    match_logits: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """ITM logits and loss on the positive pairs and, for each image, a hard negative text and, for each text, a hard
    negative image, sampled by contrastive similarity (`logits_per_image`, this process's batch). `match_logits(
    text_index, image_index)` scores the pairs (text_index[k], image_index[k]) of the batch (the head runs its fused
    pass there)."""
    batch_size = logits_per_image.shape[0]
    negative_text, image_has_negative = sample_hard_negatives(logits_per_image, positives)
    negative_image, text_has_negative = sample_hard_negatives(logits_per_image.t(), positives)
    rows = torch.arange(batch_size, device=logits_per_image.device)
    text_index = torch.cat([rows, negative_text, rows])
    image_index = torch.cat([rows, rows, negative_image])
    keep = torch.cat([torch.ones_like(image_has_negative), image_has_negative, text_has_negative])
    itm_logits = match_logits(text_index, image_index)
    labels = torch.cat([rows.new_ones(batch_size), rows.new_zeros(2 * batch_size)])
    # Pairs without a negative (every caption of the batch alike) count zero; the mean is over the others.
    losses = nn.functional.cross_entropy(itm_logits, labels, reduction="none")
    return itm_logits, (losses * keep).sum() / keep.sum().clamp_min(1)


def masked_prediction_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """MLM's and MVM's loss: cross-entropy over the masked positions (labels != -100); 0 (with a graph) when nothing
    was masked."""
    total = nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), reduction="sum")
    return total / (labels != -100).sum().clamp_min(1)


def sample_hard_negatives(logits: torch.Tensor, positives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row, one negative candidate sampled in proportion to its softmaxed similarity among the rows'
    non-positive candidates; also whether the row had any negative at all."""
    with torch.no_grad():
        weights = (logits.float().softmax(dim=1) + 1e-12).masked_fill(positives, 0)
        has_negative = ~positives.all(dim=1)
        weights = weights.masked_fill(~has_negative.unsqueeze(1), 1.0)  # any index; the caller drops these rows
        return torch.multinomial(weights, 1).squeeze(1), has_negative


class MlmMasking(NamedTuple):
    input_ids: torch.Tensor  # (batch, length): the caption with its chosen tokens masked
    labels: torch.Tensor  # (batch, length): the original ids where chosen, -100 elsewhere
    positions: torch.Tensor  # (batch, k): where the prediction head looks; chosen positions first in each row


def mask_tokens_for_mlm(
    input_ids: torch.Tensor,
    special_tokens_mask: torch.Tensor,
    vocab_size: int,
    mask_token_id: int,
    probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> MlmMasking:
    """BERT masking with a fixed count per caption, as BERT's original data preparation: round(probability x n) of
    a caption's n non-special tokens (at least one), at random; chosen tokens become `[MASK]` (80 %), a random token (10 %) or stay (10 %).

    A fixed count per caption bounds the chosen tokens by k = round(probability x (length - 2)), a number the shape
    gives (every caption has at least `[CLS]` and `[SEP]` among its special tokens; a caption with fewer gets at
    most k): the prediction head then runs on k positions per caption instead of all of them (over a 30k-word
    vocabulary, most of a pre-training step), without a device sync to count them."""
    maskable = ~special_tokens_mask.bool()
    k = max(1, round(probability * (maskable.shape[1] - 2)))
    scores = torch.rand(maskable.shape, generator=generator, device=input_ids.device).masked_fill(~maskable, -1.0)
    positions = scores.topk(min(k, maskable.shape[1]), dim=1).indices  # maskable positions first, in random order
    count = (maskable.sum(dim=1) * probability).round().clamp(1, k)
    first = torch.arange(k, device=input_ids.device) < count[:, None]
    chosen = torch.zeros_like(maskable).scatter(1, positions, first & maskable.gather(1, positions))
    labels = input_ids.masked_fill(~chosen, -100)
    draw = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    masked = input_ids.masked_fill(chosen & (draw < 0.8), mask_token_id)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, device=input_ids.device)
    replace = chosen & (draw >= 0.8) & (draw < 0.9)
    masked = torch.where(replace, random_ids, masked)
    return MlmMasking(masked, labels, positions)


def cosine_distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of 1 - cos(student_i, teacher_i): SpikeCLIP's text distillation and image alignment.
    Why cosine, not MSE: zero-shot classification only compares directions, so the student need only point where the
    teacher points; the norm of its (spiking, temporally weighted) features stays free."""
    return (1.0 - nn.functional.cosine_similarity(student.float(), teacher.float(), dim=-1)).mean()


class DualDistillationLoss(NamedTuple):
    loss: torch.Tensor  # ce_loss + kl_weight * kl_loss
    ce_loss: torch.Tensor
    kl_loss: torch.Tensor


def dual_distillation_loss(logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor,
                           kl_weight: float = 1.0, temperature: float = 1.0) -> DualDistillationLoss:
    """SpikeCLIP's dual-loss fine-tuning over the classes (`logits`, `teacher_logits`: (batch, classes)):
    cross-entropy against `labels`, plus `kl_weight` x KL(teacher || student) of both distributions softened by
    `temperature`, times temperature**2 (Hinton et al., so that the soft term's gradients keep their scale whatever
    the temperature). Why both: the cross-entropy fits the labels; the KL keeps the student's ranking of the other
    classes close to the teacher's, which regularises a small student trained on few images."""
    logits, teacher_logits = logits.float(), teacher_logits.float()
    ce_loss = nn.functional.cross_entropy(logits, labels)
    kl_loss = nn.functional.kl_div(
        nn.functional.log_softmax(logits / temperature, dim=-1),
        nn.functional.log_softmax(teacher_logits / temperature, dim=-1),
        reduction="batchmean", log_target=True,
    ) * temperature**2
    return DualDistillationLoss(ce_loss + kl_weight * kl_loss, ce_loss, kl_loss)
