"""Speed, memory and hardware use of ASH-Nets on this machine, every comparison a ratio measured in the same run.

* Peak: fp32 matrix multiplies (1024 to 4096, best run) measure what this machine's cores deliver; achieved FLOP/s are
  reported as a share of it. Executed FLOPs come from `torch.utils.flop_counter` (the dense work really done, spiking
  layers included), not from the energy estimate's operation counts.
* `ashnets-tiny` (batch 64 of real easy-VQA questions): training step and inference time at T in {1, 4, 10}; the same
  model with the SNN branch removed (the target: the branch adds at most 25 % to a training step at T = 10); the
  repeat-mode fast path off against on; compiled LIF neurons against spikingjelly's eager ones; the ANN twin
  (ReLU, T = 1); transformers' ViLT of matched size.
* `ashnets-base` (ResNet-152, BERT-base fusion, T = 10, 384x384, batch 2): inference and one training step (target:
  inference at >= 50 % of the matrix-multiply peak).
* Peak memory: the process's peak resident set (CPU) or `torch.cuda.max_memory_allocated` (GPU), per case.

Run: `make bench` (or `python -m benchmarks.bench_performance [--skip_base]`). Writes benchmarks/results/performance.json
and performance.md (the README table). Accuracy against ViLT is in bench_easy_vqa.py.
"""

import argparse
import os
import resource
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from benchmarks.results_files import machine, write_results
from modeling_ashnets import AshNetsConfig, AshNetsForQuestionAnswering

ROOT = Path(__file__).resolve().parents[1]


def matmul_peak(device: torch.device, sizes=(1024, 2048, 4096), repeats: int = 5, dtype=torch.float32) -> float:
    """FLOP/s of square matrix multiplies (fp32 by default), the best of several sizes and runs: the machine's
    practical ceiling for dense layers (an underestimate shows up as a share of peak above 100 %)."""
    best = 0.0
    for size in sizes:
        a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
        a @ b
        for _ in range(repeats):
            _sync(device)
            started = time.perf_counter()
            a @ b
            _sync(device)
            best = max(best, 2 * size**3 / (time.perf_counter() - started))
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _median_time(function, device, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        function()
        _sync(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _executed_flops(function) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


class _WithoutSNN(nn.Module):
    """Stands in for the SNN (no spikes, no rates): the summary ratio then adds nothing, V = F_ann."""

    def __init__(self, config: AshNetsConfig):
        super().__init__()
        self.config = config

    def forward(self, features, input_mode=None, image_similarity=None):
        batch, tokens, _ = features.shape
        rates = features.new_zeros(batch, tokens, self.config.snn_hidden_size)
        return rates, features.new_zeros(batch, self.config.snn_num_layers), ()


class _Identity(nn.Module):
    def forward(self, continuous, spike_rates):
        return continuous


def _easy_vqa_batch(processor, size: int) -> dict:
    """The first `size` easy-VQA test questions with their images, processed."""
    from modeling_ashnets.data.easy_vqa import load_easy_vqa

    test = load_easy_vqa("test", max_samples=size)
    return dict(processor(images=list(test["image"]), text=list(test["question"]), return_tensors="pt"))


def _training_step(model, batch: dict, device):
    """One training step (forward, backward, AdamW) on `batch` with one-hot answer targets, as a callable."""
    model.to(device).train()
    batch = {k: v.to(device) for k, v in batch.items()}
    labels = torch.zeros(batch["input_ids"].shape[0], model.config.num_labels, device=device)
    labels[:, 0] = 1.0
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)

    def step():
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    return step


def measure(model, batch: dict, device, repeats: int) -> dict:
    """Training step (forward, backward, AdamW) and inference times, executed FLOPs, peak memory."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    result = {"train_step_s": _median_time(_training_step(model, batch, device), device, repeats)}
    result["train_samples_per_s"] = batch["input_ids"].shape[0] / result["train_step_s"]
    batch = {k: v.to(device) for k, v in batch.items()}
    model.eval()

    @torch.no_grad()
    def infer():
        model(**batch)

    result["inference_s"] = _median_time(infer, device, repeats)
    result["inference_samples_per_s"] = batch["input_ids"].shape[0] / result["inference_s"]
    result["inference_flops"] = _executed_flops(infer)
    result["inference_flop_per_s"] = result["inference_flops"] / result["inference_s"]
    result["peak_memory_mib"] = (torch.cuda.max_memory_allocated() if device.type == "cuda"
                                 else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20
    return result


def paired_ratio(model_a, model_b, batch: dict, device, repeats: int) -> float:
    """Median training-step time of `model_a` over `model_b`, timed alternately (a, b, a, b, ...) so that the
    machine's drift over the run falls on both alike."""
    steps = (_training_step(model_a, batch, device), _training_step(model_b, batch, device))
    times = ([], [])
    for _ in range(2):
        steps[0](), steps[1]()
    for _ in range(repeats):
        for step, record in zip(steps, times):
            _sync(device)
            started = time.perf_counter()
            step()
            _sync(device)
            record.append(time.perf_counter() - started)
    return statistics.median(times[0]) / statistics.median(times[1])


def tiny_ratios(batch: dict, device, repeats: int) -> dict:
    """The comparisons the targets and fast paths are judged by, each timed as an alternating pair."""
    overrides = {"id2label": {i: str(i) for i in range(13)}}
    config = AshNetsConfig.from_preset("ashnets-tiny", snn_time_steps=10, **overrides)

    def model(change=None):
        torch.manual_seed(0)
        built = AshNetsForQuestionAnswering(config)
        if change is not None:
            change(built.ashnets)
        return built

    def remove_snn(ashnets):
        ashnets.snn, ashnets.summary_ratio = _WithoutSNN(config), _Identity()

    def slow_path(ashnets):
        ashnets.snn.reuse_static_projection = False

    return {
        "snn_branch_training_overhead_T10": paired_ratio(model(), model(remove_snn), batch, device, repeats) - 1,
        "fast_path_training_speedup_T10": paired_ratio(model(slow_path), model(), batch, device, repeats),
        "compiled_neurons_training_speedup_T10": paired_ratio(
            model(), model(lambda a: a.snn.use_compiled_neurons()), batch, device, repeats),
    }


def tiny_cases(batch: dict, device, repeats: int) -> dict:
    overrides = {"id2label": {i: str(i) for i in range(13)}}
    cases = {}
    for steps in (1, 4, 10):
        torch.manual_seed(0)
        config = AshNetsConfig.from_preset("ashnets-tiny", snn_time_steps=steps, **overrides)
        cases[f"T={steps}"] = measure(AshNetsForQuestionAnswering(config), batch, device, repeats)
        if steps == 10:
            torch.manual_seed(0)
            model = AshNetsForQuestionAnswering(config)
            model.ashnets.snn.reuse_static_projection = False
            cases["T=10, fast path off"] = measure(model, batch, device, repeats)
            torch.manual_seed(0)
            model = AshNetsForQuestionAnswering(config)
            model.ashnets.snn.use_compiled_neurons()
            cases["T=10, compiled neurons"] = measure(model, batch, device, repeats)
            torch.manual_seed(0)
            model = AshNetsForQuestionAnswering(config)
            model.ashnets.snn, model.ashnets.summary_ratio = _WithoutSNN(config), _Identity()
            cases["SNN branch removed"] = measure(model, batch, device, repeats)
    torch.manual_seed(0)
    twin = AshNetsConfig.from_preset("ashnets-tiny", snn_neuron="relu", snn_time_steps=1, **overrides)
    cases["ANN twin (ReLU, T=1)"] = measure(AshNetsForQuestionAnswering(twin), batch, device, repeats)
    # transformers' ViLT of the same width and the closest parameter count (as in bench_easy_vqa.py), same batch.
    from benchmarks.bench_easy_vqa import vilt_of_similar_size

    torch.manual_seed(0)
    parameters = sum(p.numel() for p in AshNetsForQuestionAnswering(
        AshNetsConfig.from_preset("ashnets-tiny", **overrides)).parameters())
    vilt = vilt_of_similar_size(parameters, overrides["id2label"], image_size=64, patch_size=16)
    cases[f"ViLT ({vilt.config.num_hidden_layers} layers, matched size)"] = measure(vilt, batch, device, repeats)
    return cases


def base_case(processor, device, repeats: int) -> dict:
    from modeling_ashnets import AshNetsImageProcessor, AshNetsProcessor

    base_processor = AshNetsProcessor(image_processor=AshNetsImageProcessor(size={"height": 384, "width": 384}),
                                      tokenizer=processor.tokenizer)
    batch = _easy_vqa_batch(base_processor, 2)
    torch.manual_seed(0)
    config = AshNetsConfig.from_preset("ashnets-base", id2label={i: str(i) for i in range(3129)})
    return measure(AshNetsForQuestionAnswering(config), batch, device, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip_base", action="store_true", help="leave out ashnets-base (slow on a CPU)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--results_dir", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    from transformers import AutoTokenizer

    from modeling_ashnets import AshNetsImageProcessor, AshNetsProcessor
    from modeling_ashnets.training import default_tokenizer_path

    processor = AshNetsProcessor(image_processor=AshNetsImageProcessor(size={"height": 64, "width": 64}),
                                 tokenizer=AutoTokenizer.from_pretrained(default_tokenizer_path()))
    peak = matmul_peak(device)
    tiny_batch = _easy_vqa_batch(processor, 64)
    results = {"device": str(device), "matmul_peak_flop_per_s": peak,
               "ashnets_tiny": tiny_cases(tiny_batch, device, args.repeats)}
    if not args.skip_base:
        results["ashnets_base"] = base_case(processor, device, max(1, args.repeats // 2))
    tiny = results["ashnets_tiny"]
    results["ratios"] = {
        **tiny_ratios(tiny_batch, device, 4 * args.repeats),
        "ashnets_T4_over_ann_twin_training_time": tiny["T=4"]["train_step_s"] / tiny["ANN twin (ReLU, T=1)"]["train_step_s"],
        "ashnets_T4_over_vilt_inference_throughput": tiny["T=4"]["inference_samples_per_s"] / next(
            case["inference_samples_per_s"] for name, case in tiny.items() if name.startswith("ViLT")),
        "tiny_T4_inference_share_of_peak": tiny["T=4"]["inference_flop_per_s"] / peak,
    }
    if "ashnets_base" in results:
        results["ratios"]["base_inference_share_of_peak"] = results["ashnets_base"]["inference_flop_per_s"] / peak
    results["machine"] = machine()

    rows = [f"Device: {device} ({results['machine']['cpu_threads']} threads), fp32 matmul peak "
            f"{peak / 1e9:.1f} GFLOP/s, {results['machine']['date']}.", "",
            "| model / case | train step | train samples/s | inference samples/s | inference GFLOP/s (share of peak) | peak memory |",
            "| --- | --- | --- | --- | --- | --- |"]
    named = [(name if name.startswith("ViLT") else f"ashnets-tiny {name}", case) for name, case in tiny.items()]
    if "ashnets_base" in results:
        named.append(("ashnets-base (T=10, 384 px, batch 2)", results["ashnets_base"]))
    for name, case in named:
        rows.append(f"| {name} | {case.get('train_step_s', float('nan')) * 1000:.0f} ms | "
                    f"{case.get('train_samples_per_s', float('nan')):.0f} | {case['inference_samples_per_s']:.1f} | "
                    f"{case['inference_flop_per_s'] / 1e9:.1f} ({100 * case['inference_flop_per_s'] / peak:.0f} %) | "
                    f"{case['peak_memory_mib']:.0f} MiB |")
    ratios = results["ratios"]
    rows += ["", f"Ratios below are timed in alternating pairs ({4 * args.repeats} steps each), which cancels the "
                 "machine's drift; the table's rows are timed one after the other.", "", f"SNN branch at T=10 adds {100 * ratios['snn_branch_training_overhead_T10']:.0f} % to a training step "
                 f"(target <= 25 %); the repeat-mode fast path makes a T=10 step x{ratios['fast_path_training_speedup_T10']:.2f} "
                 f"faster, compiled neurons x{ratios['compiled_neurons_training_speedup_T10']:.2f}; ashnets-tiny (T=4) takes x{ratios['ashnets_T4_over_ann_twin_training_time']:.2f} the ANN twin's "
                 f"training step time and has x{ratios['ashnets_T4_over_vilt_inference_throughput']:.2f} ViLT's inference "
                 "throughput."]
    if "base_inference_share_of_peak" in ratios:
        rows.append(f"ashnets-base inference runs at {100 * ratios['base_inference_share_of_peak']:.0f} % of the matmul "
                    "peak (target >= 50 %).")
    rows.append("Peak memory on CPU is the process's peak resident set so far (it only grows), not the case's own.")
    table = "\n".join(rows) + "\n"
    write_results(args.results_dir, "performance", results, table)
    print(table)


if __name__ == "__main__":
    main()
