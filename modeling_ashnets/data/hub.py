"""Downstream datasets from the Hugging Face Hub (or a local copy), renamed to this package's schemas.

Why: users pass Hub dataset ids, whose column names differ from dataset to dataset; `load_hub_dataset` renames and
converts them into the same columns as the file loaders (`vqa_v2`, `karpathy`, `snli_ve`, `nlvr2`), except that
images are `datasets.Image(decode=False)` values, `{"bytes", "path"}` dicts that the collator decodes.

`HUB_DATASETS` maps well-known ids to their task and columns. The column names come from the dataset cards and
loading scripts as published (lmms-lab/VQAv2's and nlphuji/flickr30k's were read from their card / script; the
others are from memory of their cards); the Hub cannot be reached from where this was written, so they could not
be checked against the live data. Several of these ids are loading-script datasets, which 🤗 Datasets 4 no longer
runs: load them with `revision="refs/convert/parquet"` where the Hub has a Parquet conversion, or use a Parquet
copy with the same columns. A local folder written by `save_to_disk`, a Parquet file, or a folder of data files is
accepted too; its columns pick the mapping (or pass `column_mapping=`).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from ..tasks import TASKS, get_task, resolve
from .vqa_v2 import vqa_labels_and_scores


__all__ = ["HUB_DATASETS", "HUB_TASK_FEATURES", "HubColumnMapping", "load_hub_dataset", "load_split"]

_IMAGE = datasets.Image(decode=False)

# The file loaders' columns (each task's `hub_features`), with images kept encoded (`{"bytes", "path"}`) instead of
# as paths. A task's `hub_required` columns are those it cannot do without (the others get defaults: "" / [] / -1 /
# the row index).
HUB_TASK_FEATURES = {
    name: datasets.Features({
        **resolve(task.hub_features),
        task.image_column: _IMAGE if task.images_per_sample == 1 else datasets.List(_IMAGE),
    })
    for name, task in TASKS.items() if task.hub_features
}


@dataclass(frozen=True)
class HubColumnMapping:
    """How a dataset's columns become ours.

    `columns` maps our column name to the dataset's (for NLVR2, `"images"` maps to the (left, right) pair of
    columns). `split_column`/`hub_split`: the dataset keeps every split in the Hub split `hub_split` and names each
    row's split in `split_column`. `image_path_columns`: a dataset without image data whose image is
    `image_root/<these columns joined>` (or the URL in `image_url_column` when no `image_root` is given)."""

    task: str
    columns: Mapping[str, str | tuple[str, str]]
    split_column: str | None = None
    hub_split: str | None = None
    image_path_columns: tuple[str, ...] = ()
    image_url_column: str | None = None
    notes: str = field(default="", compare=False)

    def source_columns(self, include_optional: bool = True) -> list[str]:
        """The dataset columns this mapping reads (only those of required columns when not `include_optional`)."""
        names = []
        for ours, theirs in self.columns.items():
            if include_optional or ours in get_task(self.task).hub_required:
                names.extend(theirs if isinstance(theirs, tuple) else (theirs,))
        if self.image_path_columns and (include_optional or "image" in get_task(self.task).hub_required):
            names.extend(self.image_path_columns)
        return names


_VQA_COLUMNS = {
    name: name for name in ("question_id", "image_id", "image", "question", "question_type", "answer_type", "answers")
}

HUB_DATASETS: dict[str, HubColumnMapping] = {
    "HuggingFaceM4/VQAv2": HubColumnMapping(
        task="vqa",
        columns=_VQA_COLUMNS,
        notes="Loading script over the official files; splits train, validation, testdev, test. Columns as in the "
        "official annotations, `answers` a list of {answer, answer_confidence, answer_id}, `image` an Image.",
    ),
    "lmms-lab/VQAv2": HubColumnMapping(
        task="vqa",
        columns=_VQA_COLUMNS,
        notes="Parquet with the same columns (read from its card); validation split (214,354 questions).",
    ),
    "nlphuji/flickr30k": HubColumnMapping(
        task="retrieval",
        columns={"image": "image", "captions": "caption", "image_id": "img_id"},
        split_column="split",
        hub_split="test",
        notes="Loading script; one Hub split 'test' with all 31,014 Karpathy images, the Karpathy split of each in "
        "its `split` column (train / val / test); `caption` a list of 5 strings, `img_id` a string, also "
        "`sentids`, `filename`. load_hub_dataset(..., split='test') keeps the 1,000 test images.",
    ),
    "yerevann/coco-karpathy": HubColumnMapping(
        task="retrieval",
        columns={"captions": "sentences", "image_id": "cocoid"},
        image_path_columns=("filepath", "filename"),
        image_url_column="url",
        notes="Parquet without image data: columns filepath, filename, sentences (list of strings), cocoid, imgid, "
        "sentids, split, url; splits train, validation, test (+ restval). Pass image_root=<COCO folder holding "
        "train2014/ and val2014/>, otherwise the image is its COCO URL.",
    ),
    "HuggingFaceM4/SNLI-VE": HubColumnMapping(
        task="entailment",
        columns={"image": "image", "premise": "premise", "hypothesis": "hypothesis", "label": "label"},
        notes="Loading script needing the Flickr30k images locally (manual download); columns image, filename, "
        "premise, hypothesis, label (ClassLabel entailment / neutral / contradiction); splits train, validation, test.",
    ),
    "HuggingFaceM4/NLVR2": HubColumnMapping(
        task="nlvr2",
        columns={
            "identifier": "identifier",
            "images": ("left_image", "right_image"),
            "sentence": "sentence",
            "label": "label",
        },
        notes="Loading script; columns identifier, sentence, left_image, right_image (Images), label "
        '("True" / "False"); splits train, validation, test.',
    ),
}


def load_hub_dataset(
    name_or_path: str | Path,
    task: str,
    split: str,
    streaming: bool = False,
    *,
    column_mapping: HubColumnMapping | None = None,
    answer_vocabulary: Sequence[str] | None = None,
    image_root: str | Path | None = None,
    **load_kwargs,
) -> datasets.Dataset | datasets.IterableDataset:
    """`datasets.load_dataset(name_or_path, split=split, streaming=streaming, **load_kwargs)` with its columns
    renamed and converted to `HUB_TASK_FEATURES[task]`.

    `task` is "vqa", "retrieval", "entailment" or "nlvr2". `name_or_path` is a Hub id, a `save_to_disk` folder,
    a Parquet file or a folder of data files. The mapping is `column_mapping`, else `HUB_DATASETS[name_or_path]`,
    else the first mapping of `HUB_DATASETS` for the task whose columns the dataset has. `answer_vocabulary`
    fills the VQA `labels`/`scores` (empty without it); `image_root` serves mappings with `image_path_columns`.
    A dataset that lacks a column the task needs raises a ValueError naming the missing columns."""
    if task not in HUB_TASK_FEATURES:
        raise ValueError(f"task must be one of {sorted(HUB_TASK_FEATURES)}, got {task!r}.")
    name = str(name_or_path)
    mapping = column_mapping or HUB_DATASETS.get(name)
    if mapping is not None and mapping.task != task:
        raise ValueError(f"{name} is a {mapping.task!r} dataset (see HUB_DATASETS), not {task!r}.")
    load_split = mapping.hub_split if mapping is not None and mapping.hub_split else split
    dataset = _load_source(name, load_split, streaming, load_kwargs)
    column_names = _column_names(dataset, name)
    if mapping is None:
        mapping = _infer_mapping(name, task, column_names)
    missing = [column for column in mapping.source_columns(include_optional=False) if column not in column_names]
    if missing:
        raise ValueError(
            f"{name} (split {load_split!r}) lacks the column(s) {missing} that the {task!r} task needs; its columns "
            f"are {column_names}. Pass column_mapping=HubColumnMapping(task={task!r}, columns={{...}}) that maps "
            f"{list(get_task(task).hub_required)} to the dataset's own columns."
        )
    source_features = dataset.features
    for column in column_names:
        if source_features is not None and isinstance(source_features.get(column), datasets.Image):
            dataset = dataset.cast_column(column, _IMAGE)  # keep the encoded bytes; the collator decodes them
    if mapping.split_column and mapping.split_column in column_names:
        dataset = dataset.filter(lambda value: value == split, input_columns=[mapping.split_column])
    converter = _RowConverter(task, mapping, column_names, source_features, answer_vocabulary, image_root)
    return dataset.map(converter, with_indices=True, remove_columns=column_names, features=HUB_TASK_FEATURES[task])


def load_split(name_or_path: str | Path, split: str, streaming: bool = False,
               **load_kwargs) -> datasets.Dataset | datasets.IterableDataset:
    """One split of a Hub id, `save_to_disk` folder, Parquet file or folder of data files, with its own columns (no
    task schema): for recipes that read a data set's columns as they are (SpikeCLIP's image classification)."""
    return _load_source(str(name_or_path), split, streaming, load_kwargs)


def _load_source(
    name: str, split: str, streaming: bool, load_kwargs: dict
) -> datasets.Dataset | datasets.IterableDataset:
    """The split of a Hub id, `save_to_disk` folder, Parquet file or folder of data files."""
    path = Path(name)
    if path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file()):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise ValueError(f"{name} has the splits {list(loaded)}, not {split!r}.")
            loaded = loaded[split]
        return loaded.to_iterable_dataset(num_shards=max(1, len(loaded.cache_files))) if streaming else loaded
    if path.is_file() and path.suffix == ".parquet":
        return datasets.load_dataset("parquet", data_files=str(path), split="train", streaming=streaming, **load_kwargs)
    return datasets.load_dataset(name, split=split, streaming=streaming, **load_kwargs)


def _column_names(dataset: datasets.Dataset | datasets.IterableDataset, name: str) -> list[str]:
    """Column names, read from the first row when a streamed dataset does not declare its features."""
    if dataset.column_names is not None:
        return list(dataset.column_names)
    first_row = next(iter(dataset), None)
    if first_row is None:
        raise ValueError(f"{name} is empty.")
    return list(first_row)


def _infer_mapping(name: str, task: str, column_names: list[str]) -> HubColumnMapping:
    """The first known mapping of `task` whose required columns the dataset has."""
    misses = {}
    for hub_id, mapping in HUB_DATASETS.items():
        if mapping.task != task:
            continue
        missing = [column for column in mapping.source_columns(include_optional=False) if column not in column_names]
        if not missing:
            return mapping
        misses[hub_id] = missing
    described = "; ".join(f"as {hub_id} it lacks {missing}" for hub_id, missing in misses.items())
    raise ValueError(
        f"{name} matches none of the known {task!r} datasets ({described}); its columns are {column_names}. "
        f"Pass column_mapping=HubColumnMapping(task={task!r}, columns={{...}}) that maps "
        f"{list(get_task(task).hub_required)} to the dataset's own columns."
    )


class _RowConverter:
    """One source row (and its index) -> one row of `HUB_TASK_FEATURES[task]`, by the method named after the task;
    class labels are indices into the task's `label_names`."""

    def __init__(
        self,
        task: str,
        mapping: HubColumnMapping,
        column_names: list[str],
        source_features: datasets.Features | None,
        answer_vocabulary: Sequence[str] | None,
        image_root: str | Path | None,
    ):
        self.task = task
        self.classes = get_task(task).label_names
        self.mapping = mapping
        self.columns = dict(mapping.columns)
        self.present = set(column_names)
        self.answer_ids = {answer: index for index, answer in enumerate(answer_vocabulary or ())}
        self.image_root = image_root
        label_feature = (source_features or {}).get(self.columns.get("label"))
        self.label_names = label_feature.names if isinstance(label_feature, datasets.ClassLabel) else None

    def __call__(self, row: dict, index: int) -> dict:
        return getattr(self, f"_{self.task}")(row, index)

    def _get(self, row: dict, ours: str, default=None):
        theirs = self.columns.get(ours)
        return row[theirs] if isinstance(theirs, str) and theirs in self.present else default

    def _image(self, row: dict) -> dict:
        if self.mapping.image_path_columns:
            if self.image_root is None and self.mapping.image_url_column:
                return _image_value(row[self.mapping.image_url_column])
            parts = [str(row[column] or "") for column in self.mapping.image_path_columns]
            return _image_value(str(Path(self.image_root or ".", *parts)))
        return _image_value(self._get(row, "image"))

    def _vqa(self, row: dict, index: int) -> dict:
        raw_answers = self._get(row, "answers") or []  # None or absent in test splits
        answers = [answer["answer"] if isinstance(answer, dict) else answer for answer in raw_answers]
        labels, scores = vqa_labels_and_scores([str(answer) for answer in answers], self.answer_ids)
        return {
            "question_id": int(self._get(row, "question_id")),
            "image_id": int(self._get(row, "image_id", -1)),
            "image": self._image(row),
            "question": str(self._get(row, "question")),
            "question_type": str(self._get(row, "question_type", "") or ""),
            "answer_type": str(self._get(row, "answer_type", "") or ""),
            "answers": [str(answer) for answer in answers],
            "labels": labels,
            "scores": scores,
        }

    def _retrieval(self, row: dict, index: int) -> dict:
        captions = self._get(row, "captions")
        if isinstance(captions, str):
            captions = [captions]
        captions = [caption["raw"] if isinstance(caption, dict) else caption for caption in captions]
        return {
            "image_id": int(self._get(row, "image_id", index)),
            "image": self._image(row),
            "captions": [str(caption) for caption in captions],
        }

    def _entailment(self, row: dict, index: int) -> dict:
        return {
            "pair_id": str(self._get(row, "pair_id", index)),
            "image": self._image(row),
            "premise": str(self._get(row, "premise", "") or ""),
            "hypothesis": str(self._get(row, "hypothesis")),
            "label": self._label_index(self._get(row, "label"), row),
        }

    def _nlvr2(self, row: dict, index: int) -> dict:
        left, right = self.columns["images"]
        return {
            "identifier": str(self._get(row, "identifier", index)),
            "images": [_image_value(row[left]), _image_value(row[right])],
            "sentence": str(self._get(row, "sentence")),
            "label": self._label_index(self._get(row, "label"), row),
        }

    def _label_index(self, value, row: dict) -> int:
        """Index in the task's `label_names` of a label given as a string, a bool (NLVR2) or a ClassLabel id of the
        source."""
        if self.label_names is not None and isinstance(value, int) and not isinstance(value, bool):
            value = self.label_names[value]
        if isinstance(value, bool):
            value = str(value)
        if value not in self.classes:
            raise ValueError(f"Unknown {self.task} label {value!r} (expected one of {self.classes}) in {row!r:.200}")
        return self.classes.index(value)


def _image_value(value) -> dict:
    """An image as a `{"bytes", "path"}` dict (what `datasets.Image(decode=False)` holds)."""
    if isinstance(value, dict):
        return {"bytes": value.get("bytes"), "path": value.get("path")}
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value), "path": None}
    if isinstance(value, (str, Path)):
        return {"bytes": None, "path": str(value)}
    if value is None:
        raise ValueError("A row has no image (None); drop such rows before loading, or fix the dataset.")
    return _IMAGE.encode_example(value)  # e.g. a PIL image from a dataset that was decoded upstream
