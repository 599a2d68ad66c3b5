"""Does image-text contrast (ITC) learn from step one, or first collapse every embedding to one point?

Trains `AshNetsForRetrieval` with the ITC loss alone (symmetric InfoNCE, no ITM) on easy-VQA's captioned training
images held in memory, batches of distinct images, and records at every step: the loss against ln B (the loss of
embeddings that are all alike), the mean cosine between the batch's image embeddings and between its text embeddings
(1 = collapsed to one point), and the gap between matched and unmatched pairs' cosines. At the end: R@1 both ways on
the retrieval test gallery (one image per distinct caption). The variants differ in config options and learning rate:

    python -m benchmarks.bench_itc --name pooler-lr1e-4 --learning_rate 1e-4
    python -m benchmarks.bench_itc --name layer-norm-lr1e-4 --learning_rate 1e-4 \
        --config_overrides contrastive_summary=layer_norm

Writes benchmarks/results/itc/<name>.json (curves) and benchmarks/results/itc.md (one row per variant).
"""

import argparse
import json
import math
import time
from pathlib import Path

import torch

from benchmarks.results_files import stored_runs, write_variant
from modeling_ashnets import AshNetsConfig, AshNetsForRetrieval, AshNetsImageProcessor
from modeling_ashnets.data.easy_vqa import load_easy_vqa_retrieval
from modeling_ashnets.losses import caption_keys, info_nce, positive_pairs
from modeling_ashnets.training import _config_overrides, default_tokenizer_path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CHECKPOINTS = (0, 10, 25, 50, 100, 200, 300)


def mean_off_diagonal(similarity: torch.Tensor) -> float:
    size = similarity.shape[0]
    return ((similarity.sum() - similarity.diagonal().sum()) / (size * size - size)).item()


def load_pairs(split: str, processor, tokenizer) -> dict:
    """Images processed once; one (caption, image row) per caption."""
    from PIL import Image

    rows = load_easy_vqa_retrieval(split, pairs=True).to_dict()
    paths = sorted(set(rows["image"]))
    index = {path: number for number, path in enumerate(paths)}
    pixels = processor([Image.open(path).convert("RGB") for path in paths], return_tensors="pt")["pixel_values"]
    tokens = tokenizer(rows["caption"], padding=True, return_tensors="pt")
    image_of = [index[path] for path in rows["image"]]
    captions_of = [[] for _ in paths]
    for row, image in enumerate(image_of):
        captions_of[image].append(row)
    return {"pixels": pixels, "input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"],
            "image_of": torch.tensor(image_of), "captions_of": captions_of}


def distinct_image_batch(pairs: dict, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """Caption rows of `batch_size` different images (one caption each)."""
    images = torch.randperm(len(pairs["pixels"]), generator=generator)[:batch_size].tolist()
    choice = torch.randint(0, 2, (batch_size,), generator=generator).tolist()
    captions = pairs["captions_of"]
    return torch.tensor([captions[image][pick % len(captions[image])] for image, pick in zip(images, choice)])


@torch.no_grad()
def recall_at_1(model, test: dict) -> dict[str, float]:
    model.eval()
    image_embeds = torch.cat([model.ashnets(pixel_values=test["pixels"][i:i + 256]).image_embeds
                              for i in range(0, len(test["pixels"]), 256)])
    text_embeds = torch.cat([model.ashnets(input_ids=test["input_ids"][i:i + 256],
                                           attention_mask=test["attention_mask"][i:i + 256]).text_embeds
                             for i in range(0, len(test["input_ids"]), 256)])
    model.train()
    similarity = image_embeds @ text_embeds.t()  # (images, captions)
    owner = test["image_of"]
    text_to_image = (similarity.argmax(dim=0) == owner).float().mean().item()
    image_to_text = (owner[similarity.argmax(dim=1)] == torch.arange(len(image_embeds))).float().mean().item()
    return {"image_to_text_r@1": image_to_text, "text_to_image_r@1": text_to_image}


def train(args, seed: int, train_pairs: dict, test_pairs: dict) -> dict:
    torch.manual_seed(seed)
    config = AshNetsConfig.from_preset("ashnets-tiny", **_config_overrides(args))
    model = AshNetsForRetrieval(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=0.01)
    generator = torch.Generator().manual_seed(seed)
    curve, started = [], time.perf_counter()
    for step in range(args.steps + 1):
        rows = distinct_image_batch(train_pairs, args.batch_size, generator)
        outputs = model(input_ids=train_pairs["input_ids"][rows], attention_mask=train_pairs["attention_mask"][rows],
                        pixel_values=train_pairs["pixels"][train_pairs["image_of"][rows]])
        positives = positive_pairs(caption_keys(train_pairs["input_ids"][rows], train_pairs["attention_mask"][rows]))
        logits = outputs.logits_per_image
        loss = (info_nce(logits, positives) + info_nce(logits.t(), positives)) / 2
        if step in CHECKPOINTS or step % 25 == 0:
            with torch.no_grad():
                images, texts = outputs.image_embeds, outputs.text_embeds
                cross = images @ texts.t()
                point = {"step": step, "loss": loss.item(), "ln_batch": math.log(args.batch_size),
                         "image_image_cosine": mean_off_diagonal(images @ images.t()),
                         "text_text_cosine": mean_off_diagonal(texts @ texts.t()),
                         "matched_minus_unmatched": (cross.diagonal().mean().item() - mean_off_diagonal(cross)),
                         "temperature": 1 / model.logit_scale.exp().item()}
            curve.append(point)
            print(f"seed {seed} step {step}: " + ", ".join(f"{k} {v:.3f}" for k, v in point.items() if k != "step"),
                  flush=True)
        if step == args.steps:
            break
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    recall = recall_at_1(model, test_pairs)
    print(f"seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in recall.items()), flush=True)
    return {"seed": seed, "curve": curve, "test": recall, "seconds": round(time.perf_counter() - started, 1)}


def first_step_below(curve: list[dict], margin: float = 0.5) -> int | None:
    """The first recorded step whose loss is `margin` below ln B (the embeddings tell pairs apart)."""
    return next((point["step"] for point in curve if point["loss"] < point["ln_batch"] - margin), None)


def write_table() -> None:
    header = ("| variant | seeds | lr | loss at step 0 / 50 / 100 / 300 (ln B) | first step < ln B - 0.5 | "
              "image-image cosine at 0 / 50 / 300 | R@1 image->text / text->image |\n"
              "| --- | --- | --- | --- | --- | --- | --- |\n")
    rows = []
    for path in sorted((RESULTS / "itc").glob("*.json")):
        result = json.loads(path.read_text())
        runs = result["runs"]

        def mean_at(key, step):
            values = [point[key] for run in runs for point in run["curve"] if point["step"] == step]
            return sum(values) / len(values) if values else float("nan")

        steps = [first_step_below(run["curve"]) for run in runs]
        recall = [f"{sum(run['test'][key] for run in runs) / len(runs) * 100:.1f}"
                  for key in ("image_to_text_r@1", "text_to_image_r@1")]
        rows.append(
            f"| {result['name']} | {len(runs)} | {result['arguments']['learning_rate']:g} | "
            + " / ".join(f"{mean_at('loss', step):.2f}" for step in (0, 50, 100, 300))
            + f" ({runs[0]['curve'][0]['ln_batch']:.2f}) | {', '.join(str(s) if s is not None else 'never' for s in steps)}"
            + " | " + " / ".join(f"{mean_at('image_image_cosine', step):.2f}" for step in (0, 50, 300))
            + f" | {' / '.join(recall)} |")
    note = ("\nITC alone on easy-VQA captions, batch 64 of distinct images, AdamW, no schedule, ashnets-tiny; mean over "
            "seeds. A loss at ln B with image-image cosine near 1 is the collapse (every image embedded alike).\n")
    (RESULTS / "itc.md").write_text(header + "\n".join(rows) + "\n" + note)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--config_overrides", default="")
    parser.add_argument("--report_only", action="store_true")
    args = parser.parse_args(argv)
    if not args.report_only:
        if not args.name:
            parser.error("--name is required unless --report_only is given")
        args.image_size = args.snn_time_steps = None  # read by _config_overrides
        path = RESULTS / "itc" / f"{args.name}.json"
        runs = stored_runs(path, {key: getattr(args, key) for key in ("steps", "batch_size", "learning_rate",
                                                                       "config_overrides")})
        new_seeds = [seed for seed in args.seeds if seed not in runs]
        if new_seeds:
            from transformers import AutoTokenizer

            processor = AshNetsImageProcessor(size={"height": 64, "width": 64})
            tokenizer = AutoTokenizer.from_pretrained(default_tokenizer_path())
            train_pairs, test_pairs = load_pairs("train", processor, tokenizer), load_pairs("test", processor, tokenizer)
            runs.update({seed: train(args, seed, train_pairs, test_pairs) for seed in new_seeds})
        write_variant(path, {"name": args.name, "arguments": vars(args)}, runs)
    write_table()
    print((RESULTS / "itc.md").read_text())


if __name__ == "__main__":
    main()
