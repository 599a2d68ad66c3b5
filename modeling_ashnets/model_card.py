"""Model cards for exported checkpoints, filled from the checkpoint itself and the run that produced it.

Why generated: a card's numbers must be the run's numbers. The architecture comes from `config.json`; the evaluation
results (also as `model-index` metadata, which the Hub shows and indexes) from `eval_results.json`; the training
steps and recipe from `train_results.json`. Where a file is missing the card says so instead of inventing a value.
"""

import json
import math
import os

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .configuration_spikeclip import SpikeClipConfig
from .tasks import ModelCardInfo, task_of_head


__all__ = ["TEMPLATE_PATH", "build_model_card"]

TEMPLATE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates", "model_card.md")
SPIKECLIP_TEMPLATE_PATH = os.path.join(os.path.dirname(TEMPLATE_PATH), "model_card_spikeclip.md")

# The card of a checkpoint without a task's card (the encoder, pre-training); each task's is its `TaskSpec.card`.
_ENCODER = ModelCardInfo(
    pipeline_tag="feature-extraction",
    task=None,
    metrics=(),
    usage='features = pipeline("image-feature-extraction", model="{repo}", trust_remote_code=True)\n'
          'features("image.png")',
)
_DATASETS = {
    "easy-vqa": ("easy-vqa", "easy-VQA (PyPI easy-vqa 1.0, 64x64 shapes, 13 answers)", "test"),
    "vqa-v2": ("HuggingFaceM4/VQAv2", "VQA v2", "validation"),
}


def _read_json(folder: str, name: str) -> dict | None:
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _describe_training(trained: dict | None) -> str:
    if trained is None:
        return "No `train_results.json` came with this checkpoint: its training run is not recorded here."
    arguments = trained.get("arguments", {})
    recipe = ", ".join(
        f"{name} {arguments[name]}" for name in ("preset", "dataset", "num_train_epochs", "per_device_train_batch_size",
                                                 "learning_rate", "warmup_ratio", "lr_scheduler_type",
                                                 "config_overrides", "mixed_precision", "seed", "model_name_or_path")
        if arguments.get(name) not in (None, "")
    )
    lines = [
        f"Task `{trained.get('task', 'unknown')}`, {trained['train_steps']} optimizer steps in "
        f"{trained['train_runtime'] / 60:.1f} minutes on {trained.get('num_processes', 1)} process(es) "
        f"({trained['train_samples_per_second']:.0f} samples/s), {trained.get('train_skipped_samples', 0)} samples "
        "skipped as unreadable.",
    ]
    if recipe:
        lines.append(f"Recipe (the script's arguments): {recipe}.")
    else:
        lines.append("The run did not record its arguments.")
    return "\n\n".join(lines)


def _evaluation(
    head: ModelCardInfo, metrics: dict | None, dataset: tuple | None, measured_by: str = "by the training run"
) -> tuple[str, list[EvalResult]]:
    if metrics is None:
        return "Not evaluated: no `eval_results.json` came with this checkpoint.", []
    rows = ["| metric | value |", "| --- | --- |"]
    for key, value in sorted(metrics.items()):
        if key.startswith("eval_") and isinstance(value, float):
            rows.append(f"| {key[5:]} | {100 * value:.2f} % |")
        elif key.startswith("eval_") and isinstance(value, int):
            rows.append(f"| {key[5:]} | {value} |")
    where = f"on the {dataset[1]} {dataset[2]} split" if dataset else "on the run's evaluation split"
    results = []
    if head.task and dataset:
        for key, metric_type, metric_name in head.metrics:
            if key in metrics:
                results.append(EvalResult(
                    task_type=head.task[0], task_name=head.task[1], dataset_type=dataset[0],
                    dataset_name=dataset[1], dataset_split=dataset[2], metric_type=metric_type,
                    metric_name=metric_name, metric_value=round(100 * metrics[key], 2),
                ))
    return f"Measured {where} {measured_by} (`eval_results.json`):\n\n" + "\n".join(rows), results


def build_model_card(
    folder: str,
    repo_id: str,
    dataset: str | None = None,
    energy: str | None = None,
    limitations: str | None = None,
) -> ModelCard:
    """The card of the checkpoint in `folder` (config, weights, and optionally eval_results.json and
    train_results.json), to be published as `repo_id`. `dataset` names the evaluation data set when the run did not
    record it (`easy-vqa`, `vqa-v2`, or any name)."""
    config = _read_json(folder, "config.json")
    if config is None:
        raise FileNotFoundError(f"{folder} has no config.json: is it a checkpoint folder written by save_pretrained?")
    if config.get("model_type") == "spikeclip":
        return _build_spikeclip_card(folder, config, repo_id, dataset, energy, limitations)
    architecture = (config.get("architectures") or ["AshNetsModel"])[0]
    gshn = config.get("model_type") == "gshn"
    task = task_of_head(architecture)
    head = task.card if task and task.card else _ENCODER
    metrics, trained = _read_json(folder, "eval_results.json"), _read_json(folder, "train_results.json")
    dataset = dataset or (trained or {}).get("arguments", {}).get("dataset")
    dataset_info = _DATASETS.get(dataset, (dataset, dataset, "evaluation")) if dataset else None
    evaluation, results = _evaluation(head, metrics, dataset_info)
    backbone = config.get("backbone_config", {})
    card_data = ModelCardData(
        library_name="transformers",
        license="apache-2.0",
        tags=["custom_code", "ashnets", *(["gshn", "graph-neural-network"] if gshn else []), "spiking-neural-network",
              "vision-language"],
        pipeline_tag=head.pipeline_tag,
        datasets=[dataset_info[0]] if dataset_info else None,
        model_name=repo_id.split("/")[-1],
        eval_results=results or None,
    )
    grid = -(-config["image_size"] // 32) // config.get("visual_pool_size", 1)
    visual_tokens = (f"up to {config['max_segments']} segment nodes and a global node" if gshn
                     else f"{grid * grid} visual tokens")
    parameters = _parameter_count(folder, config)
    summary = (
        f"A{' GSHN' if gshn else 'n ASH-Nets'} checkpoint (`{architecture}`) trained by this project's scripts."
        if metrics or trained else
        f"A{' GSHN' if gshn else 'n ASH-Nets'} `{architecture}` with **randomly initialised weights**: an "
        "architecture to train, not a model "
        "to use. Pre-training at this size has not been run by this project (see Limitations)."
    )
    return ModelCard.from_template(
        card_data,
        template_path=TEMPLATE_PATH,
        model_name=repo_id.split("/")[-1],
        summary=summary,
        usage=head.usage.format(repo=repo_id),
        architecture=architecture,
        model_description=GSHN_DESCRIPTION if gshn else ASHNETS_DESCRIPTION,
        backbone=f"ResNet ({config.get('backbone')}, stage widths {backbone.get('hidden_sizes')})",
        image_size=config["image_size"],
        visual_tokens=visual_tokens,
        snn_num_layers=config["snn_num_layers"] if config.get("use_snn", True) else 0,
        snn_hidden_size=config["snn_hidden_size"],
        snn_time_steps=config["snn_time_steps"],
        snn_input_mode=config["snn_input_mode"],
        num_hidden_layers=config["num_hidden_layers"],
        hidden_size=config["hidden_size"],
        num_attention_heads=config["num_attention_heads"],
        parameters=f"{parameters / 1e6:.2f} M",
        intended_use=(
            "Research on hybrid spiking / artificial vision-language models: a starting point for fine-tuning, a "
            "baseline to compare against, and a test of the pipeline, handler and loading code. "
            + ("Its task data set is a synthetic toy (easy-VQA: one coloured shape per 64x64 image), so it answers "
               "questions about such images only; it is not a general VQA model. " if dataset == "easy-vqa" else "")
            + "Not for decisions about people or for any use where a wrong answer causes harm."
        ),
        training=_describe_training(trained),
        evaluation=evaluation,
        energy=energy or "Not measured for this checkpoint yet (the energy estimate is a later milestone of the project).",
        limitations=limitations or (
            "The paper's results are not reproduced: no ImageNet ResNet or BERT-base weights, COCO or Visual Genome "
            "were available where this project is developed, so checkpoints are small and trained from scratch. "
            "Numbers above are what this checkpoint measured, on the data named, nothing more."
        ),
    )


ASHNETS_DESCRIPTION = (
    "ASH-Nets (Chen et al., arXiv 2308.09455) is a vision-language encoder. Its visual side has two parts: a CNN, the "
    "*visual concrete encoder*, which gives continuous features, and a spiking network, the *semantic abstract "
    "encoder*, built from LIF neurons with threshold-dependent batch norm. The spiking network integrates those "
    "features over T time steps, and its firing rates are the discrete features. A learned per-channel *summary "
    "ratio* adds the spike rates back into the visual tokens. A BERT-shaped single-stream transformer then fuses the "
    "visual tokens with the text. This implementation reads the paper where it is silent (see the package README, "
    "\"Model\")."
)
GSHN_DESCRIPTION = (
    "GSHN (Zhang et al., arXiv 2501.19069) is ASH-Nets' successor: its visual tokens are panoptic segments. Each "
    "segment's mask pools the CNN's feature map into a graph node; a graph attention network over the nodes gives the "
    "continuous features and a spiking network (LIF neurons, threshold-dependent batch norm) over the same nodes the "
    "discrete ones, merged as `V' = r * E_snn + F_gat` with a learned ratio. A BERT-shaped single-stream transformer "
    "fuses the nodes, with their geometry, and the text. The processor computes the segments (`segment_ids`): SLIC "
    "superpixels, flat-colour regions or a panoptic model. This implementation reads the paper where it is silent "
    "(see the package's docs/model.md, section 8)."
)


# SpikeCLIP: zero-shot image classification; the data sets its prompt sets (zero_shot.py) name.
_SPIKECLIP = ModelCardInfo(
    pipeline_tag="zero-shot-image-classification",
    task=("zero-shot-image-classification", "Zero-shot image classification"),
    metrics=(("eval_accuracy", "accuracy", "zero-shot top-1 accuracy (%)"),
             ("eval_top5_accuracy", "accuracy", "zero-shot top-5 accuracy (%)")),
    usage='classify = pipeline("zero-shot-image-classification", model="{repo}", trust_remote_code=True)\n'
          'classify("image.png", candidate_labels=["red circle", "blue triangle"], hypothesis_template="a {{}}")\n'
          '# [{{"score": ..., "label": "red circle"}}, {{"score": ..., "label": "blue triangle"}}]',
)
_ZERO_SHOT_DATASETS = {
    "easy-vqa": ("easy-vqa", "easy-VQA colour-shape classes (24 classes, 64x64 shapes)", "test"),
    "cifar10": ("uoft-cs/cifar10", "CIFAR-10", "test"),
    "uoft-cs/cifar10": ("uoft-cs/cifar10", "CIFAR-10", "test"),
    "cifar100": ("uoft-cs/cifar100", "CIFAR-100", "test"),
    "uoft-cs/cifar100": ("uoft-cs/cifar100", "CIFAR-100", "test"),
}


def _build_spikeclip_card(folder, config, repo_id, dataset, energy, limitations) -> ModelCard:
    """The card of a SpikeCLIP checkpoint: zero-shot image classification, its two spiking towers, and the accuracies
    of `eval_results.json` (as `ashnets evaluate --output` or a training run writes them)."""
    metrics, trained = _read_json(folder, "eval_results.json"), _read_json(folder, "train_results.json")
    evaluated = (metrics or {}).get("eval_dataset")  # `ashnets evaluate` records its data set and prompt set
    if evaluated not in _ZERO_SHOT_DATASETS:  # a local folder: name the data set of its prompt set instead
        evaluated = (metrics or {}).get("eval_prompt_set")
    dataset = dataset or (trained or {}).get("arguments", {}).get("dataset") or evaluated
    dataset_info = _ZERO_SHOT_DATASETS.get(dataset, (dataset, dataset, "evaluation")) if dataset else None
    if dataset_info and isinstance((metrics or {}).get("eval_split"), str):
        dataset_info = (*dataset_info[:2], metrics["eval_split"])
    measured_by = "by `ashnets evaluate`" if "eval_prompt_set" in (metrics or {}) else "by the training run"
    evaluation, results = _evaluation(_SPIKECLIP, metrics, dataset_info, measured_by)
    if metrics is not None and isinstance(metrics.get("eval_templates"), list):
        templates = ", ".join(f"`{template}`" for template in metrics["eval_templates"])
        evaluation += f"\n\nPrompt templates (text embeddings averaged per class): {templates}."
    architecture = (config.get("architectures") or ["SpikeClipModel"])[0]
    vision, text = config.get("vision_config", {}), config.get("text_config", {})
    card_data = ModelCardData(
        library_name="transformers",
        license="apache-2.0",
        tags=["custom_code", "ashnets", "spikeclip", "spiking-neural-network", "zero-shot-image-classification",
              "vision-language"],
        pipeline_tag=_SPIKECLIP.pipeline_tag,
        datasets=[dataset_info[0]] if dataset_info else None,
        model_name=repo_id.split("/")[-1],
        eval_results=results or None,
    )
    tokens = SpikeClipConfig.from_dict(config).vision_config.num_tokens
    if trained:
        summary = (f"A SpikeCLIP checkpoint (`{architecture}`) for **zero-shot image classification**, trained by this "
                   "project's scripts: give it an image and candidate labels, it scores each label.")
    elif metrics:
        summary = (f"A SpikeCLIP checkpoint (`{architecture}`) for **zero-shot image classification**: give it an "
                   "image and candidate labels, it scores each label. Its training is not recorded here (no "
                   "`train_results.json`); its measured accuracy is under Evaluation.")
    else:
        summary = (f"A SpikeCLIP `{architecture}` with no recorded training or evaluation (no `train_results.json`, no "
                   "`eval_results.json`): treat it as an architecture for zero-shot image classification to train "
                   "(e.g. randomly initialised), not as a model to use (see Limitations).")
    return ModelCard.from_template(
        card_data,
        template_path=SPIKECLIP_TEMPLATE_PATH,
        model_name=repo_id.split("/")[-1],
        summary=summary,
        usage=_SPIKECLIP.usage.format(repo=repo_id),
        vision=(f"spiking tokenizer (channels {vision.get('tokenizer_channels')}) on {vision.get('image_size')}x"
                f"{vision.get('image_size')} images ({tokens} tokens), spiking self-attention blocks: "
                f"{vision.get('num_hidden_layers')} of width {vision.get('hidden_size')}, "
                f"{vision.get('num_attention_heads')} heads"),
        text=(f"{text.get('max_position_embeddings')} tokens x {text.get('embedding_size')}-wide embeddings, a "
              f"{text.get('intermediate_size')}-neuron spiking layer, vocabulary {text.get('vocab_size')}"),
        projection_dim=config.get("projection_dim"),
        neurons=f"image: {_neurons(vision)}; text: {_neurons(text)}",
        parameters=f"{_parameter_count(folder, config) / 1e6:.2f} M",
        intended_use=(
            "Research on spiking vision-language models: zero-shot classification of images into classes named at "
            "run time, a baseline for energy comparisons with its ANN twin, and a test of the loading, pipeline and "
            "handler code. "
            + ("It is trained and evaluated on a synthetic toy (easy-VQA: one coloured shape per 64x64 image), so it "
               "names colours and shapes of such images only. " if dataset == "easy-vqa" else "")
            + "Not for decisions about people or for any use where a wrong label causes harm."
        ),
        training=_describe_training(trained),
        evaluation=evaluation,
        energy=energy or "Not measured for this checkpoint yet.",
        limitations=limitations or (
            "SpikeCLIP's results are not reproduced: its CLIP teachers and ImageNet / CIFAR training runs were not "
            "available where this project is developed, so checkpoints are small. A zero-shot score depends on the "
            "prompt template: the card reports the templates it was measured with. Numbers above are what this "
            "checkpoint measured, on the data named, nothing more."
        ),
    )


def _neurons(tower: dict) -> str:
    if tower.get("neuron") == "relu":
        return "ReLU, T = 1 (the ANN twin)"
    return f"LIF (tau {tower.get('tau')}, threshold {tower.get('v_threshold')}), T = {tower.get('time_steps')}"


def _parameter_count(folder: str, config: dict) -> int:
    """Parameters stored in the folder's weights, or, without weights, those of the configured model (built on the
    meta device, so that nothing is allocated)."""
    path = os.path.join(folder, "model.safetensors")
    if os.path.isfile(path):
        from safetensors import safe_open

        with safe_open(path, framework="pt") as weights:
            return sum(math.prod(weights.get_slice(name).get_shape()) for name in weights.keys())
    import torch

    from . import modeling_ashnets, modeling_gshn, modeling_spikeclip
    from .configuration_ashnets import AshNetsConfig
    from .configuration_gshn import GshnConfig
    from .configuration_spikeclip import SpikeClipConfig

    module, config_class, default = {
        "spikeclip": (modeling_spikeclip, SpikeClipConfig, "SpikeClipModel"),
        "gshn": (modeling_gshn, GshnConfig, "GshnModel"),
    }.get(config.get("model_type"), (modeling_ashnets, AshNetsConfig, "AshNetsModel"))
    architecture = (config.get("architectures") or [default])[0]
    values = {k: v for k, v in config.items() if k not in ("architectures", "auto_map", "model_type", "transformers_version")}
    with torch.device("meta"):
        model = getattr(module, architecture)(config_class(**values))
    return sum(parameter.numel() for parameter in model.parameters())
