"""Do the derived easy-VQA tasks read the image? Entailment, NLVR2-style and retrieval, trained by the example
scripts themselves (the same code path as a user's run) over several seeds, from scratch or from a checkpoint of
another task, each beside the text-only prior and the same test set asked about blank images.

* entailment: "there is a red circle" is entailed, contradicted or left open ("... made of paper") by the image;
* nlvr2: "exactly one image contains a triangle" is true or false of a pair of images;
* retrieval: captions ("a small red circle at the top left") against images, R@1 both ways.

The text-only prior answers each test statement with the label most often given to the same text in training (to any
text when the text is new): the best a model can do without the images. On blank (white) images a model that reads
the images loses what the images told it; a model that reads only the text keeps its accuracy. Retrieval has no
blank control (a gallery of identical images ranks at chance by construction).

    python -m benchmarks.bench_derived --task entailment --name entailment-scratch --epochs 10
    python -m benchmarks.bench_derived --task entailment --name entailment-from-vqa --init runs/easy-vqa --epochs 3

Writes benchmarks/results/derived/<name>.json (metrics per seed) and benchmarks/results/derived.md (one row per
variant: mean and worst over seeds). Models go to runs/derived/<name>/seed-<seed>/.
"""

import argparse
import importlib
import json
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from benchmarks.results_files import stored_runs, write_variant

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# The demo's recipe (examples/demo_easy_vqa.py) less what is VQA's own (the answer loss, question-type balance).
RECIPE = ["--preset", "ashnets-tiny", "--per_device_train_batch_size", "64", "--per_device_eval_batch_size", "256",
          "--learning_rate", "1e-3", "--warmup_ratio", "0.05", "--image_cache_size", "5000", "--logging_steps", "50",
          "--config_overrides", "initializer_range=0.05,hidden_dropout_prob=0,attention_probs_dropout_prob=0"]
# task -> (example script, loader, text column, image column, headline metrics)
TASKS = {
    "entailment": ("run_entailment", "load_easy_vqa_entailment", "hypothesis", "image", ["eval_accuracy"]),
    "nlvr2": ("run_nlvr2", "load_easy_vqa_nlvr2", "sentence", "images", ["eval_accuracy"]),
    "retrieval": ("run_retrieval", "load_easy_vqa_retrieval", "caption", "image", ["eval_tr_r@1", "eval_ir_r@1"]),
}


def load_split(task: str, split: str):
    from modeling_ashnets.data import easy_vqa

    return getattr(easy_vqa, TASKS[task][1])(split)


def text_only_prior(task: str) -> float | None:
    """Accuracy of the most frequent training label of the same text (None for retrieval)."""
    if task == "retrieval":
        return None
    text = TASKS[task][2]
    train, test = load_split(task, "train"), load_split(task, "test")
    by_text, overall = defaultdict(Counter), Counter(train["label"])
    for sentence, label in zip(train[text], train["label"]):
        by_text[sentence][label] += 1
    guesses = [(by_text[sentence] or overall).most_common(1)[0][0] for sentence in test[text]]
    return sum(guess == label for guess, label in zip(guesses, test["label"])) / len(guesses)


def blank_image_metrics(task: str, output_dir: Path) -> dict:
    """The saved model on the test set with every image replaced by a white one."""
    from PIL import Image
    from transformers import AutoProcessor

    from modeling_ashnets import AshNetsForEntailment, AshNetsForImagesAndTextClassification
    from modeling_ashnets.data.collators import AshNetsCollator
    from modeling_ashnets.evaluation import evaluate_task

    model_class = AshNetsForEntailment if task == "entailment" else AshNetsForImagesAndTextClassification
    model = model_class.from_pretrained(output_dir).eval()
    processor = AutoProcessor.from_pretrained(output_dir, backend="pil")
    test, column = load_split(task, "test"), TASKS[task][3]
    with tempfile.TemporaryDirectory() as folder:
        white = str(Path(folder) / "white.png")
        Image.new("RGB", (64, 64), (255, 255, 255)).save(white)  # easy-VQA's images are 64 x 64
        blank = test.map(lambda row: {column: white if column == "image" else [white] * len(row[column])})
        collator = AshNetsCollator(processor, task, num_labels=model.config.num_labels)
        return evaluate_task(task, model, processor, blank, collator, batch_size=256)


def run_seed(args, seed: int) -> dict:
    script = importlib.import_module(f"examples.{TASKS[args.task][0]}")
    output_dir = ROOT / "runs" / "derived" / args.name / f"seed-{seed}"
    arguments = [*RECIPE, "--seed", str(seed), "--num_train_epochs", str(args.epochs), "--output_dir", str(output_dir)]
    if args.init:
        arguments += ["--model_name_or_path", args.init, "--ignore_mismatched_sizes"]
    result = script.main([*arguments, *args.script_args])
    metrics, trained = result.eval_metrics, result.train_metrics
    run = {"seed": seed, "steps": trained["train_steps"], "train_seconds": trained["train_runtime"], "test": metrics}
    if args.task != "retrieval":
        run["blank"] = blank_image_metrics(args.task, output_dir)
    print(f"seed {seed}: " + ", ".join(f"{key} {metrics[key]:.4f}" for key in TASKS[args.task][4])
          + (f" | blank {run['blank']['eval_accuracy']:.4f}" if "blank" in run else ""), flush=True)
    return run


def write_table() -> None:
    header = ("| variant | task | start | seeds | steps | result: mean (worst) | per class (mean) | blank images | "
              "text-only prior |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
    rows = []
    for path in sorted((RESULTS / "derived").glob("*.json")):
        result = json.loads(path.read_text())
        runs, task = result["runs"], result["task"]
        cells = []
        for key in TASKS[task][4]:
            values = [run["test"][key] * 100 for run in runs]
            cells.append(f"{key.removeprefix('eval_')} {sum(values) / len(values):.1f} ({min(values):.1f})")
        classes = sorted(key for key in runs[0]["test"] if key.startswith("eval_accuracy_"))
        per_class = ", ".join(
            f"{key.removeprefix('eval_accuracy_')} {sum(run['test'][key] for run in runs) / len(runs) * 100:.1f}"
            for key in classes) or "-"
        blank = ([run["blank"]["eval_accuracy"] * 100 for run in runs] if "blank" in runs[0] else None)
        prior = result["text_only_prior"]
        rows.append(f"| {result['name']} | {task} | {result['arguments']['init'] or 'scratch'} | {len(runs)} | "
                    f"{runs[0]['steps']} | {'; '.join(cells)} | {per_class} | "
                    f"{f'{sum(blank) / len(blank):.1f}' if blank else '-'} | "
                    f"{f'{prior * 100:.1f}' if prior is not None else '-'} |")
    note = ("\nFull derived test sets (entailment 3,000 statements, NLVR2 2,500 pairs, retrieval 318 images and their "
            "captions); accuracy or R@1 in %, mean over seeds (worst in brackets). Start: scratch, or the checkpoint "
            "the run began from (`--model_name_or_path ... --ignore_mismatched_sizes`).\n")
    (RESULTS / "derived.md").write_text(header + "\n".join(rows) + "\n" + note)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=sorted(TASKS))
    parser.add_argument("--name", help="the variant's name (its results file and table row)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--init", default=None, help="a checkpoint of another task to start from (e.g. runs/easy-vqa)")
    parser.add_argument("--report_only", action="store_true", help="train nothing: rewrite the table")
    parser.add_argument("script_args", nargs="*", help="more options for the example script (after --)")
    args = parser.parse_args(argv)
    if not args.report_only:
        if not (args.task and args.name):
            parser.error("--task and --name are required unless --report_only is given")
        prior = text_only_prior(args.task)
        path = RESULTS / "derived" / f"{args.name}.json"
        arguments = {**vars(args), "recipe": RECIPE}
        runs = stored_runs(path, {key: arguments[key] for key in ("task", "epochs", "init", "script_args", "recipe")})
        runs.update({seed: run_seed(args, seed) for seed in args.seeds if seed not in runs})
        write_variant(path, {"name": args.name, "task": args.task, "arguments": arguments, "text_only_prior": prior},
                      runs)
    write_table()
    print((RESULTS / "derived.md").read_text())


if __name__ == "__main__":
    main()
