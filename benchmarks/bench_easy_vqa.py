"""easy-VQA: ashnets-tiny against transformers' ViLT of comparable size, same data, tokenizer, images and budget.

Both models are trained from random initialisation by the same Accelerate loop (modeling_ashnets.training, the
one `make demo` uses) with the demo's recipe and the same wall-clock training budget: ashnets-tiny trains for the
demo's epochs, and ViLT for as many steps as it takes in the same time (its speed is measured first on 20 steps).
Both are then evaluated on the full easy-VQA test split (9,673 questions). ViLT gets the same pixels (64x64, ImageNet-normalised) and the same
bert-base-uncased WordPiece ids; its depth is chosen so that its parameter count is the closest to ashnets-tiny's.
Writes benchmarks/results/easy_vqa.json and easy_vqa.md (the README table). Run: `python -m benchmarks.bench_easy_vqa`.
"""

import argparse
import json
import os
import time
from pathlib import Path

import torch

from benchmarks.results_files import machine, write_results
from examples import demo_easy_vqa, run_vqa
from modeling_ashnets import AshNetsForQuestionAnswering
from modeling_ashnets.data.collators import AshNetsCollator
from modeling_ashnets.training import build_model_and_processor, run_training

ROOT = Path(__file__).resolve().parents[1]


def vilt_of_similar_size(target_parameters: int, id2label: dict, image_size: int, patch_size: int):
    """ViltForQuestionAnswering with ashnets-tiny's width (hidden 128, 4 heads, FFN 512) and the depth whose
    parameter count is the closest to `target_parameters`."""
    from transformers import ViltConfig, ViltForQuestionAnswering

    def build(layers, device="meta"):
        config = ViltConfig(
            hidden_size=128, num_hidden_layers=layers, num_attention_heads=4, intermediate_size=512,
            image_size=image_size, patch_size=patch_size, max_position_embeddings=40, id2label=id2label,
            initializer_range=0.05, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,  # the demo recipe
            label2id={v: k for k, v in id2label.items()},
        )
        with torch.device(device):
            return ViltForQuestionAnswering(config)

    sizes = {layers: sum(p.numel() for p in build(layers).parameters()) for layers in range(1, 13)}
    layers = min(sizes, key=lambda n: abs(sizes[n] - target_parameters))
    return build(layers, "cpu")


@torch.no_grad()
def inference_samples_per_second(model, processor, dataset, batch_size=256, batches=8) -> float:
    """Forward passes (no labels) over the first test batches, after one warm-up batch."""
    model.eval()
    collator = AshNetsCollator(processor, "vqa", num_labels=model.config.num_labels)
    rows = [dataset[i] for i in range(batch_size * (batches + 1))]
    inputs = [collator(rows[i : i + batch_size])["inputs"] for i in range(0, len(rows), batch_size)]
    for batch in inputs:
        batch.pop("labels")
    model(**inputs[0])
    started = time.perf_counter()
    for batch in inputs[1:]:
        model(**batch)
    return batches * batch_size / (time.perf_counter() - started)


def steps_per_second(model, processor, dataset, batch_size: int, steps: int = 20) -> float:
    """Training steps per second (forward, backward, AdamW) on the first batches, after two warm-up steps."""
    collator = AshNetsCollator(processor, "vqa", num_labels=model.config.num_labels)
    batches = [collator([dataset[j] for j in range(i, i + batch_size)])["inputs"]
               for i in range(0, batch_size * (steps + 2), batch_size)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    model.train()
    for index, batch in enumerate(batches):
        if index == 2:
            started = time.perf_counter()
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return steps / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_train_epochs", default=None, help="default: the demo's")
    parser.add_argument("--output_dir", default=str(ROOT / "runs" / "benchmark-easy-vqa"))
    parser.add_argument("--results_dir", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--vilt_patch_size", type=int, default=16,
                        help="16 gives ViLT 16 patches of a 64x64 image (ashnets-tiny has 4 visual tokens)")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))

    results = {}
    for name in ("ashnets-tiny", "vilt"):
        arguments = [*demo_easy_vqa.DEMO_ARGUMENTS, "--output_dir", os.path.join(args.output_dir, name)]
        if args.num_train_epochs is not None:
            arguments += ["--num_train_epochs", args.num_train_epochs]
        model_args, data_args, training_args = run_vqa.parse_args(arguments)
        train, test, answers = run_vqa.load_data(data_args)
        id2label = dict(enumerate(answers))
        ashnets, processor = build_model_and_processor(
            model_args, AshNetsForQuestionAnswering, training_args.seed,
            id2label=id2label, label2id={a: i for i, a in id2label.items()},
        )
        model = ashnets
        if name == "vilt":
            model = vilt_of_similar_size(results["ashnets-tiny"]["parameters"], id2label, 64, args.vilt_patch_size)
            probe = vilt_of_similar_size(results["ashnets-tiny"]["parameters"], id2label, 64, args.vilt_patch_size)
            rate = steps_per_second(probe, processor, train, training_args.per_device_train_batch_size)
            training_args.max_train_steps = max(1, int(rate * results["ashnets-tiny"]["train_runtime_s"]))
            print(f"ViLT: {rate:.2f} steps/s -> {training_args.max_train_steps} steps in ashnets-tiny's training time")
        parameters = sum(p.numel() for p in model.parameters())
        print(f"== {name}: {parameters / 1e6:.2f} M parameters")
        result = run_training(training_args, "vqa", model, processor, train, test,
                              script_arguments=(model_args, data_args))
        metrics, trained = result.eval_metrics, result.train_metrics
        results[name] = {
            "parameters": parameters,
            "layers": model.config.num_hidden_layers,
            "eval_accuracy": metrics["eval_accuracy"],
            **{k: v for k, v in metrics.items() if k.startswith("eval_accuracy_")},
            "train_steps": trained["train_steps"],
            "train_runtime_s": trained["train_runtime"],
            "train_samples_per_second": trained["train_samples_per_second"],
            "inference_samples_per_second": inference_samples_per_second(model, processor, test),
        }
        print(json.dumps(results[name], indent=2))

    ours, vilt = results["ashnets-tiny"], results["vilt"]
    results["ratios_ashnets_over_vilt"] = {
        key: ours[key] / vilt[key]
        for key in ("eval_accuracy", "train_samples_per_second", "inference_samples_per_second")
    }
    results["machine"] = machine()
    rows = ["| model | params | test accuracy | yes/no | color | shape | train samples/s | inference samples/s | train steps | train time |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in ("ashnets-tiny", "vilt"):
        r = results[name]
        rows.append(
            f"| {name} ({r['layers']} layers) | {r['parameters'] / 1e6:.2f} M | {100 * r['eval_accuracy']:.2f} % | "
            f"{100 * r.get('eval_accuracy_yes_no', 0):.2f} % | {100 * r.get('eval_accuracy_color', 0):.2f} % | "
            f"{100 * r.get('eval_accuracy_shape', 0):.2f} % | {r['train_samples_per_second']:.0f} | "
            f"{r['inference_samples_per_second']:.0f} | {r['train_steps']} | {r['train_runtime_s'] / 60:.1f} min |"
        )
    ratios = results["ratios_ashnets_over_vilt"]
    rows.append("")
    rows.append(f"ashnets-tiny / ViLT: accuracy x{ratios['eval_accuracy']:.3f}, training throughput "
                f"x{ratios['train_samples_per_second']:.2f}, inference throughput x{ratios['inference_samples_per_second']:.2f} "
                f"({results['machine']['cpu_threads']} CPU threads, {results['machine']['date']}).")
    table = "\n".join(rows) + "\n"
    write_results(args.results_dir, "easy_vqa", results, table)
    print(table)


if __name__ == "__main__":
    main()
