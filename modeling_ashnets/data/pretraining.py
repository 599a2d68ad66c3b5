"""The pre-training corpus: image-text pairs from COCO captions, Visual Genome regions, webdataset shards, Hub data
sets and easy-VQA, mixed by weights and streamed through 🤗 Datasets.

Why: ASH-Nets pre-trains on COCO + Visual Genome (docs/model.md section 1). Every source yields the same three columns
(`image`: `datasets.Image(decode=False)`, i.e. `{"bytes", "path"}`; `text`; `source`), so that sources mix with
`interleave_datasets` and one collator reads them all. Images are not opened here: the collator decodes them, and
skips (and reports) missing or corrupt ones.

Shards: a streamed source is split into shards (the tar files of a webdataset; for the single JSON file of COCO or
Visual Genome, `num_shards` interleaved slices of its records), and `for_process` hands each process of a
distributed run its own shards, so that no sample is read twice.
"""

import functools
import glob
import json
import os
from collections.abc import Iterator, Sequence

import datasets
from datasets.distributed import split_dataset_by_node

from ._files import PathLike, as_path_list, build_dataset, read_json_document, require_file, require_list_of_records


__all__ = [
    "PRETRAINING_FEATURES",
    "for_process",
    "load_coco_captions",
    "load_easy_vqa_pretraining",
    "load_pretraining_hub",
    "load_visual_genome_regions",
    "load_webdataset",
    "mix_pretraining_sources",
]

PRETRAINING_FEATURES = datasets.Features(
    {"image": datasets.Image(decode=False), "text": datasets.Value("string"), "source": datasets.Value("string")}
)
DEFAULT_NUM_SHARDS = 16  # divisible by 1, 2, 4, 8 and 16 processes

_COCO_FORMAT = (
    'COCO captions file (captions_train2017.json): {"images": [{"id", "file_name", ...}], '
    '"annotations": [{"image_id", "caption", ...}]}'
)
_VG_FORMAT = (
    'Visual Genome region_descriptions.json: [{"id": image id, "regions": [{"image_id", "phrase", "x", "y", '
    '"width", "height", ...}]}, ...]'
)


def _row(image_path: str, text: str, source: str) -> dict:
    return {"image": {"bytes": None, "path": image_path}, "text": text, "source": source}


def _build(generate_rows, num_shards: int, streaming: bool, max_samples: int | None):
    """A `Dataset`, or an `IterableDataset` whose shards are slices 0..num_shards-1 of the generator's records (the
    sources check their files when they are opened, so the rows are not run through once more)."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}.")
    return build_dataset(generate_rows, PRETRAINING_FEATURES, list(range(num_shards)), streaming=streaming,
                         max_samples=max_samples, validate=False)


@functools.lru_cache(maxsize=4)
def _read_coco(path: str) -> tuple[dict[int, str], list[dict]]:
    """(image id -> file name, caption records) of a COCO captions file; parsed once per process."""
    document = read_json_document(path, ("images", "annotations"), _COCO_FORMAT)
    images = require_list_of_records(document["images"], path, "images", ("id", "file_name"), _COCO_FORMAT)
    annotations = require_list_of_records(
        document["annotations"], path, "annotations", ("image_id", "caption"), _COCO_FORMAT
    )
    file_names = {int(image["id"]): image["file_name"] for image in images}
    for index, annotation in enumerate(annotations):
        if int(annotation["image_id"]) not in file_names:
            raise ValueError(
                f"{path}: annotation {index} refers to image_id {annotation['image_id']}, which 'images' does not "
                "list; is the file truncated or from another split?"
            )
    return file_names, annotations


def load_coco_captions(
    annotation_file: PathLike,
    image_dir: PathLike,
    streaming: bool = False,
    num_shards: int = DEFAULT_NUM_SHARDS,
    max_samples: int | None = None,
) -> datasets.Dataset | datasets.IterableDataset:
    """One row per caption of COCO's `captions_{train,val}{2014,2017}.json`; images at `image_dir/file_name`."""
    require_file(annotation_file, "COCO captions file", "It is in annotations_trainval2017.zip from cocodataset.org.")
    path = os.fspath(annotation_file)
    _read_coco(path)  # bad files raise here, not in the middle of a run

    def generate_rows(shards: list[int]) -> Iterator[dict]:
        file_names, annotations = _read_coco(path)
        for shard in shards:
            for annotation in annotations[shard::num_shards]:
                image = os.path.join(image_dir, file_names[int(annotation["image_id"])])
                yield _row(image, str(annotation["caption"]).strip(), "coco")

    return _build(generate_rows, num_shards, streaming, max_samples)


@functools.lru_cache(maxsize=4)
def _read_visual_genome(path: str) -> list[dict]:
    """The image entries of `region_descriptions.json`, each with a list of regions; parsed once per process."""
    with open(path, encoding="utf-8") as handle:
        try:
            document = json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON ({error}); expected the {_VG_FORMAT}.") from None
    if not isinstance(document, list):
        raise ValueError(f"{path} holds a JSON {type(document).__name__}, not a list; expected the {_VG_FORMAT}.")
    for index, entry in enumerate(document):
        if not isinstance(entry, dict) or not isinstance(entry.get("regions"), list):
            raise ValueError(f"{path}: entry {index} has no 'regions' list; expected the {_VG_FORMAT}.")
        for region in entry["regions"]:
            if not isinstance(region, dict) or "phrase" not in region or "image_id" not in region:
                raise ValueError(f"{path}: a region of entry {index} lacks 'phrase' or 'image_id'; expected the {_VG_FORMAT}.")
    return document


def load_visual_genome_regions(
    region_file: PathLike,
    image_dirs: PathLike | Sequence[PathLike],
    streaming: bool = False,
    num_shards: int = DEFAULT_NUM_SHARDS,
    max_samples: int | None = None,
) -> datasets.Dataset | datasets.IterableDataset:
    """One row per region phrase of Visual Genome's `region_descriptions.json`, paired with the whole image (SOHO's
    use of VG). Images are `<image_id>.jpg` in one of `image_dirs` (VG ships `VG_100K` and `VG_100K_2`)."""
    require_file(region_file, "Visual Genome region descriptions", "It is region_descriptions.json.zip from visualgenome.org.")
    path = os.fspath(region_file)
    folders = [os.fspath(folder) for folder in as_path_list(image_dirs, "image_dirs")]
    _read_visual_genome(path)

    def locate(image_id: int) -> str:
        name = f"{image_id}.jpg"
        for folder in folders:
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                return candidate
        return os.path.join(folders[0], name)  # missing: the collator skips it and says so

    def generate_rows(shards: list[int]) -> Iterator[dict]:
        entries = _read_visual_genome(path)
        for shard in shards:
            for entry in entries[shard::num_shards]:
                for region in entry["regions"]:
                    phrase = str(region["phrase"]).strip()
                    yield _row(locate(int(region["image_id"])), phrase, "visual_genome")

    return _build(generate_rows, num_shards, streaming, max_samples)


_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


def load_webdataset(
    shards: str | Sequence[str], streaming: bool = True, max_samples: int | None = None, source: str = "webdataset"
) -> datasets.Dataset | datasets.IterableDataset:
    """Image-text pairs from webdataset tar shards (a glob pattern or a list of files), one shard per tar file. Each
    sample needs an image (`.jpg`, `.jpeg`, `.png` or `.webp`) and its text (`.txt`); `write_webdataset` writes such
    shards from any source of this module."""
    patterns = [shards] if isinstance(shards, str) else list(shards)
    files = sorted({file for pattern in patterns for file in (glob.glob(pattern) or [pattern])})
    for file in files:
        require_file(file, "webdataset shard", "Pass .tar files (or a glob such as 'shards/coco-*.tar').")
    raw = datasets.load_dataset("webdataset", data_files={"train": files}, split="train", streaming=True)
    columns = raw.column_names or []
    image_column = next((name for name in _IMAGE_EXTENSIONS if name in columns), None)
    if image_column is None or "txt" not in columns:
        raise ValueError(
            f"The webdataset shards {files[:3]} hold the columns {columns}; pre-training needs an image "
            f"({', '.join(_IMAGE_EXTENSIONS)}) and a 'txt' caption per sample."
        )
    raw = raw.cast_column(image_column, datasets.Image(decode=False))
    dataset = raw.map(
        lambda row: {"image": row[image_column], "text": row["txt"], "source": source},
        remove_columns=columns,
        features=PRETRAINING_FEATURES,
    )
    if max_samples is not None:
        dataset = dataset.take(max_samples)
    if streaming:
        return dataset
    return datasets.Dataset.from_list(list(dataset), features=PRETRAINING_FEATURES)


def load_pretraining_hub(
    dataset_id: str,
    split: str = "train",
    image_column: str = "image",
    text_column: str = "caption",
    streaming: bool = True,
    **load_kwargs,
) -> datasets.Dataset | datasets.IterableDataset:
    """Image-text pairs from a Hub data set (or any `load_dataset` path). A text column that holds a list of
    captions gives one row per caption."""
    raw = datasets.load_dataset(dataset_id, split=split, streaming=streaming, **load_kwargs)
    columns = list(raw.column_names or raw.features)
    missing = [name for name in (image_column, text_column) if name not in columns]
    if missing:
        raise ValueError(
            f"{dataset_id} has no column {missing[0]!r} (its columns: {columns}); pass image_column= and text_column="
        )
    raw = raw.cast_column(image_column, datasets.Image(decode=False))

    def to_rows(batch: dict) -> dict:
        rows = {"image": [], "text": [], "source": []}
        for image, texts in zip(batch[image_column], batch[text_column]):
            for text in [texts] if isinstance(texts, str) else list(texts or []):
                rows["image"].append(image)
                rows["text"].append(text)
                rows["source"].append(dataset_id)
        return rows

    return raw.map(to_rows, batched=True, remove_columns=columns, features=PRETRAINING_FEATURES)


def load_easy_vqa_pretraining(
    split: str = "train", streaming: bool = False, num_shards: int = DEFAULT_NUM_SHARDS, max_samples: int | None = None
) -> datasets.Dataset | datasets.IterableDataset:
    """The built-in corpus: for every easy-VQA image, its two captions (as COCO's) and five region-like phrases (as
    Visual Genome's: "a red shape", "a circle", "a small shape", "a shape at the top left", "a red circle")."""
    from .easy_vqa import easy_vqa_image_facts

    facts = easy_vqa_image_facts(split)

    def generate_rows(shards: list[int]) -> Iterator[dict]:
        for shard in shards:
            for fact in facts[shard::num_shards]:
                yield _row(fact.path, fact.caption(0), "easy_vqa_captions")
                yield _row(fact.path, fact.caption(1), "easy_vqa_captions")
                for phrase in (f"a {fact.color} shape", f"a {fact.shape}", f"a {fact.size} shape",
                               f"a shape at the {fact.position}", f"a {fact.color} {fact.shape}"):
                    yield _row(fact.path, phrase, "easy_vqa_regions")

    return _build(generate_rows, num_shards, streaming, max_samples)


def mix_pretraining_sources(
    sources: Sequence[datasets.Dataset | datasets.IterableDataset],
    weights: Sequence[float] | None = None,
    seed: int = 42,
) -> datasets.Dataset | datasets.IterableDataset:
    """One stream that draws from each source with probability proportional to its weight (default: equal) until
    every source has been seen in full (`interleave_datasets`, `all_exhausted`)."""
    sources = list(sources)
    if not sources:
        raise ValueError("No pre-training source given.")
    if weights is None:
        weights = [1.0] * len(sources)
    if len(weights) != len(sources) or any(weight < 0 for weight in weights) or sum(weights) <= 0:
        raise ValueError(f"Pass one non-negative weight per source ({len(sources)}), not all zero; got {list(weights)}.")
    if len(sources) == 1:
        return sources[0]
    probabilities = [weight / sum(weights) for weight in weights]
    return datasets.interleave_datasets(
        sources, probabilities=probabilities, seed=seed, stopping_strategy="all_exhausted"
    )


def for_process(dataset: datasets.IterableDataset, rank: int, world_size: int) -> datasets.IterableDataset:
    """This process's part of a stream: whole shards when the shard count divides by `world_size` (each process then
    reads only its own files), otherwise every `world_size`-th sample. No sample goes to two processes."""
    if world_size == 1:
        return dataset
    return split_dataset_by_node(dataset, rank=rank, world_size=world_size)
