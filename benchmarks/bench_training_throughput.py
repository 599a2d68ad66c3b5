"""Training throughput of each objective against VQA fine-tuning, timed in the same run on the same images.

One training step (forward, backward, AdamW) of `ashnets-tiny` on 64 real easy-VQA images, for: VQA fine-tuning
(64 questions), retrieval fine-tuning (64 captions: ITC + ITM on hard negatives), pre-training (64 captions: ITC,
ITM, MLM, MVM and STUA) and pre-training without MLM (what MLM's prediction over the whole vocabulary costs). The
steps are timed in rounds, one step of each task per round, so that the machine's drift falls on all alike; each
task's samples/s is then given as a share of VQA's. A forward hook counts the images the CNN sees per step (the CNN
is most of a step's work; pre-training and retrieval should run it once per image).

    python -m benchmarks.bench_training_throughput [--rounds 20]

Writes benchmarks/results/training_throughput.json and training_throughput.md.
"""

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from benchmarks.results_files import machine, write_results
from modeling_ashnets import (
    AshNetsConfig,
    AshNetsForPreTraining,
    AshNetsForQuestionAnswering,
    AshNetsForRetrieval,
)

ROOT = Path(__file__).resolve().parents[1]

DEMO_INIT = {"initializer_range": 0.05, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def batches(processor, size: int) -> tuple[dict, dict]:
    """(VQA batch, caption batch) on the same `size` easy-VQA training images, processed."""
    from PIL import Image

    from modeling_ashnets.data.easy_vqa import easy_vqa_image_facts, load_easy_vqa

    facts = easy_vqa_image_facts("train")[:size]
    images = [Image.open(fact.path).convert("RGB") for fact in facts]
    questions = load_easy_vqa("train", max_samples=size)
    vqa = dict(processor(images=images, text=list(questions["question"]), return_tensors="pt"))
    # Timing only: the questions are about other images, and their answers are the targets.
    vqa["labels"] = torch.nn.functional.one_hot(torch.tensor([ids[0] for ids in questions["labels"]]), 13).float()
    captions = dict(processor(images=images, text=[fact.caption() for fact in facts], return_tensors="pt"))
    return vqa, captions


def step_function(model, batch: dict, extra: dict):
    """One training step on `batch` as a callable, and a counter of the images the CNN saw in the last step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    seen = []
    model.ashnets.visual_encoder.register_forward_hook(lambda module, args, output: seen.append(args[0].shape[0]))
    model.train()

    def step():
        seen.clear()
        model(**batch, **extra).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    return step, seen


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--results_dir", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    from transformers import AutoTokenizer

    from modeling_ashnets import AshNetsImageProcessor, AshNetsProcessor
    from modeling_ashnets.training import default_tokenizer_path

    processor = AshNetsProcessor(image_processor=AshNetsImageProcessor(size={"height": 64, "width": 64}),
                                 tokenizer=AutoTokenizer.from_pretrained(default_tokenizer_path()))
    vqa_batch, caption_batch = batches(processor, args.batch_size)
    config = AshNetsConfig.from_preset("ashnets-tiny", id2label={i: str(i) for i in range(13)}, **DEMO_INIT)
    torch.manual_seed(0)
    tasks = {
        "vqa": step_function(AshNetsForQuestionAnswering(config), vqa_batch, {}),
        "retrieval": step_function(AshNetsForRetrieval(config), caption_batch, {"return_loss": True}),
        "pre-training": step_function(AshNetsForPreTraining(config), caption_batch, {}),
        # What MLM's prediction over the whole vocabulary at every text position costs.
        "pre-training without MLM": step_function(
            AshNetsForPreTraining(AshNetsConfig.from_dict({**config.to_dict(), "mlm_weight": 0.0})), caption_batch, {}),
    }
    times = {name: [] for name in tasks}
    for round_index in range(args.rounds + 2):  # the first two rounds warm up
        for name, (step, _) in tasks.items():
            started = time.perf_counter()
            step()
            if round_index >= 2:
                times[name].append(time.perf_counter() - started)
    results = {"batch_size": args.batch_size, "rounds": args.rounds, "tasks": {}}
    for name, (_, seen) in tasks.items():
        seconds = statistics.median(times[name])
        results["tasks"][name] = {"step_s": seconds, "samples_per_s": args.batch_size / seconds,
                                  "cnn_images_per_step": sum(seen)}
    vqa_speed = results["tasks"]["vqa"]["samples_per_s"]
    rows = ["| training step | median time | samples/s | share of VQA's samples/s | CNN images per step |",
            "| --- | --- | --- | --- | --- |"]
    for name, task in results["tasks"].items():
        task["share_of_vqa_throughput"] = task["samples_per_s"] / vqa_speed
        rows.append(f"| {name} | {1000 * task['step_s']:.0f} ms | {task['samples_per_s']:.0f} | "
                    f"{100 * task['share_of_vqa_throughput']:.0f} % | {task['cnn_images_per_step']} |")
    results["machine"] = machine()
    rows.append(f"\nashnets-tiny, batch {args.batch_size} of real easy-VQA images (64 x 64), median of {args.rounds} "
                f"rounds of one step per task; {results['machine']['cpu_threads']} CPU threads, "
                f"{results['machine']['date']}.\n")
    table = "\n".join(rows) + "\n"
    write_results(args.results_dir, "training_throughput", results, table)
    print(table)


if __name__ == "__main__":
    main()
