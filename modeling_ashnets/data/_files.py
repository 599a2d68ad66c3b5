"""Reading the official annotation files with clear errors, and turning rows into a `Dataset` or a sharded
`IterableDataset`. Shared by the file loaders of this package (vqa_v2, karpathy, snli_ve, nlvr2)."""

import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import datasets


PathLike = str | os.PathLike

def as_path_list(value: PathLike | Sequence[PathLike], argument: str) -> list[PathLike]:
    """One path or a list of paths, as a non-empty list."""
    paths = [value] if isinstance(value, (str, os.PathLike)) else list(value)
    if not paths:
        raise ValueError(f"{argument} is an empty list; pass at least one path.")
    return paths


def require_file(path: PathLike, description: str, hint: str = "") -> None:
    """FileNotFoundError naming the path unless it is a file."""
    if not Path(path).is_file():
        what = "is a folder, not a file" if Path(path).is_dir() else "not found"
        raise FileNotFoundError(f"{description} {what}: {path}. {hint}".rstrip())


def read_json_document(path: PathLike, required_keys: Sequence[str], expected_format: str) -> dict:
    """A JSON object read from `path`, with a clear error when it is not valid JSON or lacks a required key."""
    with open(path, encoding="utf-8") as handle:
        try:
            document = json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path} is not valid JSON ({error}); expected the {expected_format}. (A file with one JSON object "
                "per line is JSON Lines, which this loader does not read.)"
            ) from None
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise ValueError(f"{path} holds a JSON {kind}, not an object; expected the {expected_format}.")
    missing = [key for key in required_keys if key not in document]
    if missing:
        raise ValueError(
            f"{path} has no {', '.join(repr(key) for key in missing)} key (its keys: {sorted(document)[:10]}); "
            f"expected the {expected_format}."
        )
    return document


def require_list_of_records(
    value: object, path: PathLike, key: str, required_keys: Sequence[str], expected_format: str
) -> list[dict]:
    """`value` (the `key` entry of a JSON document) as a list of objects that all have `required_keys`."""
    if not isinstance(value, list):
        raise ValueError(f"{path}: '{key}' is a {type(value).__name__}, not a list; expected the {expected_format}.")
    for index, record in enumerate(value):
        missing = [name for name in required_keys if name not in record] if isinstance(record, dict) else required_keys
        if missing:
            raise ValueError(
                f"{path}: entry {index} of '{key}' lacks {', '.join(repr(name) for name in missing)}; "
                f"expected the {expected_format}."
            )
    return value


def read_json_lines(path: PathLike, expected_format: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON Lines file; malformed lines raise with both."""
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{path}, line {line_number}: not valid JSON ({error.msg}); expected the {expected_format}, "
                    "one JSON object per line."
                ) from None
            if not isinstance(record, dict):
                raise ValueError(
                    f"{path}, line {line_number}: a JSON {type(record).__name__}, not an object; expected the "
                    f"{expected_format}, one JSON object per line."
                )
            yield line_number, record


def build_dataset(
    generate_rows: Callable[[list], Iterable[dict]],
    features: datasets.Features,
    shards: list,
    *,
    streaming: bool,
    max_samples: int | None,
    validate: bool = True,
) -> datasets.Dataset | datasets.IterableDataset:
    """A `Dataset` of the rows `generate_rows(shards)` yields, or an `IterableDataset` with one shard per entry of
    `shards` (`generate_rows` then gets a sub-list). For streaming, `validate` runs the rows once first so that bad
    input raises here rather than during training."""
    if max_samples is not None and (not isinstance(max_samples, int) or max_samples < 0):
        raise ValueError(f"max_samples must be None or a non-negative integer, got {max_samples!r}.")
    if not streaming:
        rows = list(itertools.islice(generate_rows(shards), max_samples))
        return datasets.Dataset.from_dict({name: [row[name] for row in rows] for name in features}, features=features)
    if validate:
        for _ in generate_rows(shards):
            pass
    dataset = datasets.IterableDataset.from_generator(generate_rows, features=features, gen_kwargs={"shards": shards})
    return dataset if max_samples is None else dataset.take(max_samples)
