"""NLVR2 (Suhr et al. 2019) from its official JSON Lines files, as 🤗 Datasets.

Why: NLVR2 asks whether a sentence is true of a pair of photographs; the model sees both images, so rows hold two
image paths. The annotation files are in https://github.com/lil-lab/nlvr (`nlvr2/data/{train,dev,test1}.json`);
the images come from the authors on request (or from the URLs in the files).

Format: one JSON object per line with `"identifier"` ("split-set_id-pair_id-sentence_id", e.g. "train-10171-0-0"),
`"sentence"`, `"label"` ("True" | "False"), `"left_url"`, `"right_url"`, `"synset"`, `"query"`, `"writer"`,
`"validation"`, `"extra_validations"` (dev/test) and, in train.json, `"directory"` (the numbered image sub-folder).
The left and right images of identifier `split-set_id-pair_id-sentence_id` are `split-set_id-pair_id-img0.png` and
`-img1.png` (some are JPEGs despite the extension; PIL reads them by content). Image layout: train images in
`image_root/train/<directory>/`, dev and test images in `image_root/dev/`, `image_root/test1/`. The authors'
train archive unpacks to `images/train/<directory>/`, so `image_root/images/train` is used when
`image_root/train` does not exist. Images are not opened here.
"""

import os
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

import datasets

from ._files import PathLike, as_path_list, build_dataset, read_json_lines, require_file


__all__ = ["NLVR2_FEATURES", "load_nlvr2", "nlvr2_image_paths"]

NLVR2_FEATURES = datasets.Features(
    {
        "identifier": datasets.Value("string"),
        "images": datasets.List(datasets.Value("string")),
        "sentence": datasets.Value("string"),
        "label": datasets.Value("int64"),
    }
)

_LABELS = {"True": 1, "False": 0, True: 1, False: 0}
_NLVR2_FORMAT = (
    'NLVR2 file (train.json / dev.json / test1.json, one JSON object per line): {"identifier": "train-10171-0-0", '
    '"sentence", "label": "True" | "False", "directory" (train only), "left_url", "right_url", ...}'
)


def load_nlvr2(
    jsonl_files: PathLike | Sequence[PathLike],
    image_root: PathLike,
    streaming: bool = False,
    max_samples: int | None = None,
    validate: bool = True,
) -> datasets.Dataset | datasets.IterableDataset:
    """NLVR2 examples: columns `identifier`, `images` ([left path, right path]), `sentence`, `label` (1 for
    "True", 0 for "False"). An unknown label or a malformed line raises with the file and line number. With
    `streaming=True`, one shard per file; `validate=False` skips the up-front pass that makes bad lines raise
    here rather than during iteration."""
    files = as_path_list(jsonl_files, "jsonl_files")
    for path in files:
        require_file(path, "NLVR2 file", "It is in https://github.com/lil-lab/nlvr/tree/master/nlvr2/data.")
    generate_rows = partial(_generate_nlvr2_rows, image_root=image_root)
    return build_dataset(
        generate_rows, NLVR2_FEATURES, files, streaming=streaming, max_samples=max_samples, validate=validate
    )


def nlvr2_image_paths(identifier: str, image_root: PathLike, directory: int | str | None = None) -> list[str]:
    """[left, right] image paths of an NLVR2 example (`directory` is the train.json field; train only)."""
    return _image_paths(identifier, _split_folders(image_root), directory)


def _split_folders(image_root: PathLike) -> dict[str, str]:
    """Image folder of each split prefix ("train" is the parent of the numbered sub-folders)."""
    train_folder = Path(image_root, "train")
    if not train_folder.is_dir() and Path(image_root, "images", "train").is_dir():
        train_folder = Path(image_root, "images", "train")
    folders = {split: os.path.join(image_root, split) for split in ("dev", "test1", "test2")}
    folders["train"] = str(train_folder)
    return folders


def _image_paths(identifier: str, split_folders: dict[str, str], directory: int | str | None) -> list[str]:
    parts = identifier.split("-")
    if len(parts) != 4 or parts[0] not in split_folders:
        raise ValueError(
            f"NLVR2 identifier {identifier!r} is not 'split-set_id-pair_id-sentence_id' with split one of "
            f"{sorted(split_folders)}."
        )
    folder = split_folders[parts[0]]
    if parts[0] == "train":
        if directory is None:
            raise ValueError(
                f"The train example {identifier!r} has no 'directory' (its image sub-folder); train.json has it."
            )
        folder = os.path.join(folder, str(directory))
    stem = "-".join(parts[:3])
    return [os.path.join(folder, f"{stem}-img0.png"), os.path.join(folder, f"{stem}-img1.png")]


def _generate_nlvr2_rows(shards: Sequence[PathLike], image_root: PathLike) -> Iterator[dict]:
    split_folders = _split_folders(image_root)
    for path in shards:
        for line_number, record in read_json_lines(path, _NLVR2_FORMAT):
            where = f"{path}, line {line_number}"
            missing = [key for key in ("identifier", "sentence", "label") if key not in record]
            if missing:
                keys = ", ".join(repr(key) for key in missing)
                raise ValueError(f"{where}: no {keys} key; expected the {_NLVR2_FORMAT}.")
            label = record["label"]
            if not isinstance(label, (str, bool)) or label not in _LABELS:
                raise ValueError(f"{where}: unknown label {label!r}; NLVR2 labels are \"True\" and \"False\".")
            try:
                images = _image_paths(str(record["identifier"]), split_folders, record.get("directory"))
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
            yield {
                "identifier": str(record["identifier"]),
                "images": images,
                "sentence": str(record["sentence"]),
                "label": _LABELS[label],
            }
