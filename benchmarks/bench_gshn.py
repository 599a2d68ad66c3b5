"""GSHN against ASH-Nets and ViLT where relations matter: the built-in shape scenes (2-5 objects: attribute, count,
relation and held-out-combination questions) and easy-VQA (one object), the same wall-clock budget on 2 CPU cores.

Every model trains from random initialisation with the demo's recipe (AdamW with the package's parameter groups,
lr 1e-3, linear schedule with 5 % warm-up, gradient clipping, batch 64, cross-entropy over the answers, no dropout,
initializer_range 0.05) on tensors held in memory: images processed (and segmented) and questions tokenized once, so
that the budget goes to the models. The budget is in seconds: each run first times 10 training steps (after 3
warm-up steps) and trains for as many steps as fit; run it on a quiet machine. Models: `gshn-tiny` with each
offline segment source (`pixels`: flat-colour regions, exact here; `superpixels`: SLIC), `ashnets-tiny` and
transformers' ViLT with ashnets-tiny's width and the depth closest to its parameter count; all see the same pixels
(96x96 scenes, 64x64 easy-VQA).

Beside every number: the text-only prior (each test question answered with the most frequent training answer to the
same text) and the blank-image control (the same questions about a white image, segmented by the same source).

    python -m benchmarks.bench_gshn --dataset shape-scenes --seeds 0 1 2 --budget_seconds 240
    python -m benchmarks.bench_gshn --dataset easy-vqa --models gshn-tiny/pixels --steps 3618 --eval_points 0.5 1
    python -m benchmarks.bench_gshn --report_only

Writes benchmarks/results/gshn/<name or dataset>/<model>.json (curves per seed; adding seeds trains only the new
ones) and benchmarks/results/gshn.md (mean and worst seed per model, the controls, energy per component, throughput,
and the segment sources' share of inference time).
"""

import argparse
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from transformers import AutoTokenizer, get_scheduler

from benchmarks.bench_easy_vqa import vilt_of_similar_size
from benchmarks.bench_grounding import accuracy_by_type, evaluate  # any split with .batch, .labels, .type_masks
from benchmarks.results_files import stored_runs, write_variant
from modeling_ashnets import (
    AshNetsConfig,
    AshNetsForQuestionAnswering,
    AshNetsImageProcessor,
    GshnConfig,
    GshnForQuestionAnswering,
)
from modeling_ashnets.energy import estimate_energy
from modeling_ashnets.image_processing_gshn import GshnImageProcessor
from modeling_ashnets.training import default_tokenizer_path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RECIPE = {"initializer_range": 0.05, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
          "vqa_loss": "softmax"}
MODELS = ("gshn-tiny/pixels", "gshn-tiny/superpixels", "ashnets-tiny", "vilt")


def dataset_spec(name: str) -> dict:
    """Loader, answer vocabulary, question types and image size of a benchmark data set."""
    if name == "shape-scenes":
        from modeling_ashnets.data.shape_scenes import (
            SHAPE_SCENES_QUESTION_TYPES,
            load_shape_scenes,
            shape_scenes_answers,
        )

        return {"load": load_shape_scenes, "answers": shape_scenes_answers(), "types": SHAPE_SCENES_QUESTION_TYPES,
                "image_size": 96}
    if name == "easy-vqa":
        from modeling_ashnets.data.easy_vqa import easy_vqa_answers, load_easy_vqa

        return {"load": load_easy_vqa, "answers": easy_vqa_answers(),
                "types": ("color", "shape", "yes/no color", "yes/no shape"), "image_size": 64}
    raise ValueError(f"Unknown dataset {name!r}; choose shape-scenes or easy-vqa.")


class VqaTensors:
    """One split as tensors: processed images (I, C, H, W), their segments (I, H, W) when a source is given, token
    ids (Q, L), the image of each question, answer ids and question types. Times the image processing with and
    without segments (the segment sources' cost)."""

    def __init__(self, rows, spec: dict, tokenizer, segment_source: str | None, max_segments: int):
        size = {"height": spec["image_size"], "width": spec["image_size"]}
        paths = list(dict.fromkeys(rows["image"]))
        row = {path: index for index, path in enumerate(paths)}
        images = [Image.open(path).convert("RGB") for path in paths]
        started = time.perf_counter()
        self.pixels = AshNetsImageProcessor(size=size)(images, return_tensors="pt")["pixel_values"]
        self.pixel_seconds_per_image = (time.perf_counter() - started) / len(images)
        self.segment_ids, self.segment_seconds_per_image = None, 0.0
        blank = Image.new("RGB", images[0].size, (255, 255, 255))
        self.blank = {"pixel_values": AshNetsImageProcessor(size=size)([blank], return_tensors="pt")["pixel_values"]}
        if segment_source is not None:
            processor = GshnImageProcessor(size=size, segment_source=segment_source, max_segments=max_segments)
            started = time.perf_counter()
            self.segment_ids = processor(images, return_tensors="pt")["segment_ids"]
            elapsed = (time.perf_counter() - started) / len(images)
            self.segment_seconds_per_image = elapsed - self.pixel_seconds_per_image
            self.blank["segment_ids"] = processor([blank], return_tensors="pt")["segment_ids"]
        tokens = tokenizer(list(rows["question"]), padding=True, truncation=True, max_length=40, return_tensors="pt")
        self.input_ids, self.attention_mask = tokens["input_ids"], tokens["attention_mask"]
        self.token_type_ids = torch.zeros_like(self.input_ids)
        self.image_index = torch.tensor([row[path] for path in rows["image"]])
        answer_ids = {answer: index for index, answer in enumerate(spec["answers"])}
        self.labels = torch.tensor([answer_ids[answers[0]] for answers in rows["answers"]])
        self.questions, self.types = list(rows["question"]), list(rows["question_type"])
        self.type_masks = {kind: torch.tensor([t == kind for t in self.types]) for kind in spec["types"]}

    def __len__(self) -> int:
        return len(self.questions)

    def batch(self, index: torch.Tensor, blank: bool = False) -> dict:
        """Model inputs of the questions `index` (about a white image with `blank`)."""
        texts = {"input_ids": self.input_ids[index], "attention_mask": self.attention_mask[index],
                 "token_type_ids": self.token_type_ids[index]}
        if blank:
            return {**texts, **{name: value.expand(len(index), *value.shape[1:]) for name, value in self.blank.items()}}
        images = self.image_index[index]
        inputs = {**texts, "pixel_values": self.pixels[images]}
        if self.segment_ids is not None:
            inputs["segment_ids"] = self.segment_ids[images]
        return inputs


def text_only_prior(train: VqaTensors, test: VqaTensors) -> dict[str, float]:
    """Each test question answered with the most frequent training answer to the same text (to the same question
    type when the text is new, to any question when the type is: held-out combinations): the best a model can do
    without the image."""
    by_text, by_type, overall = defaultdict(Counter), defaultdict(Counter), Counter(train.labels.tolist())
    for question, kind, label in zip(train.questions, train.types, train.labels.tolist()):
        by_text[question][label] += 1
        by_type[kind][label] += 1
    predictions = [(by_text[question] or by_type[kind] or overall).most_common(1)[0][0]
                   for question, kind in zip(test.questions, test.types)]
    return accuracy_by_type(torch.tensor(predictions), test)


def build_model(name: str, spec: dict, id2label: dict, parameters_of_ashnets: int):
    """A freshly initialised model of the benchmark's rows."""
    labels = {"id2label": id2label, "label2id": {answer: index for index, answer in id2label.items()}}
    if name.startswith("gshn-tiny"):
        config = GshnConfig.from_preset("gshn-tiny", image_size=spec["image_size"], **RECIPE, **labels)
        return GshnForQuestionAnswering(config)
    if name == "ashnets-tiny":
        return AshNetsForQuestionAnswering(
            AshNetsConfig.from_preset("ashnets-tiny", image_size=spec["image_size"], **RECIPE, **labels))
    if name == "vilt":
        return vilt_of_similar_size(parameters_of_ashnets, id2label, spec["image_size"], patch_size=16)
    raise ValueError(f"Unknown model {name!r}; choose from {MODELS}.")


def parameter_groups(model, weight_decay: float = 0.01) -> list[dict]:
    decay = [p for n, p in model.named_parameters() if p.dim() > 1 and "norm" not in n.lower()]
    rest = [p for n, p in model.named_parameters() if not (p.dim() > 1 and "norm" not in n.lower())]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def training_step(model, optimizer, batch: dict, labels: torch.Tensor) -> float:
    loss = nn.functional.cross_entropy(model(**batch).logits, labels)  # one loss for every model
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def seconds_per_step(args, name: str, train: VqaTensors, spec: dict) -> float:
    """One training step's time (10 steps after 3 warm-up steps, with a zero learning rate): the budget's unit.
    All models are timed back to back before any trains, so that later load on the machine changes no model's
    share of the budget."""
    id2label = dict(enumerate(spec["answers"]))
    torch.manual_seed(0)
    model = build_model(name, spec, id2label, reference_parameters(spec)).train()
    optimizer = torch.optim.AdamW(parameter_groups(model), lr=0.0)
    batches = torch.randperm(len(train), generator=torch.Generator().manual_seed(0)).split(args.batch_size)
    for step, index in enumerate(batches[:13]):
        if step == 3:
            started = time.perf_counter()
        training_step(model, optimizer, train.batch(index), train.labels[index])
    return (time.perf_counter() - started) / 10


def reference_parameters(spec: dict) -> int:
    """ashnets-tiny's parameter count on this data set (ViLT's depth is chosen to match it)."""
    with torch.device("meta"):
        model = build_model("ashnets-tiny", spec, dict(enumerate(spec["answers"])), 0)
    return sum(p.numel() for p in model.parameters())


def train_one_seed(args, name: str, seed: int, train: VqaTensors, test: VqaTensors, spec: dict,
                   step_seconds: float) -> dict:
    """Train `name` for the time budget (in steps of `step_seconds`); accuracy per question type at
    `--eval_points` fractions of it."""
    id2label = dict(enumerate(spec["answers"]))
    reference = reference_parameters(spec)
    generator = torch.Generator().manual_seed(seed)

    def batches():
        while True:
            yield from torch.randperm(len(train), generator=generator).split(args.batch_size)[:-1]

    total = args.steps or max(1, int(args.budget_seconds / step_seconds))
    torch.manual_seed(seed)
    model = build_model(name, spec, id2label, reference).train()
    stream = batches()
    optimizer = torch.optim.AdamW(parameter_groups(model), lr=args.learning_rate)
    schedule = get_scheduler("linear", optimizer=optimizer, num_warmup_steps=int(0.05 * total),
                             num_training_steps=total)
    eval_at = {max(1, round(fraction * total)) for fraction in args.eval_points}
    curve, losses, started = [], [], time.perf_counter()
    for step in range(1, total + 1):
        index = next(stream)
        losses.append(training_step(model, optimizer, train.batch(index), train.labels[index]))
        schedule.step()
        if step in eval_at:
            point = {"step": step, "seconds": round(time.perf_counter() - started, 1),
                     "train_loss": sum(losses[-50:]) / len(losses[-50:]), "test": evaluate(model, test),
                     "blank": evaluate(model, test, blank=True)}
            curve.append(point)
            print(f"{name} seed {seed} step {step}/{total}: " + ", ".join(f"{k} {v:.3f}" for k, v in
                  point["test"].items()) + f" | blank {point['blank']['overall']:.3f}", flush=True)
    return {"seed": seed, "steps": total, "seconds_per_step": step_seconds, "curve": curve,
            "parameters": sum(p.numel() for p in model.parameters()), **measure(model, name, test)}


@torch.no_grad()
def measure(model, name: str, test: VqaTensors, batch_size: int = 256) -> dict:
    """Inference samples/s (model only; after a warm-up batch), energy per sample by component (ASH-Nets and GSHN),
    and the segment source's share of inference time (segments / (image processing + model))."""
    model.eval()
    batch_size = min(batch_size, len(test) // 5)
    batches = [test.batch(torch.arange(start, start + batch_size)) for start in range(0, batch_size * 5, batch_size)]
    model(**batches[0])
    started = time.perf_counter()
    for batch in batches[1:]:
        model(**batch)
    forward_seconds = (time.perf_counter() - started) / (batch_size * (len(batches) - 1))
    single = []  # one question at a time, as the pipeline serves requests
    for index in range(21):
        started = time.perf_counter()
        model(**test.batch(torch.tensor([index])))
        single.append(time.perf_counter() - started)
    latency = sorted(single[1:])[len(single[1:]) // 2]
    result = {"inference_samples_per_second": 1.0 / forward_seconds, "single_request_seconds": latency,
              "image_processing_seconds_per_image": test.pixel_seconds_per_image,
              "segment_seconds_per_image": test.segment_seconds_per_image}
    if test.segment_ids is not None:  # what the segments add to an image's processing plus the model's time
        result["segment_share_of_inference"] = test.segment_seconds_per_image / (
            test.pixel_seconds_per_image + forward_seconds)
        result["segment_share_of_single_request"] = test.segment_seconds_per_image / (
            test.pixel_seconds_per_image + latency)
    if name != "vilt":
        report = estimate_energy(model, test.batch(torch.arange(64)))
        result["energy_pj"] = report.energy_pj
        result["firing_rate_per_block"] = report.firing_rate_per_block
    model.train()
    return result


def summarise(runs: list[dict], types) -> dict:
    finals = [run["curve"][-1] for run in runs]
    summary = {}
    for part in ("test", "blank"):
        for key in ("overall", *types):
            values = [final[part][key] for final in finals if key in final[part]]
            if values:
                summary[f"{part}/{key}"] = {"mean": sum(values) / len(values), "worst": min(values)}
    for key in ("steps", "inference_samples_per_second", "segment_share_of_inference",
                "segment_share_of_single_request"):
        values = [run[key] for run in runs if key in run]
        if values:
            summary[key] = {"mean": sum(values) / len(values), "worst": max(values) if "share" in key else min(values)}
    energies = [run["energy_pj"] for run in runs if "energy_pj" in run]
    if energies:
        summary["energy_pj"] = {part: sum(e.get(part, 0.0) for e in energies) / len(energies)
                                for part in sorted({part for e in energies for part in e})}
    return summary


def write_table() -> None:
    """benchmarks/results/gshn.md: per data set, one row per model (mean of seeds, worst in brackets)."""
    lines = []
    for folder in sorted(path for path in (RESULTS / "gshn").iterdir() if path.is_dir()):
        results = {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}
        if not results:
            continue
        types = next(iter(results.values()))["question_types"]
        prior = next(iter(results.values()))["text_only_prior"]
        prior_cells = " | ".join(f"{100 * prior.get(key, 0):.1f}" for key in ("overall", *types))
        arguments = next(iter(results.values()))["arguments"]
        budget = (f"{arguments['steps']} training steps" if arguments.get("steps")
                  else f"{arguments['budget_seconds']:.0f} s of training")
        lines += [f"### {folder.name} ({budget} per model and seed)", "",
                  "| model | seeds | steps | overall | " + " | ".join(types) + " | blank image | "
                  "energy per sample (uJ): cnn / graph / snn / fusion | samples/s | "
                  "segments' share: batched / single |",
                  "| --- " * (len(types) + 8) + "|",
                  f"| text-only prior | - | - | {prior_cells} | - | - | - | - |"]
        for name, result in results.items():
            summary = summarise(result["runs"], types)

            def cell(key):
                value = summary.get(key)
                return "-" if value is None else f"{100 * value['mean']:.1f} ({100 * value['worst']:.1f})"

            energy = summary.get("energy_pj")
            energy_cell = "-" if not energy else " / ".join(
                f"{energy.get(part, 0.0) / 1e6:.2f}" for part in ("cnn", "graph", "snn", "fusion"))
            batched = summary.get("segment_share_of_inference")
            single = summary.get("segment_share_of_single_request")
            share_cell = "-" if batched is None else (
                f"{100 * batched['mean']:.0f} % ({100 * batched['worst']:.0f} %) / "
                f"{100 * single['mean']:.0f} % ({100 * single['worst']:.0f} %)")
            lines.append(
                f"| {result['model']} | {len(result['runs'])} | {summary['steps']['mean']:.0f} | "
                + " | ".join(cell(f"test/{kind}") for kind in ("overall", *types)) + f" | {cell('blank/overall')} | "
                + f"{energy_cell} | {summary['inference_samples_per_second']['mean']:.0f} | {share_cell} |")
        lines.append("")
    lines.append("Accuracy (%) on the test split at the end of the budget: mean over seeds (worst seed in brackets). "
                 "Blank image: the same questions about a white image. Segments' share: the segment source's time per "
                 "image over the image processing and model time per sample (what segmentation adds to inference), "
                 "with the model batched (256) and with one request at a time (the pipeline's case).")
    (RESULTS / "gshn.md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="shape-scenes", choices=("shape-scenes", "easy-vqa"))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget_seconds", type=float, default=240.0, help="training time per model and seed")
    parser.add_argument("--steps", type=int, default=None,
                        help="train every model for this many steps instead of the budget (a recipe's length)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--eval_points", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--max_test_questions", type=int, default=None, help="a smaller test set (screening)")
    parser.add_argument("--name", default=None, help="results folder (default: the dataset's name)")
    parser.add_argument("--report_only", action="store_true", help="rewrite the table from the stored runs")
    args = parser.parse_args(argv)
    if args.report_only:
        write_table()
        return
    torch.set_num_threads(2)
    spec = dataset_spec(args.dataset)
    tokenizer = AutoTokenizer.from_pretrained(default_tokenizer_path())
    train_rows, test_rows = spec["load"]("train"), spec["load"]("test", max_samples=args.max_test_questions)
    splits, max_segments = {}, GshnConfig.from_preset("gshn-tiny").max_segments
    for name in args.models:
        source = name.partition("/")[2] or None
        if source not in splits:
            splits[source] = (VqaTensors(train_rows[:], spec, tokenizer, source, max_segments),
                              VqaTensors(test_rows[:], spec, tokenizer, source, max_segments))
    step_seconds = {name: seconds_per_step(args, name, splits[name.partition("/")[2] or None][0], spec)
                    for name in args.models}
    print("seconds per training step:", {name: round(value, 3) for name, value in step_seconds.items()}, flush=True)
    for name in args.models:
        train, test = splits[name.partition("/")[2] or None]
        arguments = {key: getattr(args, key) for key in ("budget_seconds", "steps", "batch_size", "learning_rate",
                                                          "eval_points", "max_test_questions")}
        path = RESULTS / "gshn" / (args.name or args.dataset) / f"{name.replace('/', '-')}.json"
        runs = stored_runs(path, arguments)
        for seed in args.seeds:
            if seed not in runs:
                runs[seed] = train_one_seed(args, name, seed, train, test, spec, step_seconds[name])
                write_variant(path, {"model": name, "dataset": args.dataset, "arguments": arguments,
                                     "question_types": list(spec["types"]),
                                     "text_only_prior": text_only_prior(train, test)}, runs)
    write_table()


if __name__ == "__main__":
    main()
