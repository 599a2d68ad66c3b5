"""Data for the four downstream tasks as 🤗 Datasets: the official file formats, Hub ids, and sets that run offline
(derived from easy-VQA, and the multi-object shape scenes drawn in code). Every loader of a task returns the same
columns, so collators and scripts are shared."""

from .collators import TASK_COLUMNS, AshNetsCollator, SkippedSample, decode_image_cell
from .easy_vqa import (
    easy_vqa_answers,
    easy_vqa_class_names,
    easy_vqa_image_facts,
    load_easy_vqa,
    load_easy_vqa_classification,
    load_easy_vqa_entailment,
    load_easy_vqa_nlvr2,
    load_easy_vqa_retrieval,
)
from .hub import HUB_DATASETS, load_hub_dataset
from .karpathy import load_karpathy
from .nlvr2 import load_nlvr2
from .shape_scenes import (
    load_shape_scenes,
    load_shape_scenes_entailment,
    load_shape_scenes_retrieval,
    shape_scenes_answers,
    shape_scenes_panoptic_json,
)
from .snli_ve import load_snli_ve
from .vqa_v2 import build_answer_vocabulary, load_vqa_v2, vqa_soft_score


__all__ = [
    "HUB_DATASETS",
    "TASK_COLUMNS",
    "AshNetsCollator",
    "SkippedSample",
    "build_answer_vocabulary",
    "decode_image_cell",
    "easy_vqa_answers",
    "easy_vqa_class_names",
    "easy_vqa_image_facts",
    "load_easy_vqa",
    "load_easy_vqa_classification",
    "load_easy_vqa_entailment",
    "load_easy_vqa_nlvr2",
    "load_easy_vqa_retrieval",
    "load_hub_dataset",
    "load_karpathy",
    "load_nlvr2",
    "load_shape_scenes",
    "load_shape_scenes_entailment",
    "load_shape_scenes_retrieval",
    "load_snli_ve",
    "load_vqa_v2",
    "shape_scenes_answers",
    "shape_scenes_panoptic_json",
    "vqa_soft_score",
]
