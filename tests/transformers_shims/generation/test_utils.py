"""Stands in for transformers' `tests/generation/test_utils.py`: no ASH-Nets class generates text."""


class GenerationTesterMixin:
    pass
