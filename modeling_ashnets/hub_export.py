"""Exporting a trained checkpoint as a self-contained Hub repository folder, and uploading it.

Why a step of its own: a training run's output folder is enough for this package, but a Hub repository must work for
someone who has only transformers: remote code for every class its `auto_map` names, the processor, the head's
pipeline, the Inference Endpoints handler and a model card whose numbers come from the run. `export_checkpoint`
writes all of that from the run's folder (re-saving the model through `save_pretrained`, so that the code next to
the weights is this package's), and `push_folder` uploads it with huggingface_hub.
"""

import json
import os
import shutil

from transformers import AutoProcessor

from . import modeling_ashnets, modeling_gshn, modeling_spikeclip
from .model_card import build_model_card


__all__ = ["export_checkpoint", "load_checkpoint", "load_model", "push_folder"]

HANDLER_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "endpoint_handler.py")
RUN_RECORDS = ("eval_results.json", "train_results.json")


# The model module and default class of each model family (config.json's `model_type`).
FAMILIES = {"ashnets": (modeling_ashnets, "AshNetsModel"), "spikeclip": (modeling_spikeclip, "SpikeClipModel"),
            "gshn": (modeling_gshn, "GshnModel")}


def load_model(model_dir: str):
    """The model of a checkpoint folder (any family and head), without its processor."""
    model_class, _ = _model_class(model_dir)
    return model_class.from_pretrained(model_dir)


def load_checkpoint(model_dir: str):
    """(model, processor, architecture name) of a checkpoint folder written by a training script (ASH-Nets, GSHN or
    SpikeCLIP), with this package's classes; clear errors when the folder lacks its config or its processor."""
    model_class, architecture = _model_class(model_dir)
    if not os.path.isfile(os.path.join(model_dir, "processor_config.json")):
        raise FileNotFoundError(f"{model_dir} has no processor_config.json: save the processor next to the model "
                                "(the training scripts do).")
    processor = AutoProcessor.from_pretrained(model_dir, backend="pil")
    return model_class.from_pretrained(model_dir), processor, architecture


def _model_class(model_dir: str):
    """(this package's class for the folder's config.json, its name)."""
    config_file = os.path.join(model_dir, "config.json")
    if not os.path.isfile(config_file):
        raise FileNotFoundError(f"{model_dir} has no config.json: pass a folder written by save_pretrained "
                                "(e.g. the --output_dir of a training script).")
    with open(config_file, encoding="utf-8") as handle:
        config = json.load(handle)
    model_type = config.get("model_type", "ashnets")
    if model_type not in FAMILIES:
        raise ValueError(f"{model_dir} holds a {model_type!r} model; this package loads {sorted(FAMILIES)}.")
    module, default = FAMILIES[model_type]
    architecture = (config.get("architectures") or [default])[0]
    model_class = getattr(module, architecture, None)
    if model_class is None:
        raise ValueError(f"{model_dir} holds a {architecture}, which is not a class of {module.__name__}.")
    return model_class, architecture


def export_checkpoint(
    model_dir: str, output_dir: str, repo_id: str, dataset: str | None = None, overwrite: bool = False
) -> str:
    """Write the repository folder for the checkpoint in `model_dir` (a `save_pretrained` folder with a processor)
    to `output_dir`, with a model card for `repo_id`. Returns `output_dir`."""
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise FileExistsError(f"{output_dir} is not empty: choose a new folder or pass overwrite=True.")
    model, processor, _ = load_checkpoint(model_dir)
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        shutil.rmtree(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    for name in RUN_RECORDS:
        if os.path.isfile(os.path.join(model_dir, name)):
            shutil.copyfile(os.path.join(model_dir, name), os.path.join(output_dir, name))
    shutil.copyfile(HANDLER_SOURCE, os.path.join(output_dir, "handler.py"))
    build_model_card(output_dir, repo_id, dataset=dataset).save(os.path.join(output_dir, "README.md"))
    return output_dir


def push_folder(
    folder: str,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
) -> str:
    """Create `repo_id` if needed (private or public), create the branch `revision` if it is not `main`, upload
    `folder` to it in one commit. Returns the commit URL. The Hub address comes from `HF_ENDPOINT`."""
    from huggingface_hub import HfApi

    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise FileNotFoundError(f"{folder} has no config.json: export the checkpoint first (`ashnets export`).")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    commit = api.upload_folder(
        folder_path=folder, repo_id=repo_id, revision=revision,
        commit_message=commit_message or f"Upload {os.path.basename(os.path.normpath(folder))} with ashnets",
    )
    return commit.commit_url
