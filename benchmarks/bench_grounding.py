"""Does the model read the image? easy-VQA accuracy per question type over training steps, over several seeds,
beside two controls: the same questions on a blank image, and the text-only prior.

Question types (`easy_vqa_question_type`): color ("what color is the shape?"), shape ("what shape is in the
image?"), yes/no color ("is there a red shape?") and yes/no shape ("is there not a circle?"). The text-only prior
answers each test question with the answer most often given to the same question text in training (the best any
model can do without the image); a model that reads the image beats it, and on a blank image falls back to it.

The training loop is the demo's (AdamW with the package's parameter groups, linear schedule with 5 % warm-up,
gradient clipping, batch 64, lr 1e-3) on tensors held in memory: images processed and questions tokenized once, so
that a run spends its time in the model. The defaults are the recipe before this benchmark (4 epochs of the natural
question mix, ViLT's BCE); `make demo`'s recipe is `--balance type --loss ce --epochs 6`. Each variant runs over the
same seeds:

    python -m benchmarks.bench_grounding --name demo-recipe --balance type --loss ce --epochs 6 --seeds 0 1 2
    python -m benchmarks.bench_grounding --name screen-lr3e-4 --learning_rate 3e-4 --seeds 1 --max_steps 1200

Writes benchmarks/results/grounding/<name>.json (curves per seed) and updates benchmarks/results/grounding.md (one
row per variant: mean and worst over seeds) and docs/images/grounding.png (the curves of the variants listed with
--plot).
"""

import argparse
import copy
import json
import math
import time
from collections import Counter, defaultdict
from pathlib import Path

import torch
from torch import nn
from transformers import get_scheduler

from benchmarks.results_files import machine
from modeling_ashnets import AshNetsConfig, AshNetsForQuestionAnswering, AshNetsImageProcessor
from modeling_ashnets.data.easy_vqa import easy_vqa_answers, easy_vqa_question_type
from modeling_ashnets.training import _config_overrides, _parameter_groups, default_tokenizer_path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
QUESTION_TYPES = ("color", "shape", "yes/no color", "yes/no shape")
DEMO_CONFIG = "initializer_range=0.05,hidden_dropout_prob=0,attention_probs_dropout_prob=0"


class EasyVqaTensors:
    """One split of easy-VQA as tensors: processed images (I, C, H, W), token ids (Q, L), the image of each question,
    answer ids and question types."""

    def __init__(self, split: str, processor: AshNetsImageProcessor, tokenizer, answer_ids: dict):
        import easy_vqa
        from PIL import Image

        questions, answers, image_ids = (easy_vqa.get_train_questions() if split == "train"
                                         else easy_vqa.get_test_questions())
        paths = easy_vqa.get_train_image_paths() if split == "train" else easy_vqa.get_test_image_paths()
        order = sorted(paths)
        row = {image_id: index for index, image_id in enumerate(order)}
        images = [Image.open(paths[image_id]).convert("RGB") for image_id in order]
        self.pixels = processor(images, return_tensors="pt")["pixel_values"]
        tokens = tokenizer(questions, padding=True, return_tensors="pt")
        self.input_ids, self.attention_mask = tokens["input_ids"], tokens["attention_mask"]
        self.row = row
        self.image_index = torch.tensor([row[image_id] for image_id in image_ids])
        self.labels = torch.tensor([answer_ids[answer] for answer in answers])
        self.questions = questions
        self.types = [easy_vqa_question_type(question) for question in questions]
        self.type_masks = {kind: torch.tensor([t == kind for t in self.types]) for kind in QUESTION_TYPES}
        blank = Image.new("RGB", images[0].size, (255, 255, 255))
        self.blank = processor([blank], return_tensors="pt")["pixel_values"]

    def with_questions(self, questions, answers, image_ids, types, tokenizer, answer_ids: dict) -> "EasyVqaTensors":
        """The same images with other questions (the paraphrase set)."""
        other = copy.copy(self)  # shares the processed images
        tokens = tokenizer(questions, padding=True, return_tensors="pt")
        other.input_ids, other.attention_mask = tokens["input_ids"], tokens["attention_mask"]
        other.image_index = torch.tensor([self.row[image_id] for image_id in image_ids])
        other.labels = torch.tensor([answer_ids[answer] for answer in answers])
        other.questions, other.types = list(questions), list(types)
        other.type_masks = {kind: torch.tensor([t == kind for t in types]) for kind in QUESTION_TYPES}
        return other

    def __len__(self) -> int:
        return len(self.questions)

    def batch(self, index: torch.Tensor, blank: bool = False) -> dict:
        pixels = self.blank.expand(len(index), -1, -1, -1) if blank else self.pixels[self.image_index[index]]
        return {"input_ids": self.input_ids[index], "attention_mask": self.attention_mask[index], "pixel_values": pixels}


# Questions users might ask that easy-VQA's 24 templates never do (written for this benchmark; none is in the data).
# A yes/no question names a {value}; its answer is "yes" when the image has it, swapped for the wordings in NEGATED.
PARAPHRASES = {
    "color": ("which colour does the object have?", "what colour is the figure?", "tell me the color of the {shape}.",
              "the {shape} has which color?", "which color was used to draw it?"),
    "shape": ("which shape do you see?", "what kind of figure is this?", "name the shape in the picture.",
              "what is the {color} object?", "what form does the {color} thing have?"),
    "yes/no color": ("is the shape {value}?", "do you see anything {value}?", "is the figure colored {value}?",
                     "is the object not {value}?", "is nothing in the picture {value}?"),
    "yes/no shape": ("is this a {value}?", "do you see a {value}?", "does the picture show a {value}?",
                     "is the figure not a {value}?", "is there no {value} in the picture?"),
}
NEGATED = ("is the object not {value}?", "is nothing in the picture {value}?", "is the figure not a {value}?",
           "is there no {value} in the picture?")


def paraphrase_questions(seed: int = 0) -> tuple[list, list, list, list]:
    """Four paraphrased questions per test image (one per question type, templates drawn at random), with their
    answers from the image's facts; each yes/no question names the image's own value half of the time."""
    import random

    from modeling_ashnets.data.easy_vqa import EASY_VQA_COLORS, EASY_VQA_SHAPES, easy_vqa_image_facts

    rng = random.Random(seed)
    questions, answers, image_ids, types = [], [], [], []
    for fact in easy_vqa_image_facts("test"):
        for kind, templates in PARAPHRASES.items():
            template = rng.choice(templates)
            if kind in ("color", "shape"):
                question, answer = template.format(color=fact.color, shape=fact.shape), getattr(fact, kind)
            else:
                attribute = "color" if kind == "yes/no color" else "shape"
                pool = EASY_VQA_COLORS if attribute == "color" else EASY_VQA_SHAPES
                truth = getattr(fact, attribute)
                value = truth if rng.random() < 0.5 else rng.choice([v for v in pool if v != truth])
                holds = (value == truth) != (template in NEGATED)
                question, answer = template.format(value=value), "yes" if holds else "no"
            questions.append(question)
            answers.append(answer)
            image_ids.append(fact.image_id)
            types.append(kind)
    return questions, answers, image_ids, types


def text_only_prior(train: EasyVqaTensors, test: EasyVqaTensors) -> dict[str, float]:
    """Accuracy of answering each test question with the most frequent training answer to the same text (to the
    same question type when the text is new)."""
    by_text, by_type = defaultdict(Counter), defaultdict(Counter)
    for question, kind, label in zip(train.questions, train.types, train.labels.tolist()):
        by_text[question][label] += 1
        by_type[kind][label] += 1
    predictions = [
        (by_text[question] or by_type[kind]).most_common(1)[0][0] for question, kind in zip(test.questions, test.types)
    ]
    return accuracy_by_type(torch.tensor(predictions), test)


def accuracy_by_type(predictions: torch.Tensor, split: EasyVqaTensors) -> dict[str, float]:
    correct = (predictions == split.labels).float()
    result = {"overall": correct.mean().item()}
    for kind, mask in split.type_masks.items():
        result[kind] = correct[mask].mean().item()
    return result


@torch.no_grad()
def evaluate(model, split: EasyVqaTensors, blank: bool = False, batch_size: int = 512) -> dict[str, float]:
    model.eval()
    predictions = []
    for start in range(0, len(split), batch_size):
        index = torch.arange(start, min(start + batch_size, len(split)))
        predictions.append(model(**split.batch(index, blank)).logits.argmax(-1))
    model.train()
    return accuracy_by_type(torch.cat(predictions), split)


def train_one_seed(args, seed: int, train: EasyVqaTensors, test: EasyVqaTensors, paraphrased: EasyVqaTensors,
                   id2label: dict) -> dict:
    torch.manual_seed(seed)
    overrides = {**_config_overrides(args), **({"vqa_loss": "softmax"} if args.loss == "ce" else {})}
    config = AshNetsConfig.from_preset("ashnets-tiny", id2label=id2label, **overrides)
    model = AshNetsForQuestionAnswering(config).train()
    optimizer = torch.optim.AdamW(_parameter_groups(model, args), lr=args.learning_rate)
    steps_per_epoch = math.ceil(len(train) / args.batch_size)
    total = args.max_steps or int(args.epochs * steps_per_epoch)
    schedule = get_scheduler("linear", optimizer=optimizer, num_warmup_steps=int(args.warmup_ratio * total),
                             num_training_steps=total)  # as modeling_ashnets.training
    generator = torch.Generator().manual_seed(seed)
    curve, losses, step, started = [], [], 0, time.perf_counter()
    eval_at = set(range(args.eval_every, total, args.eval_every)) | {total}
    weights = sampling_weights(args.balance, train)

    def epoch_batches():
        if args.balance != "none":  # every answer kind (or question type) equally often, drawn with replacement
            return torch.multinomial(weights, steps_per_epoch * args.batch_size, True, generator=generator).split(
                args.batch_size)
        return torch.randperm(len(train), generator=generator).split(args.batch_size)

    while step < total:
        for index in epoch_batches():
            loss = model(**train.batch(index), labels=train.labels[index]).loss
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            step += 1
            if step in eval_at:
                point = {"step": step, "seconds": round(time.perf_counter() - started, 1),
                         "train_loss": sum(losses[-50:]) / len(losses[-50:]),
                         "test": evaluate(model, test), "blank": evaluate(model, test, blank=True),
                         "paraphrase": evaluate(model, paraphrased)}
                curve.append(point)
                print(f"seed {seed} step {step}: " + ", ".join(f"{k} {v:.3f}" for k, v in point["test"].items())
                      + f" | blank {point['blank']['overall']:.3f} | paraphrase {point['paraphrase']['overall']:.3f}"
                      + f" | loss {point['train_loss']:.4f}", flush=True)
            if step >= total:
                break
    return {"seed": seed, "steps": total, "curve": curve}


def sampling_weights(balance: str, train: EasyVqaTensors) -> torch.Tensor:
    """Per-question sampling weights: each answer kind (colour, shape, yes/no) equally often (`answer`), each of the
    four question types (`type`), or each question type and, within it, each answer (`type_answer`)."""
    if balance == "type_answer":
        pairs = list(zip(train.types, train.labels.tolist()))
        counts = Counter(pairs)
        answers_per_type = Counter(kind for kind, _ in counts)
        return torch.tensor([1.0 / (answers_per_type[kind] * counts[(kind, label)]) for kind, label in pairs])
    kinds = [("yes/no" if kind.startswith("yes/no") else kind) if balance == "answer" else kind
             for kind in train.types]
    counts = Counter(kinds)
    return torch.tensor([1.0 / counts[kind] for kind in kinds])


def summarise(runs: list[dict]) -> dict:
    finals = [run["curve"][-1] for run in runs]
    summary = {}
    for part in ("test", "blank", "paraphrase"):
        for key in ("overall", *QUESTION_TYPES):
            values = [final[part][key] for final in finals if part in final]
            if not values:  # results written before the paraphrase set existed
                continue
            summary[f"{part}/{key}"] = {"mean": sum(values) / len(values), "worst": min(values)}
    return summary


def write_table(prior: dict) -> None:
    """benchmarks/results/grounding.md: one row per variant found in benchmarks/results/grounding/."""
    rows = []
    header = ("| variant | seeds | steps | overall | color | shape | yes/no color | yes/no shape | blank image "
              "| paraphrases |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
    cells = " | ".join(f"{prior[key] * 100:.1f}" for key in ("overall", *QUESTION_TYPES))
    rows.append(f"| text-only prior | - | - | {cells} | - | - |")
    for path in sorted((RESULTS / "grounding").glob("*.json")):
        result = json.loads(path.read_text())
        summary = result["summary"]

        def cell(key):
            value = summary[f"test/{key}"]
            return f"{value['mean'] * 100:.1f} ({value['worst'] * 100:.1f})"

        paraphrase = summary.get("paraphrase/overall")
        paraphrase = f"{paraphrase['mean'] * 100:.1f} ({paraphrase['worst'] * 100:.1f})" if paraphrase else "-"
        rows.append(f"| {result['name']} | {len(result['runs'])} | {result['runs'][0]['steps']} | "
                    + " | ".join(cell(key) for key in ("overall", *QUESTION_TYPES))
                    + f" | {summary['blank/overall']['mean'] * 100:.1f} | {paraphrase} |")
    note = ("\nAccuracy (%) on the full easy-VQA test split (9,673 questions) at the end of training: mean over seeds "
            "(worst seed in brackets). Blank image: overall accuracy of the same questions asked about a white image. "
            "Paraphrases: one question of each type per test image in wordings easy-VQA never uses "
            "(`PARAPHRASES` in the benchmark; yes and no equally often), overall accuracy.\n")
    (RESULTS / "grounding.md").write_text(header + "\n".join(rows) + "\n" + note)


def plot(names: list[str], prior: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(QUESTION_TYPES), figsize=(4 * len(QUESTION_TYPES), 3.4), sharey=True)
    for name, colour in zip(names, plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        result = json.loads((RESULTS / "grounding" / f"{name}.json").read_text())
        for axis, kind in zip(axes, QUESTION_TYPES):
            for number, run in enumerate(result["runs"]):
                steps = [point["step"] for point in run["curve"]]
                axis.plot(steps, [point["test"][kind] * 100 for point in run["curve"]], color=colour, alpha=0.8,
                          label=name if number == 0 else None)
                axis.plot(steps, [point["blank"][kind] * 100 for point in run["curve"]], color=colour, alpha=0.4,
                          linestyle=":")
    for axis, kind in zip(axes, QUESTION_TYPES):
        axis.axhline(prior[kind] * 100, color="black", linestyle="--", linewidth=1, label="text-only prior")
        axis.set_title(kind)
        axis.set_xlabel("training step")
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].legend(fontsize=7)
    figure.suptitle("easy-VQA per question type (solid: real image, dotted: blank image; one line per seed)")
    figure.tight_layout()
    path = ROOT / "docs" / "images" / "grounding.png"
    figure.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", help="the variant's name (its results file and table row)")
    parser.add_argument("--report_only", action="store_true",
                        help="train nothing: rewrite the table (and the plot) from the results already there")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config_overrides", default=DEMO_CONFIG, help="as the training scripts' option")
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--cnn_learning_rate", type=float, default=None)
    parser.add_argument("--weight_decay", type=float, default=0.01)
    parser.add_argument("--warmup_ratio", type=float, default=0.05)
    parser.add_argument("--max_grad_norm", type=float, default=1.0)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--epochs", type=float, default=4.0)
    parser.add_argument("--max_steps", type=int, default=None, help="overrides --epochs")
    parser.add_argument("--eval_every", type=int, default=300)
    parser.add_argument("--balance", default="none", choices=["none", "answer", "type", "type_answer"],
                        help="sample answer kinds (colour, shape, yes/no) or the four question types equally often; "
                             "type_answer: the question types, and within each its answers, equally often")
    parser.add_argument("--loss", default="model", choices=["model", "ce"],
                        help="the config's vqa_loss, or ce: cross-entropy over the answers (vqa_loss=softmax)")
    parser.add_argument("--plot", nargs="*", default=None, help="variants to draw in docs/images/grounding.png")
    args = parser.parse_args(argv)
    if args.report_only:
        prior = json.loads(next((RESULTS / "grounding").glob("*.json")).read_text())["text_only_prior"]
        write_table(prior)
        if args.plot:
            plot(args.plot, prior)
        print((RESULTS / "grounding.md").read_text())
        return
    if not args.name:
        parser.error("--name is required unless --report_only is given")
    args.image_size = args.snn_time_steps = None  # read by _config_overrides

    from transformers import AutoTokenizer

    torch.set_num_threads(max(1, torch.get_num_threads()))
    answers = easy_vqa_answers()
    answer_ids = {answer: index for index, answer in enumerate(answers)}
    processor = AshNetsImageProcessor(size={"height": 64, "width": 64})
    tokenizer = AutoTokenizer.from_pretrained(default_tokenizer_path())
    train = EasyVqaTensors("train", processor, tokenizer, answer_ids)
    test = EasyVqaTensors("test", processor, tokenizer, answer_ids)
    prior = text_only_prior(train, test)
    print("text-only prior: " + ", ".join(f"{k} {v:.3f}" for k, v in prior.items()), flush=True)

    paraphrased = test.with_questions(*paraphrase_questions(), tokenizer, answer_ids)
    runs = [train_one_seed(args, seed, train, test, paraphrased, dict(enumerate(answers))) for seed in args.seeds]
    result = {"name": args.name, "arguments": {k: v for k, v in vars(args).items() if k != "plot"},
              "machine": machine(), "text_only_prior": prior, "runs": runs, "summary": summarise(runs)}
    (RESULTS / "grounding").mkdir(parents=True, exist_ok=True)
    (RESULTS / "grounding" / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    write_table(prior)
    if args.plot:
        plot(args.plot, prior)
    print((RESULTS / "grounding.md").read_text())


if __name__ == "__main__":
    main()
