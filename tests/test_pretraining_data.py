"""The pre-training corpus: COCO, Visual Genome and webdataset sources in their official formats, mixing, per-process
shards, the webdataset writer, and the built-in easy-VQA corpus."""

import json
import tarfile

import pytest

from conftest import write_pretraining_fixtures
from modeling_ashnets.data import pretraining as corpus
from modeling_ashnets.data.collators import AshNetsCollator
from modeling_ashnets.data.webdataset_writer import write_webdataset


@pytest.fixture
def files(tmp_path):
    return write_pretraining_fixtures(tmp_path / "raw")


def test_coco_and_visual_genome_rows(files):
    coco = corpus.load_coco_captions(files["coco_captions"], files["coco_images"])
    assert len(coco) == 18 and coco.features == corpus.PRETRAINING_FEATURES
    assert coco[0]["text"] == "picture number 1, caption 0" and coco[0]["source"] == "coco"
    assert coco[0]["image"]["path"].endswith("train2017/000000000001.jpg")
    vg = corpus.load_visual_genome_regions(files["vg_regions"], files["vg_images"])
    assert len(vg) == 18 and vg[0]["text"] == "region 0 of image 1"
    # Images are found in whichever of Visual Genome's two folders holds them.
    assert vg[17]["image"]["path"].endswith("VG_100K_2/6.jpg") and vg[0]["image"]["path"].endswith("VG_100K/1.jpg")


def test_streamed_shards_split_across_processes_without_duplicates(files):
    stream = corpus.load_coco_captions(files["coco_captions"], files["coco_images"], streaming=True, num_shards=4)
    assert stream.n_shards == 4
    everything = sorted(row["text"] for row in stream)
    parts = [[row["text"] for row in corpus.for_process(stream, rank, 2)] for rank in range(2)]
    assert sorted(parts[0] + parts[1]) == everything and not set(parts[0]) & set(parts[1])
    assert corpus.for_process(stream, 0, 2).n_shards == 2  # whole shards: each process reads its own


def test_mixing_follows_the_weights(files):
    coco = corpus.load_coco_captions(files["coco_captions"], files["coco_images"], streaming=True)
    vg = corpus.load_visual_genome_regions(files["vg_regions"], files["vg_images"], streaming=True)
    mixed = list(corpus.mix_pretraining_sources([coco, vg], [3.0, 1.0], seed=0))
    sources = [row["source"] for row in mixed]
    # Every sample of both sources is seen; COCO is drawn about three times as often.
    assert {row["text"] for row in mixed} >= {row["text"] for row in coco} | {row["text"] for row in vg}
    assert sources.count("coco") > 1.5 * sources.count("visual_genome")
    with pytest.raises(ValueError, match="one non-negative weight per source"):
        corpus.mix_pretraining_sources([coco, vg], [1.0])


def test_webdataset_round_trip_skips_and_counts_bad_images(files, tmp_path):
    coco = corpus.load_coco_captions(files["coco_captions"], files["coco_images"])
    stats = write_webdataset(coco, str(tmp_path / "shards"), prefix="coco", samples_per_shard=5)
    assert stats["samples"] == 16 and stats["skipped"] == 2 and stats["reencoded"] == 0
    assert len(stats["shards"]) == 4 and not list((tmp_path / "shards").glob("*.partial"))
    assert any("000000000098.jpg" in reason for reason in stats["skipped_examples"])
    with tarfile.open(stats["shards"][0]) as archive:
        names = archive.getnames()
        assert names[:3] == ["000000000.jpg", "000000000.txt", "000000000.json"]
        assert json.load(archive.extractfile("000000000.json"))["source"] == "coco"
    # The original JPEG bytes travel unchanged.
    first = tmp_path / "raw" / "train2017" / "000000000001.jpg"
    with tarfile.open(stats["shards"][0]) as archive:
        assert archive.extractfile("000000000.jpg").read() == first.read_bytes()
    stream = corpus.load_webdataset(str(tmp_path / "shards" / "coco-*.tar"))
    assert stream.n_shards == 4
    rows = list(stream)
    assert [row["text"] for row in rows] == [row["text"] for row in coco if row["text"] not in ("corrupt", "gone")]
    assert rows[0]["image"]["bytes"] == first.read_bytes()
    with pytest.raises(FileExistsError, match="already holds 4 shard"):
        write_webdataset(coco, str(tmp_path / "shards"), prefix="coco")


def test_collator_reads_every_source_and_reports_bad_images(files, processor, tmp_path):
    coco = corpus.load_coco_captions(files["coco_captions"], files["coco_images"])
    collator = AshNetsCollator(processor, "pretraining")
    bad = [row for row in coco if row["text"] in ("corrupt", "gone")]
    good = [row for row in coco if row["text"] not in ("corrupt", "gone")]
    batch = collator([good[0], *bad, good[1]])
    assert batch["inputs"]["pixel_values"].shape == (2, 3, 64, 64)
    assert sorted(s.where.rsplit("/", 1)[-1] for s in batch["skipped"]) == ["000000000098.jpg", "000000000099.jpg"]
    write_webdataset(good[:4], str(tmp_path / "wds"))
    rows = list(corpus.load_webdataset(str(tmp_path / "wds" / "*.tar")))
    assert collator(rows)["inputs"]["input_ids"].shape[0] == 4


def test_bad_annotation_files_raise_clear_errors(tmp_path, files):
    broken = tmp_path / "captions.json"
    broken.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}],
                                  "annotations": [{"image_id": 2, "caption": "x"}]}))
    with pytest.raises(ValueError, match="image_id 2, which 'images' does not list"):
        corpus.load_coco_captions(broken, tmp_path)
    with pytest.raises(FileNotFoundError, match="COCO captions file not found"):
        corpus.load_coco_captions(tmp_path / "nope.json", tmp_path)
    regions = tmp_path / "regions.json"
    regions.write_text(json.dumps({"regions": []}))
    with pytest.raises(ValueError, match="not a list"):
        corpus.load_visual_genome_regions(regions, tmp_path)
    (tmp_path / "empty").mkdir()
    with tarfile.open(tmp_path / "empty" / "x.tar", "w"):
        pass
    with pytest.raises(ValueError):
        corpus.load_webdataset(str(tmp_path / "empty" / "x.tar"))


def test_easy_vqa_corpus_has_captions_and_region_phrases():
    rows = corpus.load_easy_vqa_pretraining("train", max_samples=7)
    assert [row["source"] for row in rows] == ["easy_vqa_captions"] * 2 + ["easy_vqa_regions"] * 5
    first = rows[0]["text"]
    assert first.startswith("a ") and " at the " in first
    assert all(row["image"]["path"] == rows[0]["image"]["path"] for row in rows)
    stream = corpus.load_easy_vqa_pretraining("train", streaming=True)
    assert stream.n_shards == corpus.DEFAULT_NUM_SHARDS
