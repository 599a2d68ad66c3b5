"""The task registry: every TaskSpec agrees with the head, Auto class, pipeline, collator, loaders and evaluator it
names, and an unknown task name is a clear error."""

import pytest
import torch
import transformers
from transformers.pipelines import PIPELINE_REGISTRY

import modeling_ashnets
from conftest import tiny_config
from modeling_ashnets.configuration_ashnets import ASHNETS_AUTO_MAP
from modeling_ashnets.data.collators import AshNetsCollator
from modeling_ashnets.data.easy_vqa import easy_vqa_answers
from modeling_ashnets.endpoint_handler import EndpointHandler
from modeling_ashnets.evaluation import evaluate_task
from modeling_ashnets.tasks import TASKS, get_task, resolve, task_of_head


def _num_labels(task) -> int:
    return len(easy_vqa_answers()) if task.labels == "soft_scores" else len(task.label_names) or 2


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_names_what_exists_and_is_registered(name):
    task = get_task(name)
    head = getattr(modeling_ashnets, task.head)
    assert issubclass(head, modeling_ashnets.AshNetsPreTrainedModel) and task_of_head(task.head) is task
    assert tuple(getattr(head, "class_names", task.label_names)) == task.label_names
    if task.auto_class:
        assert getattr(transformers, task.auto_class)._model_mapping[modeling_ashnets.AshNetsConfig] is head
        assert ASHNETS_AUTO_MAP[task.auto_class] == f"modeling_ashnets.{task.head}"
    if task.pipeline:
        pipeline_name, pipeline_class = task.pipeline
        registered = PIPELINE_REGISTRY.check_task(pipeline_name)[1]
        assert registered["impl"] is getattr(modeling_ashnets, pipeline_class)
    for reference in [*task.loaders.values(), task.hub_features, task.evaluator, task.predictor]:
        if reference:
            assert resolve(reference) is not None, reference
    if task.endpoint:
        assert callable(getattr(EndpointHandler, task.endpoint))


@pytest.mark.parametrize("name", sorted(TASKS))
def test_collator_takes_the_rows_of_the_builtin_loader(name, processor):
    task = get_task(name)
    split, options = ("train", {"pairs": True}) if name == "retrieval" else ("test", {})
    rows = list(task.loader("builtin")(split, max_samples=2, **options))
    batch = AshNetsCollator(processor, name, num_labels=_num_labels(task))(rows)
    assert batch["skipped"] == []
    pixels = batch["inputs"]["pixel_values"]
    assert pixels.shape[:-3] == ((2, task.images_per_sample) if task.images_per_sample > 1 else (2,))
    assert ("labels" in batch["inputs"]) == (task.labels is not None)


@pytest.mark.parametrize("name", sorted(name for name, task in TASKS.items() if task.evaluator))
def test_evaluator_scores_a_tiny_model(name, processor):
    task = get_task(name)
    labels = easy_vqa_answers() if task.labels == "soft_scores" else task.label_names or ("no", "yes")
    torch.manual_seed(0)
    model = getattr(modeling_ashnets, task.head)(tiny_config(id2label=dict(enumerate(labels)))).eval()
    dataset = task.loader("builtin")("test", max_samples=4)
    collator = AshNetsCollator(processor, name, num_labels=model.config.num_labels)
    metrics = evaluate_task(name, model, processor, dataset, collator, batch_size=4)
    assert {key for key, _, _ in task.card.metrics} <= set(metrics)


def test_unknown_task_names_the_known_ones(processor):
    known = r"\['entailment', 'nlvr2', 'pretraining', 'retrieval', 'vqa'\]"
    with pytest.raises(ValueError, match=rf"Unknown task 'captioning'; choose one of {known}"):
        get_task("captioning")
    with pytest.raises(ValueError, match="Unknown task 'captioning'"):
        AshNetsCollator(processor, "captioning")
    assert task_of_head("AshNetsModel") is None
