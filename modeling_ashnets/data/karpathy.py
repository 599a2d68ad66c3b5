"""Image-text retrieval data (COCO, Flickr30k) from Karpathy's split files, as 🤗 Datasets.

Why: retrieval results (ViLT, SOHO, ALBEF, ...) are reported on Karpathy & Fei-Fei's splits (COCO: 113,287 train
incl. restval / 5,000 val / 5,000 test images; Flickr30k: 29,000 / 1,014 / 1,000), which ship as one JSON file per
dataset (`dataset_coco.json`, `dataset_flickr30k.json` in `caption_datasets.zip`).

Format: `{"dataset": "coco" | "flickr30k", "images": [{"filepath": "val2014" (COCO only), "filename",
"imgid", "split": "train" | "restval" | "val" | "test", "sentids", "sentences": [{"raw", "tokens", "imgid",
"sentid"}, ...], "cocoid" (COCO only)}, ...]}`.

"restval" is the part of COCO's val2014 outside the 5k val and 5k test images; standard practice (since Karpathy &
Fei-Fei 2015) trains on it, so `split="train"` includes it unless `include_restval=False`. Images are not opened
here; rows hold the path `image_root/filepath/filename` (or `image_root/filename` without a filepath).
"""

import os
from collections.abc import Iterator, Sequence
from functools import partial

import datasets

from ._files import (
    PathLike,
    as_path_list,
    build_dataset,
    read_json_document,
    require_file,
    require_list_of_records,
)


__all__ = ["KARPATHY_IMAGE_FEATURES", "KARPATHY_PAIR_FEATURES", "KARPATHY_SPLITS", "load_karpathy"]

KARPATHY_SPLITS = ("train", "restval", "val", "test")

KARPATHY_IMAGE_FEATURES = datasets.Features(
    {
        "image_id": datasets.Value("int64"),
        "image": datasets.Value("string"),
        "captions": datasets.List(datasets.Value("string")),
    }
)
KARPATHY_PAIR_FEATURES = datasets.Features(
    {"image_id": datasets.Value("int64"), "image": datasets.Value("string"), "caption": datasets.Value("string")}
)

_KARPATHY_FORMAT = (
    'Karpathy split file (dataset_coco.json / dataset_flickr30k.json): {"images": [{"filepath" (COCO only), '
    '"filename", "imgid", "split", "sentences": [{"raw", "tokens", ...}], "cocoid" (COCO only)}, ...], "dataset"}'
)


def load_karpathy(
    json_file: PathLike | Sequence[PathLike],
    image_root: PathLike,
    split: str = "test",
    pairs: bool = False,
    include_restval: bool = True,
    streaming: bool = False,
    max_samples: int | None = None,
    validate: bool = True,
) -> datasets.Dataset | datasets.IterableDataset:
    """The images of one Karpathy split, with their captions.

    `pairs=False` (evaluation): one row per image, columns `image_id` (COCO id `cocoid`, else `imgid`), `image`
    (path), `captions` (list of strings). `pairs=True` (training): one row per caption, columns `image_id`,
    `image`, `caption`. `split="train"` includes "restval" when `include_restval`. With `streaming=True`, one
    shard per JSON file; `validate=False` skips the up-front pass that makes bad files raise here."""
    if split not in KARPATHY_SPLITS:
        raise ValueError(f"split must be one of {KARPATHY_SPLITS}, got {split!r}.")
    wanted_splits = frozenset({"train", "restval"} if split == "train" and include_restval else {split})
    json_files = as_path_list(json_file, "json_file")
    for path in json_files:
        require_file(
            path, "Karpathy split file",
            "It is in https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip.",
        )
    generate_rows = partial(_generate_karpathy_rows, image_root=image_root, wanted_splits=wanted_splits, pairs=pairs)
    features = KARPATHY_PAIR_FEATURES if pairs else KARPATHY_IMAGE_FEATURES
    return build_dataset(
        generate_rows, features, json_files, streaming=streaming, max_samples=max_samples, validate=validate
    )


def _generate_karpathy_rows(
    shards: Sequence[PathLike], image_root: PathLike, wanted_splits: frozenset[str], pairs: bool
) -> Iterator[dict]:
    for path in shards:
        for index, entry in enumerate(_read_images(path)):
            if entry["split"] not in wanted_splits:
                continue
            image_id = int(entry["cocoid"] if "cocoid" in entry else entry["imgid"])
            image = os.path.join(image_root, entry.get("filepath") or "", entry["filename"])
            captions = [_caption_text(sentence, path, index) for sentence in entry["sentences"]]
            if pairs:
                for caption in captions:
                    yield {"image_id": image_id, "image": image, "caption": caption}
            else:
                yield {"image_id": image_id, "image": image, "captions": captions}


def _read_images(path: PathLike) -> list[dict]:
    """The validated `images` list of a Karpathy split file."""
    document = read_json_document(path, required_keys=("images",), expected_format=_KARPATHY_FORMAT)
    images = require_list_of_records(
        document["images"], path, "images", ("filename", "split", "sentences"), _KARPATHY_FORMAT
    )
    for index, entry in enumerate(images):
        where = f"{path}: entry {index} of 'images'"
        if "cocoid" not in entry and "imgid" not in entry:
            raise ValueError(f"{where} has neither 'cocoid' nor 'imgid'; expected the {_KARPATHY_FORMAT}.")
        if entry["split"] not in KARPATHY_SPLITS:
            raise ValueError(f"{where} has split {entry['split']!r}; a Karpathy split is one of {KARPATHY_SPLITS}.")
        if not isinstance(entry["sentences"], list):
            raise ValueError(f"{where} has 'sentences' that is not a list; expected the {_KARPATHY_FORMAT}.")
    return images


def _caption_text(sentence: object, path: PathLike, index: int) -> str:
    """A sentence's `raw` text (its `tokens` joined when `raw` is absent)."""
    if isinstance(sentence, dict) and "raw" in sentence:
        return str(sentence["raw"]).strip()
    if isinstance(sentence, dict) and "tokens" in sentence:
        return " ".join(sentence["tokens"])
    raise ValueError(f"{path}: entry {index} of 'images' has a sentence without 'raw' or 'tokens': {sentence!r}.")
