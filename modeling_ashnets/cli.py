"""`ashnets`: predict with, evaluate, export and publish ASH-Nets checkpoints from the command line."""

import argparse
import json
import os
import sys
import tempfile

from .tasks import TASKS, resolve, task_of_head


# config.json model types served by the zero-shot commands (zero_shot.py) instead of a task head.
ZERO_SHOT_FAMILIES = ("spikeclip",)


DESCRIPTION = """\
ASH-Nets from the command line. A MODEL is a checkpoint folder written by a training script
(e.g. runs/easy-vqa after `make demo`) or an exported repository folder.

  ashnets predict  --model runs/easy-vqa --image shape.png --question "what color is the shape?"
  ashnets predict  --model runs/retrieval --image shape.png --labels "a red circle" "a blue triangle"
  ashnets predict  --model runs/ve --image shape.png --hypothesis "there is a circle"
  ashnets evaluate --model runs/easy-vqa --max_samples 1000
  ashnets evaluate --model runs/gshn-vqa --dataset shape-scenes
  ashnets energy   --model runs/easy-vqa --twin runs/easy-vqa-ann-twin
  ashnets export   --model runs/easy-vqa --repo_id you/ashnets-tiny-easy-vqa --output exported/
  ashnets push     --model runs/easy-vqa --repo_id you/ashnets-tiny-easy-vqa --private
  ashnets export-nir --model runs/easy-vqa --output exported/ashnets-snn.nir

SpikeCLIP checkpoints (config.json model_type "spikeclip") classify zero-shot:

  ashnets predict  --model runs/spikeclip --image shape.png --labels "red circle,blue triangle" --template "a {}"
  ashnets predict  --model runs/spikeclip --image shape.png --prompt_set easy-vqa
  ashnets evaluate --model runs/spikeclip --prompt_set easy-vqa --split test --max_samples 500
  ashnets evaluate --model runs/spikeclip --dataset uoft-cs/cifar10 --output runs/spikeclip/eval_results.json
  ashnets export   --model runs/spikeclip --repo_id you/spikeclip-tiny --output exported-spikeclip/

`push` exports and uploads in one step (log in first with `hf auth login`, or set HF_TOKEN).
Run `ashnets COMMAND --help` for each command's options.
"""


def _model_type(model_dir: str) -> str | None:
    """config.json's `model_type` (the model family), or None where the folder has no readable config (loading it
    then says what is missing)."""
    try:
        with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as handle:
            return json.load(handle).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def _is_zero_shot(model_dir: str) -> bool:
    """Dual encoders that classify zero-shot (SpikeCLIP), rather than ASH-Nets task heads."""
    return _model_type(model_dir) in ZERO_SHOT_FAMILIES


def _load(model_dir: str):
    """(model in eval mode, processor, architecture) of a checkpoint folder."""
    from .hub_export import load_checkpoint

    model, processor, architecture = load_checkpoint(model_dir)
    return model.eval(), processor, architecture


def predict(args) -> object:
    """Runs the `predictor` of the checkpoint's task (tasks.py); zero-shot classification for SpikeCLIP."""
    if _is_zero_shot(args.model):
        return _predict_zero_shot(args)
    if args.prompt_set or args.template:
        raise SystemExit("--prompt_set and --template are for zero-shot (SpikeCLIP) checkpoints; "
                         f"{args.model} is not one.")
    model, processor, architecture = _load(args.model)
    task = task_of_head(architecture)
    if task is None or task.predictor is None:
        predictable = ", ".join(name for name, spec in TASKS.items() if spec.predictor)
        raise SystemExit(f"`predict` takes a checkpoint of one of the tasks {predictable}; {args.model} holds "
                         f"{architecture}.")
    return resolve(task.predictor)(model, processor, args)


def _predict_vqa(model, processor, args) -> list[dict]:
    from .pipeline_ashnets import AshNetsVisualQuestionAnsweringPipeline

    if not args.question:
        raise SystemExit("This is a VQA checkpoint: pass --question.")
    vqa = AshNetsVisualQuestionAnsweringPipeline(model=model, processor=processor)
    return vqa(args.image, args.question, top_k=args.top_k)


def _predict_retrieval(model, processor, args) -> list[dict]:
    import torch

    from .pipeline_ashnets import AshNetsImageTextRetrievalPipeline

    if not args.labels:
        raise SystemExit("This is a retrieval checkpoint: pass --labels (two or more descriptions).")
    retrieve = AshNetsImageTextRetrievalPipeline(model=model, processor=processor)
    logits = torch.tensor(retrieve(images=[args.image], texts=args.labels)["logits_per_image"][0])
    scores = logits.softmax(dim=-1)
    return [{"label": args.labels[i], "score": float(scores[i])} for i in scores.argsort(descending=True)[: args.top_k]]


def _split_labels(labels: list[str]) -> list[str]:
    """--labels as one comma-separated string ("red circle,blue triangle") or as several arguments."""
    return [part.strip() for item in labels for part in item.split(",") if part.strip()]


def _predict_zero_shot(args) -> list[dict]:
    """Scores of --labels (or a prompt set's classes) for one image, best first: one text embedding per label, the
    mean over the templates (--template, else the prompt set's, else transformers' pipeline default)."""
    from .image_inputs import load_image_reference
    from .zero_shot import DEFAULT_TEMPLATE, classify_images, get_prompt_set

    if args.question or args.hypothesis:
        raise SystemExit("This is a zero-shot (SpikeCLIP) checkpoint: pass --labels or --prompt_set, not --question "
                         "or --hypothesis.")
    prompts = get_prompt_set(args.prompt_set) if args.prompt_set else None
    if args.labels is not None:
        labels = _split_labels(args.labels)
        if not labels:
            raise ValueError("--labels is empty: pass candidate labels, e.g. --labels \"red circle,blue triangle\".")
    elif prompts is not None:
        labels = list(prompts.class_names)
    else:
        raise SystemExit("This is a zero-shot (SpikeCLIP) checkpoint: pass --labels \"red circle,blue triangle\" "
                         "or --prompt_set easy-vqa.")
    templates = args.template or (prompts.templates if prompts else (DEFAULT_TEMPLATE,))
    model, processor, _ = _load(args.model)
    return classify_images(model, processor, [load_image_reference(args.image)], labels, templates,
                           top_k=args.top_k)[0]


def _predict_entailment(model, processor, args) -> list[dict]:
    import torch

    from .image_inputs import load_image_reference

    if not args.hypothesis:
        raise SystemExit("This is a visual entailment checkpoint: pass --hypothesis.")
    batch = processor(images=load_image_reference(args.image), text=args.hypothesis, return_tensors="pt")
    with torch.no_grad():
        probabilities = model(**batch).logits[0].softmax(dim=-1)
    return [{"label": model.config.id2label[i], "score": float(p)} for i, p in enumerate(probabilities.tolist())]


# The offline test sets a task checkpoint can be evaluated on (`--dataset`; "builtin" is easy-VQA).
BUILT_IN_SOURCES = ("builtin", "shape-scenes")


def evaluate(args) -> dict:
    """Evaluates on a built-in test set of the checkpoint's task (its "builtin" loader, easy-VQA, or `--dataset
    shape-scenes`, with its `evaluator`)."""
    from .data.collators import AshNetsCollator
    from .evaluation import evaluate_task

    if _is_zero_shot(args.model):
        return _write_metrics(_evaluate_zero_shot(args), args.output)
    source = args.dataset or "builtin"
    if args.prompt_set or args.template or args.split != "test" or source not in BUILT_IN_SOURCES:
        raise SystemExit("--prompt_set, --template, --split and Hub or file --dataset are for zero-shot (SpikeCLIP) "
                         f"checkpoints; {args.model} is evaluated on a built-in test set of its task: --dataset "
                         f"{' or '.join(BUILT_IN_SOURCES)}.")
    model, processor, architecture = _load(args.model)
    task = task_of_head(architecture)
    if task is None or task.evaluator is None:
        raise SystemExit(f"{args.model} holds {architecture}, which has no evaluation; pass a task checkpoint.")
    if source not in task.loaders:
        raise SystemExit(f"The {task.name} task has no {source!r} test set; it has "
                         f"{sorted(set(task.loaders) & set(BUILT_IN_SOURCES))}.")
    dataset = task.loader(source)("test", max_samples=args.max_samples)
    collator = AshNetsCollator(processor, task.name, num_labels=model.config.num_labels)
    metrics = evaluate_task(task.name, model, processor, dataset, collator, args.batch_size)
    return _write_metrics(metrics, args.output)


def _write_metrics(metrics: dict, output: str | None) -> dict:
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            json.dump(metrics, handle, indent=2, sort_keys=True)
            handle.write("\n")
    return metrics


def _evaluate_zero_shot(args) -> dict:
    """Zero-shot top-1 / top-5 accuracy over the prompt set's classes, keys prefixed `eval_` as the training runs write
    them (so that the JSON can serve as a checkpoint's eval_results.json), with the data set, split and templates."""
    from .zero_shot import evaluate_zero_shot, get_prompt_set, load_zero_shot_dataset, prompt_set_of_dataset

    prompts = get_prompt_set(args.prompt_set or prompt_set_of_dataset(args.dataset))
    dataset = load_zero_shot_dataset(prompts, args.dataset, args.split, args.max_samples)
    model, processor, _ = _load(args.model)
    templates = tuple(args.template) if args.template else prompts.templates
    metrics = evaluate_zero_shot(model, processor, dataset, prompts, batch_size=args.batch_size, templates=templates)
    described = {"prompt_set": prompts.name, "dataset": args.dataset or prompts.hub_id or prompts.name,
                 "split": args.split, "templates": list(templates)}
    return {f"eval_{key}": value for key, value in {**metrics, **described}.items()}


def energy(args) -> dict:
    from .data.easy_vqa import load_easy_vqa
    from .energy import estimate_energy, estimate_spikeclip_energy

    test = load_easy_vqa("test", max_samples=args.num_samples)
    results = {}
    for name, folder in (("model", args.model), ("twin", args.twin)):
        if folder is None:
            continue
        model, processor, _ = _load(folder)
        batch = processor(images=list(test["image"]), text=list(test["question"]), return_tensors="pt")
        # A dual encoder (SpikeCLIP) is counted per tower on the images and the questions as texts.
        estimate = estimate_spikeclip_energy if _is_zero_shot(folder) else estimate_energy
        results[name] = estimate(model, dict(batch)).to_dict()
    if args.twin and _is_zero_shot(args.model):
        model_pj, twin_pj = (results[name]["energy_pj"].get("image_encoder", 0.0) for name in ("model", "twin"))
        results["image_encoder_energy_ratio_model_over_twin"] = model_pj / twin_pj if twin_pj else None
    elif args.twin:  # None when the twin has no visual semantic branch (use_snn=False): nothing to compare with
        twin_branch = results["twin"]["visual_semantic_branch_pj"]
        results["branch_energy_ratio_model_over_twin"] = (
            results["model"]["visual_semantic_branch_pj"] / twin_branch if twin_branch else None
        )
    return results


def export(args) -> dict:
    from .hub_export import export_checkpoint

    folder = export_checkpoint(args.model, args.output, args.repo_id, dataset=args.dataset, overwrite=args.overwrite)
    return {"exported": folder, "files": sorted(os.listdir(folder))}


def push(args) -> dict:
    from .hub_export import export_checkpoint, push_folder

    with tempfile.TemporaryDirectory(prefix="ashnets-export-") as staging:
        folder = args.folder
        if folder is None:
            folder = export_checkpoint(args.model, args.export_dir or os.path.join(staging, "repo"), args.repo_id,
                                       dataset=args.dataset, overwrite=args.overwrite)
        url = push_folder(folder, args.repo_id, private=args.private, revision=args.revision,
                          commit_message=args.commit_message, token=args.token)
    return {"repo_id": args.repo_id, "commit": url}


def export_nir(args) -> list[dict]:
    """Writes the checkpoint's spiking parts as NIR graphs (nir_export.py); prints what each graph reads."""
    from .hub_export import load_model
    from .nir_export import export_nir as write_graphs

    return write_graphs(load_model(args.model).eval(), args.output, dt=args.dt)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ashnets", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("predict", help="answer a question, rank labels or judge a hypothesis for one image",
                            description="Run a checkpoint on one image. The checkpoint's head decides what to pass: "
                                        "VQA --question, retrieval --labels, entailment --hypothesis; SpikeCLIP "
                                        "(zero-shot classification) --labels and/or --prompt_set, optionally "
                                        "--template.")
    p.add_argument("--model", required=True, help="checkpoint folder")
    p.add_argument("--image", required=True, help="image file, http(s) URL or base64 string")
    p.add_argument("--question", help="for a VQA checkpoint")
    p.add_argument("--labels", nargs="+", help="for a retrieval checkpoint: candidate descriptions; for SpikeCLIP: "
                                               "class names, comma-separated (\"red circle,blue triangle\") or as "
                                               "separate arguments")
    p.add_argument("--prompt_set", help="SpikeCLIP: score the classes of a prompt set (easy-vqa, cifar10, cifar100) "
                                        "with its templates (unless --labels / --template say otherwise)")
    p.add_argument("--template", nargs="+", help="SpikeCLIP: prompt template(s) with {} for the label, e.g. \"a {}\"; "
                                                 "several are averaged (default: the prompt set's, else "
                                                 "\"This is a photo of {}.\" as transformers' pipeline)")
    p.add_argument("--hypothesis", help="for an entailment checkpoint: a statement about the image")
    p.add_argument("--top_k", type=int, default=5, help="how many answers or labels to print (default 5)")
    p.set_defaults(run=predict)

    p = commands.add_parser("evaluate", help="evaluate a checkpoint on a built-in test set of its task",
                            description="Evaluate a task checkpoint on a built-in test set of its task (easy-VQA, or "
                                        "the shape scenes with --dataset shape-scenes). "
                                        "For VQA v2, COCO, SNLI-VE or NLVR2, use the example scripts' evaluation. "
                                        "A SpikeCLIP checkpoint gets zero-shot top-1 / top-5 accuracy over a prompt "
                                        "set's classes: the built-in easy-VQA colour-shape set, or --dataset.")
    p.add_argument("--model", required=True, help="checkpoint folder")
    p.add_argument("--max_samples", type=int, default=None, help="evaluate on the first N test samples only")
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--output", help="also write the metrics to this JSON file (a SpikeCLIP checkpoint's "
                                    "eval_results.json, for its model card)")
    p.add_argument("--prompt_set", help="SpikeCLIP: easy-vqa (default), cifar10 or cifar100: class names, templates "
                                        "and the data set's image / label columns")
    p.add_argument("--dataset", help="task checkpoints: builtin (easy-VQA, the default) or shape-scenes; SpikeCLIP: "
                                     "a Hub id (uoft-cs/cifar10), save_to_disk folder, Parquet file or folder of data "
                                     "files with the prompt set's columns (default: the built-in easy-VQA set, or the "
                                     "prompt set's Hub id)")
    p.add_argument("--split", default="test", help="SpikeCLIP: the split to evaluate (default test)")
    p.add_argument("--template", nargs="+", help="SpikeCLIP: prompt template(s) with {} replacing the prompt set's")
    p.set_defaults(run=evaluate)

    def add_export_options(p, required: bool):
        p.add_argument("--model", required=required, help="checkpoint folder written by a training script")
        p.add_argument("--repo_id", required=True, help="Hub repository name, e.g. you/ashnets-tiny-easy-vqa")
        p.add_argument("--dataset", help="evaluation data set for the model card when the run did not record it "
                                         "(easy-vqa, vqa-v2, cifar10, ...)")
        p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")

    p = commands.add_parser("energy", help="estimate energy per sample (45 nm: MAC 4.6 pJ, AC 0.9 pJ) and spike rates",
                            description="Operations, energy by component and firing rates per sample, averaged over "
                                        "easy-VQA test questions; with --twin, against the ANN twin.")
    p.add_argument("--model", required=True, help="checkpoint folder")
    p.add_argument("--twin", help="the ANN twin's checkpoint folder (snn_neuron='relu', T=1), for the comparison")
    p.add_argument("--num_samples", type=int, default=64)
    p.set_defaults(run=energy)

    p = commands.add_parser("export", help="write a self-contained Hub repository folder (code, weights, card)",
                            description="Write the repository folder: remote code for every head, processor files, "
                                        "safetensors weights, the pipeline, handler.py and a model card filled from "
                                        "the run's eval_results.json.")
    add_export_options(p, required=True)
    p.add_argument("--output", required=True, help="folder to write (must be empty or new)")
    p.set_defaults(run=export)

    p = commands.add_parser("push", help="export a checkpoint and upload it to the Hub in one step",
                            description="Export --model (or take an exported --folder) and upload it with "
                                        "huggingface_hub: create_repo, then upload_folder. HF_ENDPOINT picks the Hub.")
    add_export_options(p, required=False)
    p.add_argument("--folder", help="an already exported folder to upload instead of --model")
    p.add_argument("--export_dir", help="keep the exported folder here (default: a temporary folder)")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--revision", help="branch to push to (created if missing; default main)")
    p.add_argument("--commit_message", help="commit message (default: 'Upload ... with ashnets')")
    p.add_argument("--token", help="Hub token (default: the logged-in token or HF_TOKEN)")
    p.set_defaults(run=push)

    p = commands.add_parser("export-nir", help="write the spiking parts as NIR graphs for neuromorphic hardware",
                            description="Export the spiking parts of a checkpoint (ASH-Nets' and GSHN's spiking "
                                        "encoder; SpikeCLIP's text encoder, tokenizer stages and block MLPs) as NIR "
                                        "graphs, norms folded into the synapses. One part: --output itself; several: "
                                        "<output stem>-<part>.nir each. Needs pip install 'ashnets[nir]'.")
    p.add_argument("--model", required=True, help="checkpoint folder")
    p.add_argument("--output", required=True, help="graph file to write, e.g. graph.nir")
    p.add_argument("--dt", type=float, default=1e-4, help="seconds per time step in NIR's continuous time "
                                                          "(default 1e-4, spikingjelly's)")
    p.set_defaults(run=export_nir)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "push" and not (args.model or args.folder):
        raise SystemExit("ashnets push: pass --model (a checkpoint to export) or --folder (an exported folder).")
    try:
        result = args.run(args)
    except (FileNotFoundError, FileExistsError, ValueError, ImportError) as error:
        print(f"ashnets {args.command}: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
