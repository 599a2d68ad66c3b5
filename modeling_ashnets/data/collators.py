"""Rows of a task's data set -> model inputs, with bad samples reported and dropped instead of crashing a run.

Why: real data sets have missing files, truncated JPEGs and empty captions. A training run over a stream must not die
on one of them, and nothing should be dropped silently: every skipped sample comes back in `batch["skipped"]` with
the image path (or row) and the reason, and the training loop counts them. Columns the model does not take (the human
answers, question types, ids) travel alongside in `batch["meta"]` for the evaluation.
"""

from collections import OrderedDict
from dataclasses import dataclass

import torch
from PIL import Image

from ..image_inputs import to_rgb_image
from ..segments import read_coco_panoptic
from ..tasks import TASKS, get_task


__all__ = ["TASK_COLUMNS", "AshNetsCollator", "SkippedSample", "decode_image_cell"]

# What the image processors give per image: the pixels, and GSHN's segments.
IMAGE_INPUT_NAMES = ("pixel_values", "segment_ids")
# The column of COCO panoptic PNG paths (one per image) that GSHN reads when segments come with the data.
SEGMENTS_COLUMN = "panoptic"

# The image column and the text column of each task's rows (see the loaders of this package).
TASK_COLUMNS = {name: (task.image_column, task.text_column) for name, task in TASKS.items()}


@dataclass(frozen=True)
class SkippedSample:
    where: str  # the image path, or a description of the row
    reason: str


def decode_image_cell(cell) -> Image.Image:
    """An image as a data set holds it (a path, `{"bytes", "path"}` from `datasets.Image(decode=False)`, raw bytes or
    a PIL image) -> checked RGB PIL image. Raises with the path in the message when it is missing or unreadable."""
    if isinstance(cell, dict):
        data, path = cell.get("bytes"), cell.get("path")
        if data:
            try:
                return to_rgb_image(data)
            except ValueError as error:
                raise ValueError(f"{path or 'image bytes'}: {error}") from error
        if path:
            return to_rgb_image(path)
        raise ValueError("The image cell holds neither bytes nor a path.")
    return to_rgb_image(cell)


def _cell_key(cell) -> str | None:
    """A cache key for an image cell: its path when it has one."""
    if isinstance(cell, str):
        return cell
    if isinstance(cell, dict) and cell.get("path") and not cell.get("bytes"):
        return cell["path"]
    return None


def _describe(cell) -> str:
    if isinstance(cell, str):
        return cell
    if isinstance(cell, dict) and cell.get("path"):
        return str(cell["path"])
    if isinstance(cell, (bytes, bytearray)):
        return f"<{len(cell)} bytes>"
    return f"<{type(cell).__name__}>"


class AshNetsCollator:
    """`collate(rows)` -> `{"inputs": model inputs or None, "meta": other columns, "skipped": [SkippedSample]}`.

    `inputs` holds `input_ids`, `attention_mask`, `token_type_ids`, `pixel_values` ((B, 2, C, H, W) for NLVR2), GSHN's
    `segment_ids` ((B, H, W); from the image processor, or read from the rows' `segments_column` of COCO panoptic
    PNGs when the image processor's `segment_source` is "given") and the labels the task has (its `TaskSpec.labels`):
    soft scores (B, num_labels) from `labels` / `scores` (VQA), class ids (B,) from `label` (entailment, NLVR2).
    It is None when every sample of the batch was skipped.
    `image_cache_size` keeps that many processed images in memory (keyed by path), which pays off when small data sets
    revisit their images every epoch.
    """

    def __init__(self, processor, task: str, num_labels: int | None = None, image_cache_size: int = 0):
        self.spec = get_task(task)
        if self.spec.labels == "soft_scores" and not num_labels:
            raise ValueError(f"The {task!r} collator needs num_labels (the size of the answer vocabulary).")
        self.processor = processor
        self.task = task
        self.num_labels = num_labels
        self.image_column, self.text_column = self.spec.image_column, self.spec.text_column
        self.image_cache_size = image_cache_size
        self._cache: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()
        given = getattr(processor.image_processor, "segment_source", None) == "given"
        self.segments_column = SEGMENTS_COLUMN if given else None

    @property
    def drop_last(self) -> bool:
        """Whether the training loader drops a last, smaller batch (the task's choice: contrastive losses want full
        batches). Any collator given to `run_training` answers this."""
        return self.spec.drop_last

    def _cells(self, row: dict) -> list:
        """The image cells of a sample: a list when the task's samples have several (NLVR2's two)."""
        return row[self.image_column] if self.spec.images_per_sample > 1 else [row[self.image_column]]

    def _check_labels(self, row: dict) -> None:
        """A row whose labels the model would refuse is skipped with the reason, like a bad image."""
        def is_id(value, limit):
            return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < (limit or float("inf"))

        if self.spec.labels == "soft_scores" and "labels" in row:
            labels, scores = row["labels"], row.get("scores")
            if not isinstance(labels, (list, tuple)) or not all(is_id(label, self.num_labels) for label in labels):
                raise ValueError(f"labels must be a list of answer ids in [0, {self.num_labels}), got {labels!r}")
            if not isinstance(scores, (list, tuple)) or len(scores) != len(labels) or not all(
                    isinstance(score, (int, float)) and 0 <= score <= 1 for score in scores):
                raise ValueError(f"scores must be a list of soft scores in [0, 1], one per label, got {scores!r}")
        elif self.spec.labels == "class_id" and "label" in row and not is_id(row["label"], self.num_labels):
            bound = f"[0, {self.num_labels})" if self.num_labels else ">= 0"
            raise ValueError(f"label must be an integer class id {bound}, got {row['label']!r}")

    def _load(self, row: dict) -> list:
        """Each image of a usable sample, as its cached processed inputs or as a decoded PIL image (with its id map
        when segments come with the data). Raises ValueError / FileNotFoundError when the sample cannot be used
        (the caller skips it)."""
        text = row.get(self.text_column)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"empty or missing {self.text_column!r}")
        self._check_labels(row)
        cells = self._cells(row)
        if len(cells) != self.spec.images_per_sample:
            raise ValueError(f"a {self.task!r} sample needs {self.spec.images_per_sample} images, got {len(cells)}")
        panoptic = self._panoptic_cells(row, len(cells))
        loaded = []
        for cell, panoptic_cell in zip(cells, panoptic):
            key = _cell_key(cell)
            if key is not None and key in self._cache:
                self._cache.move_to_end(key)
                loaded.append(self._cache[key])
            else:  # the id map is read only for images not yet processed
                segment_map = None if panoptic_cell is None else read_coco_panoptic(
                    panoptic_cell, max_segments=self.processor.image_processor.max_segments)[0]
                loaded.append((decode_image_cell(cell), segment_map))
        return loaded

    def _panoptic_cells(self, row: dict, count: int) -> list:
        """Each image's COCO panoptic PNG path when segments come with the data, else Nones."""
        if self.segments_column is None:
            return [None] * count
        cells = row.get(self.segments_column)
        cells = cells if isinstance(cells, list) else [cells]
        if len(cells) != count or not all(isinstance(cell, str) and cell for cell in cells):
            raise ValueError(f"the image processor takes segments from the data, so rows need "
                             f"{self.segments_column!r}: {count} panoptic PNG path(s), got "
                             f"{row.get(self.segments_column)!r}")
        return cells

    def _image_inputs(self, cells: list, loaded: list) -> list[dict[str, torch.Tensor]]:
        """Each image's processed inputs: `pixel_values` (C, H, W) and, for GSHN, `segment_ids` (H, W). Decoded images
        are processed in one call and cached by path."""
        decoded = [i for i, item in enumerate(loaded) if not isinstance(item, dict)]
        processed = list(loaded)
        if decoded:
            images = [loaded[i][0] for i in decoded]
            segments = [loaded[i][1] for i in decoded]
            extra = {} if self.segments_column is None else {"segments": segments}
            features = self.processor.image_processor(images, return_tensors="pt", **extra)
            names = [name for name in IMAGE_INPUT_NAMES if name in features]
            for position, i in enumerate(decoded):
                processed[i] = {name: features[name][position] for name in names}
                key = _cell_key(cells[i])
                if key is not None and self.image_cache_size > 0:
                    self._cache[key] = processed[i]
                    if len(self._cache) > self.image_cache_size:
                        self._cache.popitem(last=False)
        return processed

    def __call__(self, rows: list[dict]) -> dict:
        kept, loaded, skipped = [], [], []
        for row in rows:
            try:
                loaded.extend(self._load(row))
                kept.append(row)
            except (ValueError, OSError, TypeError) as error:
                cell = row.get(self.image_column)
                where = ", ".join(map(_describe, cell)) if isinstance(cell, list) else _describe(cell)
                skipped.append(SkippedSample(where=where, reason=str(error)))
        meta = {
            name: [row[name] for row in kept]
            for name in (rows[0].keys() if rows else ())
            if name not in (self.image_column, self.segments_column, "labels", "scores", "label")
        }
        if not kept:
            return {"inputs": None, "meta": meta, "skipped": skipped}
        inputs = dict(self.processor(text=[row[self.text_column] for row in kept], return_tensors="pt"))
        cells = [cell for row in kept for cell in self._cells(row)]
        processed = self._image_inputs(cells, loaded)
        for name in processed[0]:
            stacked = torch.stack([item[name] for item in processed])
            if self.spec.images_per_sample > 1:
                stacked = stacked.view(len(kept), self.spec.images_per_sample, *stacked.shape[1:])
            inputs[name] = stacked
        if self.spec.labels == "soft_scores" and "labels" in kept[0]:
            targets = torch.zeros(len(kept), self.num_labels)
            for index, row in enumerate(kept):
                for label, score in zip(row["labels"], row["scores"]):
                    targets[index, label] = score
            inputs["labels"] = targets
        elif self.spec.labels == "class_id" and "label" in kept[0]:
            inputs["labels"] = torch.tensor([row["label"] for row in kept], dtype=torch.long)
        return {"inputs": inputs, "meta": meta, "skipped": skipped}
