"""Stands in for transformers' `tests/utils/test_configuration_utils.py`: `PreTrainedConfig`'s common arguments,
each with a value other than its default, which `ConfigTester.check_config_arguments_init` sets and reads back."""

config_common_kwargs = {
    "return_dict": False,
    "output_hidden_states": True,
    "output_attentions": True,
    "dtype": "float16",
    "chunk_size_feed_forward": 5,
    "architectures": ["AshNetsModel"],
    "id2label": {0: "label"},
    "label2id": {"label": "0"},
    "problem_type": "regression",
}
