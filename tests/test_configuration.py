import pytest

from modeling_ashnets import AshNetsConfig
from modeling_ashnets.configuration_ashnets import ASHNETS_AUTO_MAP


def test_base_preset_matches_the_paper():
    config = AshNetsConfig.from_preset("ashnets-base")
    assert config.backbone == "resnet-152"
    assert config.backbone_config.depths == [3, 8, 36, 3]
    assert config.backbone_config.layer_type == "bottleneck"
    assert (config.snn_time_steps, config.num_hidden_layers, config.hidden_size) == (10, 12, 768)
    assert config.vocab_size == 30522
    assert config.backbone_out_channels == 2048


def test_tiny_preset_and_overrides():
    config = AshNetsConfig.from_preset("ashnets-tiny", snn_time_steps=2, num_hidden_layers=1)
    assert config.image_size == 64 and config.num_visual_tokens == 4
    assert config.snn_time_steps == 2 and config.num_hidden_layers == 1
    # Naming a standard backbone drops the preset's custom CNN.
    assert AshNetsConfig.from_preset("ashnets-tiny", backbone="resnet-18").backbone_config.depths == [2, 2, 2, 2]


def test_unknown_preset():
    with pytest.raises(ValueError, match="Unknown AshNetsConfig preset 'ashnets-huge'"):
        AshNetsConfig.from_preset("ashnets-huge")


def test_round_trip(tmp_path):
    config = AshNetsConfig.from_preset("ashnets-tiny", id2label={0: "yes", 1: "no"}, use_summary_ratio=False)
    config.save_pretrained(tmp_path)
    loaded = AshNetsConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert loaded.backbone_config.hidden_sizes == [32, 64, 128, 256]
    assert loaded.id2label == {0: "yes", 1: "no"} and loaded.use_summary_ratio is False
    assert loaded.auto_map == ASHNETS_AUTO_MAP


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"hidden_size": 100}, "must be divisible by num_attention_heads"),
        ({"snn_time_steps": 0}, r"snn_time_steps \(T\) must be >= 1"),
        ({"backbone": "vgg-16"}, "Unknown backbone 'vgg-16'"),
        ({"backbone_config": {"model_type": "vit"}}, "Unknown backbone model_type 'vit'"),
        ({"backbone": "resnet-custom"}, "needs an explicit backbone_config"),
        ({"snn_input_mode": "poisson"}, "Unknown snn_input_mode 'poisson'"),
        ({"snn_surrogate": "relu"}, "Unknown snn_surrogate 'relu'"),
        ({"summary_ratio_init": -0.5}, "summary_ratio_init must be >= 0"),
        ({"hidden_dropout_prob": 1.5}, r"hidden_dropout_prob must be in \[0, 1\)"),
        ({"snn_tau": 1.0}, "snn_tau must be > 1"),
        ({"snn_v_threshold": 0.0}, "must be above snn_v_reset"),
        ({"num_hidden_layers": 0}, "num_hidden_layers must be >= 1"),
        ({"vqa_loss": "focal"}, "Unknown vqa_loss 'focal'"),
        ({"contrastive_summary": "cls"}, "Unknown contrastive_summary 'cls'"),
    ],
)
def test_validation_errors(overrides, message):
    with pytest.raises(Exception, match=message) as error:
        AshNetsConfig(**overrides)
    # transformers' strict dataclasses wrap a validator's ValueError in StrictDataclassClassValidationError.
    cause = error.value if isinstance(error.value, ValueError) else error.value.__cause__
    assert isinstance(cause, ValueError), type(error.value)
