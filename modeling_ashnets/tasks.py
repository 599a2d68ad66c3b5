"""The tasks this package trains, evaluates and serves: `TASKS` maps each task's name to its `TaskSpec`.

Why one registry: a task used to be a string checked in about ten places (collator, Hub loader, evaluation, training
loop, CLI, endpoint handler, model card, Auto registration). They all read the task's `TaskSpec` now, so a new task
is an entry here plus the code only it has (its head, data and, where new, its metrics).

Every saved checkpoint folder carries this file next to the model and config code that import it, so it imports the
standard library only: loaders, features, evaluators and predictors are "module.attribute" names inside this package,
imported by `resolve` when first used.
"""

import importlib
from dataclasses import dataclass, field


__all__ = ["TASKS", "ModelCardInfo", "TaskSpec", "get_task", "resolve", "task_of_head"]


@dataclass(frozen=True)
class ModelCardInfo:
    """What the model card of a task's checkpoint says: the Hub `pipeline_tag`, the model-index task (type, name),
    the `eval_results.json` metrics it reports as (key, metric type, metric name), and a usage snippet (`{repo}`)."""

    pipeline_tag: str | None
    task: tuple[str, str] | None
    metrics: tuple[tuple[str, str, str], ...]
    usage: str


@dataclass(frozen=True)
class TaskSpec:
    """One task, as every part of the package sees it.

    Model and serving: `head` (class in modeling_ashnets.py), the transformers `auto_class` it registers for, its own
    `pipeline` (task name, class in pipeline_ashnets.py), the `endpoint` method of handler.py's EndpointHandler and the
    `predictor` function behind `ashnets predict`.

    Rows: the collator reads `image_column` (a list of `images_per_sample` images when more than one) and
    `text_column`; `labels` is "soft_scores" (`labels` + `scores` -> (B, num_labels) targets), "class_id" (`label` ->
    (B,), indices into `label_names`) or None. `drop_last` keeps every training batch full (contrastive losses).

    Data: `loaders` by source ("builtin" is the offline easy-VQA set, "shape-scenes" the offline multi-object scenes
    drawn in code, "files" the official files, "hub" Hub ids); `hub_features` are the rows' columns (the file
    loader's features) and `hub_required` the columns a Hub dataset must give. Evaluation: `evaluator` takes (model,
    loader of collated batches), or, with `evaluates_gallery`, (model, processor, dataset, batch_size=, rerank_k=).
    `card` describes its checkpoints (None: the encoder's card).
    """

    name: str
    head: str
    auto_class: str | None = None
    pipeline: tuple[str, str] | None = None
    endpoint: str | None = None
    predictor: str | None = None
    image_column: str = "image"
    text_column: str = "text"
    images_per_sample: int = 1
    labels: str | None = None
    label_names: tuple[str, ...] = ()
    drop_last: bool = False
    loaders: dict[str, str] = field(default_factory=dict)
    hub_features: str | None = None
    hub_required: tuple[str, ...] = ()
    evaluator: str | None = None
    evaluates_gallery: bool = False
    card: ModelCardInfo | None = None

    def head_for(self, family: str) -> str:
        """The head's class name in a model family: "Gshn" -> "GshnForQuestionAnswering" (every family's heads are
        named `<Family>For<Task>`, as ASH-Nets' are)."""
        return family + self.head[self.head.index("For"):]

    def loader(self, source: str):
        """The data loader of `source` ("builtin", "files", "hub", ...), imported."""
        if source not in self.loaders:
            raise ValueError(f"The {self.name!r} task has no {source!r} loader; it has {sorted(self.loaders)}.")
        return resolve(self.loaders[source])


def resolve(reference: str):
    """A "module.attribute" name inside this package (e.g. "evaluation.evaluate_vqa") -> the object, imported now."""
    module, _, attribute = reference.rpartition(".")
    return getattr(importlib.import_module(f"{__package__}.{module}"), attribute)


_DOWNSTREAM_HUB = "data.hub.load_hub_dataset"

TASKS: dict[str, TaskSpec] = {
    "vqa": TaskSpec(
        name="vqa",
        head="AshNetsForQuestionAnswering",
        auto_class="AutoModelForVisualQuestionAnswering",
        # transformers 5 has no visual-question-answering task any more; ours takes its name.
        pipeline=("visual-question-answering", "AshNetsVisualQuestionAnsweringPipeline"),
        endpoint="_vqa",
        predictor="cli._predict_vqa",
        text_column="question",
        labels="soft_scores",
        loaders={"builtin": "data.easy_vqa.load_easy_vqa", "shape-scenes": "data.shape_scenes.load_shape_scenes",
                 "files": "data.vqa_v2.load_vqa_v2", "hub": _DOWNSTREAM_HUB},
        hub_features="data.vqa_v2.VQA_V2_FEATURES",
        hub_required=("question_id", "image", "question"),
        evaluator="evaluation.evaluate_vqa",
        card=ModelCardInfo(
            pipeline_tag="visual-question-answering",
            task=("visual-question-answering", "Visual question answering"),
            metrics=(("eval_accuracy", "accuracy", "VQA accuracy (%)"),),
            usage='vqa = pipeline(model="{repo}", trust_remote_code=True)\n'
                  'vqa("image.png", "what color is the shape?", top_k=3)  # [{{"answer": ..., "score": ...}}, ...]',
        ),
    ),
    "retrieval": TaskSpec(
        name="retrieval",
        head="AshNetsForRetrieval",
        auto_class="AutoModelForZeroShotImageClassification",
        pipeline=("image-text-retrieval", "AshNetsImageTextRetrievalPipeline"),
        endpoint="_retrieval",
        predictor="cli._predict_retrieval",
        text_column="caption",
        drop_last=True,
        loaders={"builtin": "data.easy_vqa.load_easy_vqa_retrieval",
                 "shape-scenes": "data.shape_scenes.load_shape_scenes_retrieval",
                 "files": "data.karpathy.load_karpathy", "hub": _DOWNSTREAM_HUB},
        hub_features="data.karpathy.KARPATHY_IMAGE_FEATURES",
        hub_required=("image", "captions"),
        evaluator="evaluation.evaluate_retrieval",
        evaluates_gallery=True,
        card=ModelCardInfo(
            pipeline_tag="zero-shot-image-classification",
            task=("image-text-retrieval", "Image-text retrieval"),
            metrics=(("eval_tr_r@1", "recall", "image-to-text R@1 (%)"),
                     ("eval_ir_r@1", "recall", "text-to-image R@1 (%)")),
            usage='classify = pipeline("zero-shot-image-classification", model="{repo}", trust_remote_code=True)\n'
                  'classify("image.png", candidate_labels=["a red circle", "a blue square"])\n'
                  'retrieve = pipeline(model="{repo}", trust_remote_code=True)  # image-text ranking\n'
                  'retrieve(images=["a.png", "b.png"], texts=["a red circle", "a blue square"])',
        ),
    ),
    "entailment": TaskSpec(
        name="entailment",
        head="AshNetsForEntailment",
        endpoint="_entailment",
        predictor="cli._predict_entailment",
        text_column="hypothesis",
        labels="class_id",
        label_names=("entailment", "neutral", "contradiction"),  # SNLI-VE's classes, in its label order
        loaders={"builtin": "data.easy_vqa.load_easy_vqa_entailment",
                 "shape-scenes": "data.shape_scenes.load_shape_scenes_entailment",
                 "files": "data.snli_ve.load_snli_ve", "hub": _DOWNSTREAM_HUB},
        hub_features="data.snli_ve.SNLI_VE_FEATURES",
        hub_required=("image", "hypothesis", "label"),
        evaluator="evaluation.evaluate_classification",
        card=ModelCardInfo(
            pipeline_tag=None,
            task=("visual-entailment", "Visual entailment"),
            metrics=(("eval_accuracy", "accuracy", "accuracy (%)"),),
            usage='from transformers import AutoProcessor\n'
                  'from transformers.dynamic_module_utils import get_class_from_dynamic_module\n'
                  'model = get_class_from_dynamic_module("modeling_ashnets.AshNetsForEntailment", "{repo}")'
                  '.from_pretrained("{repo}")\n'
                  'processor = AutoProcessor.from_pretrained("{repo}", trust_remote_code=True)',
        ),
    ),
    "nlvr2": TaskSpec(
        name="nlvr2",
        head="AshNetsForImagesAndTextClassification",
        image_column="images",
        text_column="sentence",
        images_per_sample=2,
        labels="class_id",
        label_names=("False", "True"),
        loaders={"builtin": "data.easy_vqa.load_easy_vqa_nlvr2", "files": "data.nlvr2.load_nlvr2",
                 "hub": _DOWNSTREAM_HUB},
        hub_features="data.nlvr2.NLVR2_FEATURES",
        hub_required=("images", "sentence", "label"),
        evaluator="evaluation.evaluate_classification",
        card=ModelCardInfo(
            pipeline_tag=None,
            task=("nlvr2", "NLVR2-style image-pair reasoning"),
            metrics=(("eval_accuracy", "accuracy", "accuracy (%)"),),
            usage='from transformers.dynamic_module_utils import get_class_from_dynamic_module\nmodel = '
                  'get_class_from_dynamic_module("modeling_ashnets.AshNetsForImagesAndTextClassification", "{repo}")'
                  '.from_pretrained("{repo}")',
        ),
    ),
    "pretraining": TaskSpec(
        name="pretraining",
        head="AshNetsForPreTraining",
        drop_last=True,
        loaders={
            "builtin": "data.pretraining.load_easy_vqa_pretraining",
            "coco": "data.pretraining.load_coco_captions",
            "visual_genome": "data.pretraining.load_visual_genome_regions",
            "webdataset": "data.pretraining.load_webdataset",
            "hub": "data.pretraining.load_pretraining_hub",
        },
    ),
}


def get_task(name: str) -> TaskSpec:
    """The `TaskSpec` called `name`; a ValueError naming the known tasks otherwise."""
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}; choose one of {sorted(TASKS)}.")
    return TASKS[name]


def task_of_head(head: str) -> TaskSpec | None:
    """The task whose head class is called `head` (a config's `architectures[0]`, of any family: ASH-Nets' or GSHN's
    `...ForQuestionAnswering`); None for the bare encoder."""
    if "For" not in head:
        return None
    family = head[:head.index("For")]
    return next((task for task in TASKS.values() if task.head_for(family) == head), None)
