"""transformers' own common tests (`ModelTesterMixin`, `ConfigTester`, `ProcessorTesterMixin`,
`ImageProcessingTestMixin`), run against every ASH-Nets class: the contract transformers users rely on.

Their files come from transformers' source distribution at the installed version, fetched once into the cache by
`scripts/fetch_transformers_tests.py` (`make test` does it). Each skip below says why it holds for ASH-Nets."""

import importlib.util
import os
import sys
import unittest
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

import modeling_ashnets as ashnets


def _import_common_tests():
    """Import the cached `transformers_tests` package by its path (its files use package-relative imports)."""
    version = importlib.metadata.version("transformers")
    root = Path(os.environ.get("ASHNETS_CACHE", Path.home() / ".cache" / "ashnets")) / f"transformers-tests-{version}"
    init = root / "transformers_tests" / "__init__.py"
    if not init.is_file():
        pytest.fail(f"transformers' common tests are not in {root}: run `make test` (or "
                    "`python scripts/fetch_transformers_tests.py` once, with PyPI reachable).", pytrace=False)
    if "transformers_tests" not in sys.modules:
        spec = importlib.util.spec_from_file_location("transformers_tests", init,
                                                      submodule_search_locations=[str(init.parent)])
        package = importlib.util.module_from_spec(spec)
        sys.modules["transformers_tests"] = package
        spec.loader.exec_module(package)


_import_common_tests()
from transformers_tests.test_configuration_common import ConfigTester  # noqa: E402
from transformers_tests.test_modeling_common import ModelTesterMixin, floats_tensor, ids_tensor  # noqa: E402

VOCAB_SIZE = 99


class AshNetsModelTester:
    """Tiny configs and inputs for the common tests (`parent` is the unittest.TestCase)."""

    def __init__(self, parent, batch_size=2, seq_length=7, num_images=1, image_size=64):
        self.parent = parent
        self.batch_size, self.seq_length, self.num_images, self.image_size = batch_size, seq_length, num_images, image_size
        config = self.get_config()
        self.hidden_size = config.hidden_size
        self.num_hidden_layers = config.num_hidden_layers
        self.num_attention_heads = config.num_attention_heads
        self.vocab_size = VOCAB_SIZE
        self.is_training = True

    def get_config(self):
        return tiny_config(vocab_size=VOCAB_SIZE, mask_token_id=4, num_labels=3)

    @property
    def num_visual_tokens(self):
        return self.get_config().num_visual_tokens if hasattr(self.get_config(), "num_visual_tokens") else 4

    def prepare_config_and_inputs_for_common(self):
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size)
        input_ids[:, 0], input_ids[:, -1] = 2, 3
        pixel_shape = [self.batch_size] + ([self.num_images] if self.num_images > 1 else []) + [3, self.image_size,
                                                                                                 self.image_size]
        inputs = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "pixel_values": floats_tensor(pixel_shape),
        }
        return self.get_config(), inputs


class AshNetsModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (ashnets.AshNetsModel, ashnets.AshNetsForQuestionAnswering, ashnets.AshNetsForEntailment,
                         ashnets.AshNetsForRetrieval, ashnets.AshNetsForPreTraining)
    test_resize_embeddings = False
    test_torch_exportable = False

    def setUp(self):
        self.model_tester = AshNetsModelTester(self)
        self.config_tester = ConfigTester(self, config_class=ashnets.AshNetsConfig, hidden_size=37)

    def test_config(self):
        self.config_tester.run_common_tests()


class AshNetsForImagesAndTextClassificationTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (ashnets.AshNetsForImagesAndTextClassification,)
    test_resize_embeddings = False
    test_torch_exportable = False

    def setUp(self):
        self.model_tester = AshNetsModelTester(self, num_images=2)
