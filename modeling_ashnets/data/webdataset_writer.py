"""Writing a pre-training corpus as webdataset tar shards.

Why: COCO and Visual Genome are hundreds of thousands of small JPEGs behind one JSON file; sequential tar shards
read far faster from network storage, split cleanly across processes (one file each), and stream from the Hub. The
shards hold each sample's image as `.jpg` (the original bytes for JPEGs, which COCO and Visual Genome are; other
formats are re-encoded at quality 95, because webdataset readers, 🤗 Datasets' among them, want one image type per
corpus), its text (`.txt`) and a JSON record of where it came from, and `load_webdataset` reads them back.
"""

import io
import json
import os
import tarfile
from collections.abc import Iterable

from PIL import Image, UnidentifiedImageError


__all__ = ["write_webdataset"]

def _jpeg_bytes(cell: dict) -> tuple[bytes, bool]:
    """(JPEG bytes, whether they were re-encoded) of an image cell; raises OSError / ValueError when the image is
    missing, unreadable or corrupt."""
    data = cell.get("bytes")
    if data is None:
        with open(cell["path"], "rb") as handle:
            data = handle.read()
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # decodes every pixel: truncated files fail here, not during training
        if image.format == "JPEG":
            return data, False
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue(), True


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0  # the same corpus gives byte-identical shards
    archive.addfile(info, io.BytesIO(data))


def write_webdataset(
    rows: Iterable[dict], output_dir: str, prefix: str = "shard", samples_per_shard: int = 1000
) -> dict:
    """Write `rows` (the columns of `PRETRAINING_FEATURES`) to `output_dir/{prefix}-000000.tar`, ... Samples whose
    image is missing or corrupt, or whose text is empty, are left out and counted. Each shard is written under a
    temporary name and renamed when complete, so an interrupted run leaves no half-written shard behind.

    Returns `{"shards": [...], "samples": n, "reencoded": n, "skipped": n, "skipped_examples": [first reasons]}`."""
    if samples_per_shard < 1:
        raise ValueError(f"samples_per_shard must be >= 1, got {samples_per_shard}.")
    os.makedirs(output_dir, exist_ok=True)
    existing = sorted(name for name in os.listdir(output_dir) if name.startswith(f"{prefix}-") and name.endswith(".tar"))
    if existing:
        raise FileExistsError(
            f"{output_dir} already holds {len(existing)} shard(s) named {prefix}-*.tar ({existing[0]}, ...): choose "
            "another output folder or prefix, or delete them first."
        )
    stats = {"shards": [], "samples": 0, "reencoded": 0, "skipped": 0, "skipped_examples": []}
    archive, temporary, in_shard = None, None, 0

    def close() -> None:
        archive.close()
        final = temporary[: -len(".partial")]
        os.replace(temporary, final)
        stats["shards"].append(final)

    for index, row in enumerate(rows):
        text = (row.get("text") or "").strip()
        try:
            if not text:
                raise ValueError("empty text")
            data, reencoded = _jpeg_bytes(row["image"])
        except (OSError, ValueError, UnidentifiedImageError) as error:
            stats["skipped"] += 1
            if len(stats["skipped_examples"]) < 20:
                stats["skipped_examples"].append(f"{row['image'].get('path') or f'row {index}'}: {error}")
            continue
        if archive is None:
            temporary = os.path.join(output_dir, f"{prefix}-{len(stats['shards']):06d}.tar.partial")
            archive = tarfile.open(temporary, "w")
        key = f"{stats['samples']:09d}"
        _add(archive, f"{key}.jpg", data)
        stats["reencoded"] += reencoded
        _add(archive, f"{key}.txt", text.encode("utf-8"))
        record = {"source": row.get("source"), "path": row["image"].get("path")}
        _add(archive, f"{key}.json", json.dumps(record).encode("utf-8"))
        stats["samples"] += 1
        in_shard += 1
        if in_shard == samples_per_shard:
            close()
            archive, in_shard = None, 0
    if archive is not None:
        close()
    return stats
