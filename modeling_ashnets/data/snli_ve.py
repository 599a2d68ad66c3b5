"""SNLI-VE (visual entailment, Xie et al. 2019) from its official JSON Lines files, as 🤗 Datasets.

Why: SNLI-VE replaces SNLI's text premise by its Flickr30k image; the task is a 3-way classification of
(image, hypothesis). The files `snli_ve_{train,dev,test}.jsonl` (529,527 / 17,858 / 17,901 pairs) are written by
https://github.com/necla-ml/SNLI-VE (`vet/tools/snli_ve_generator.py`).

Format: one JSON object per line with SNLI's keys plus the image: `"Flikr30kID"` (sic; e.g. "3416050480.jpg"),
`"gold_label"` ("entailment" | "neutral" | "contradiction"), `"sentence1"` (the premise caption, not used by the
task), `"sentence2"` (the hypothesis), `"pairID"`, `"captionID"` (e.g. "3416050480.jpg#4"), `"annotator_labels"`,
`"sentence1_parse"`, `"sentence1_binary_parse"`, `"sentence2_parse"`, `"sentence2_binary_parse"`. Some
redistributions (e.g. the files in HuggingFaceM4/SNLI-VE, e-ViL) name the image `"Flickr30K_ID"` without ".jpg";
both are read. Images are `image_dir/<id>.jpg` (the flickr30k-images folder) and are not opened here.
"""

import os
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

import datasets

from ..modeling_ashnets import ENTAILMENT_LABELS
from ._files import PathLike, as_path_list, build_dataset, read_json_lines, require_file


__all__ = ["ENTAILMENT_LABELS", "SNLI_VE_FEATURES", "load_snli_ve"]


SNLI_VE_FEATURES = datasets.Features(
    {
        "pair_id": datasets.Value("string"),
        "image": datasets.Value("string"),
        "premise": datasets.Value("string"),
        "hypothesis": datasets.Value("string"),
        "label": datasets.Value("int64"),
    }
)

_IMAGE_ID_KEYS = ("Flikr30kID", "Flickr30K_ID")
_SNLI_VE_FORMAT = (
    'SNLI-VE file (snli_ve_{train,dev,test}.jsonl): {"Flikr30kID": "3416050480.jpg", "gold_label": "entailment", '
    '"sentence1", "sentence2", "pairID", ...}'
)


def load_snli_ve(
    jsonl_files: PathLike | Sequence[PathLike],
    image_dir: PathLike,
    streaming: bool = False,
    max_samples: int | None = None,
    validate: bool = True,
) -> datasets.Dataset | datasets.IterableDataset:
    """SNLI-VE pairs: columns `pair_id` (SNLI's pairID), `image` (path), `premise` (sentence1), `hypothesis`
    (sentence2), `label` (index into `ENTAILMENT_LABELS`). An unknown gold label or a malformed line raises
    with the file and line number. With `streaming=True`, one shard per file; `validate=False` skips the
    up-front pass that makes bad lines raise here rather than during iteration."""
    files = as_path_list(jsonl_files, "jsonl_files")
    for path in files:
        require_file(path, "SNLI-VE file", "Generate it with https://github.com/necla-ml/SNLI-VE.")
    generate_rows = partial(_generate_snli_ve_rows, image_dir=image_dir)
    return build_dataset(
        generate_rows, SNLI_VE_FEATURES, files, streaming=streaming, max_samples=max_samples, validate=validate
    )


def _generate_snli_ve_rows(shards: Sequence[PathLike], image_dir: PathLike) -> Iterator[dict]:
    for path in shards:
        for line_number, record in read_json_lines(path, _SNLI_VE_FORMAT):
            yield _snli_ve_row(record, image_dir, f"{path}, line {line_number}")


def _snli_ve_row(record: dict, image_dir: PathLike, where: str) -> dict:
    image_key = next((key for key in _IMAGE_ID_KEYS if key in record), None)
    missing = [key for key in ("gold_label", "sentence1", "sentence2") if key not in record]
    if image_key is None:
        missing.insert(0, "Flikr30kID")
    if missing:
        raise ValueError(f"{where}: no {', '.join(repr(key) for key in missing)} key; expected the {_SNLI_VE_FORMAT}.")
    gold_label = record["gold_label"]
    if gold_label not in ENTAILMENT_LABELS:
        raise ValueError(
            f"{where}: unknown gold_label {gold_label!r}; SNLI-VE labels are {ENTAILMENT_LABELS}. (SNLI pairs without "
            "a majority label, '-', are not part of SNLI-VE; drop them from the file.)"
        )
    image_name = str(record[image_key])
    if not Path(image_name).suffix:
        image_name += ".jpg"
    return {
        "pair_id": str(record.get("pairID", where)),
        "image": os.path.join(image_dir, image_name),
        "premise": str(record["sentence1"]),
        "hypothesis": str(record["sentence2"]),
        "label": ENTAILMENT_LABELS.index(gold_label),
    }
