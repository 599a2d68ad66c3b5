"""The GPU check: bf16 training and inference throughput of every family's base preset at the largest batch that fits,
peak memory, MFU, and spikingjelly's CUDA LIF implementations against its torch reference. Run by
scripts/gpu_check.sh on a machine lent a GPU (all of it in one call, well inside 10 minutes).

* Models: `ashnets-base` (VQA head, 3,129 answers), `gshn-base` (VQA head, a 4x4 grid of segments per image) and
  `spikeclip-base` (contrastive loss), on random inputs of the preset's sizes (throughput does not depend on the
  pixels); AdamW; bf16 autocast.
* Batch: doubled from `--start_batch` until a training step runs out of memory, passes `--max_batch` or takes longer
  than `--max_step_s`; the largest that ran is timed.
* MFU: executed FLOPs of one training step (`torch.utils.flop_counter`, the dense work really done) times steps per
  second, over the device's bf16 dense peak (datasheet, `--peak_tflops` to override) and over the best bf16 matrix
  multiply measured in the same run.
* LIF: `SJ_LIF_CUDA_IMPLEMENTATION` = torch, cuda and triton, each in its own process (spikingjelly reads it at import):
  spikes and input gradients against the CPU reference, on inputs in steps of 1/64 (exact arithmetic, so spikes must
  be equal) and on random floats (where rounding may flip a spike at the threshold; counted).

`--smoke` runs the same code on the tiny presets at batch 2 on any device (what gpu_check.sh does on a CPU machine, to
show that the script works); its results go to `--output_dir`, never over the GPU results.
"""

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.bench_performance import _sync, matmul_peak
from benchmarks.results_files import machine, write_results


ROOT = Path(__file__).resolve().parents[1]

# bf16 dense tensor-core peaks (datasheets, without sparsity), by a name fragment of torch.cuda.get_device_name.
BF16_PEAK_TFLOPS = {"H200": 989.4, "H100 PCIe": 756.0, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "L4": 121.0,
                    "A10": 125.0, "RTX 4090": 165.2}
LIF_IMPLEMENTATIONS = ("torch", "cuda", "triton")


def bf16_peak(device_name: str) -> float | None:
    for fragment, tflops in BF16_PEAK_TFLOPS.items():
        if fragment in device_name:
            return tflops * 1e12
    return None


def build(preset: str, device: torch.device):
    """(model, batch builder) for a preset: `make(batch_size)` returns the keyword arguments of a training step."""
    from modeling_ashnets import (
        AshNetsConfig,
        AshNetsForQuestionAnswering,
        GshnConfig,
        GshnForQuestionAnswering,
        SpikeClipConfig,
        SpikeClipModel,
    )

    answers = {i: f"answer {i}" for i in range(3129 if preset.endswith("base") else 16)}
    if preset.startswith("spikeclip"):
        config = SpikeClipConfig.from_preset(preset)
        model = SpikeClipModel(config)
        text, vision = config.text_config, config.vision_config

        def make(size):
            return {"input_ids": torch.randint(1, text.vocab_size, (size, text.max_position_embeddings), device=device),
                    "pixel_values": torch.randn(size, 3, vision.image_size, vision.image_size, device=device),
                    "return_loss": True}
        return model.to(device), make
    family = GshnConfig if preset.startswith("gshn") else AshNetsConfig
    config = family.from_preset(preset, id2label=answers)
    model = (GshnForQuestionAnswering if preset.startswith("gshn") else AshNetsForQuestionAnswering)(config)
    side, length = config.image_size, 32  # a VQA question is well under 32 tokens

    def make(size):
        labels = torch.zeros(size, config.num_labels, device=device)
        labels[:, 0] = 1.0
        batch = {"input_ids": torch.randint(1000, 2000, (size, length), device=device),
                 "attention_mask": torch.ones(size, length, dtype=torch.long, device=device),
                 "pixel_values": torch.randn(size, 3, side, side, device=device), "labels": labels}
        if preset.startswith("gshn"):  # a 4x4 grid of segments, within max_segments
            cells = torch.arange(side, device=device) * 4 // side
            grid = (cells[:, None] * 4 + cells[None, :]) % config.max_segments
            batch["segment_ids"] = grid.expand(size, side, side).contiguous()
        return batch
    return model.to(device), make


def _train_step(model, optimizer, batch, device):
    with torch.autocast(device.type, dtype=torch.bfloat16):
        loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


def largest_batch(model, optimizer, make, device, start: int, limit: int, max_step_s: float) -> int:
    """The largest batch (doubling from `start`) whose training step runs without running out of memory."""
    size, fitted = start, 0
    while size <= limit:
        try:
            _sync(device)
            started = time.perf_counter()
            _train_step(model, optimizer, make(size), device)
            _sync(device)
        except torch.OutOfMemoryError:
            optimizer.zero_grad(set_to_none=True)
            break
        finally:
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        fitted = size
        if time.perf_counter() - started > max_step_s:
            break
        size *= 2
    if not fitted:
        raise RuntimeError(f"Not even a batch of {start} fits on {device}.")
    return fitted


def measure_model(preset: str, device, args) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model, make = build(preset, device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda")
    if args.smoke:
        size = 2
    else:
        size = largest_batch(model, optimizer, make, device, args.start_batch, args.max_batch, args.max_step_s)
    batch = make(size)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(args.warmup):
        _train_step(model, optimizer, batch, device)
    _sync(device)
    started = time.perf_counter()
    for _ in range(args.steps):
        loss = _train_step(model, optimizer, batch, device)
    _sync(device)
    step_s = (time.perf_counter() - started) / args.steps
    with FlopCounterMode(display=False) as counter:
        _train_step(model, optimizer, batch, device)
    train_flops = counter.get_total_flops()

    model.eval()
    inputs = {key: value for key, value in batch.items() if key not in ("labels", "return_loss")}
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
        for _ in range(args.warmup):
            model(**inputs)
        _sync(device)
        started = time.perf_counter()
        for _ in range(args.steps):
            model(**inputs)
        _sync(device)
    infer_s = (time.perf_counter() - started) / args.steps
    result = {
        "batch_size": size, "train_step_s": step_s, "train_samples_per_s": size / step_s,
        "inference_samples_per_s": size / infer_s, "train_flops_per_step": train_flops,
        "achieved_tflops": train_flops / step_s / 1e12, "final_loss": float(loss.detach()),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    if device.type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    del model, optimizer, batch
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def lif_inputs(seed: int = 0, steps: int = 10, shape=(4096, 512)) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    random = torch.randn(steps, *shape, generator=generator) * 1.5 + 0.5
    return {"dyadic": torch.round(random * 64) / 64, "random": random}


def lif_run(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ASH-Nets' LIF settings (tau 2, threshold 1, hard reset 0, sigmoid surrogate): (spikes, input gradient)."""
    from spikingjelly.activation_based import functional, neuron, surrogate

    lif = neuron.LIFNode(tau=2.0, v_threshold=1.0, v_reset=0.0, surrogate_function=surrogate.Sigmoid(alpha=4.0),
                         detach_reset=True, step_mode="m")
    x = x.clone().requires_grad_(True)
    spikes = lif(x)
    spikes.sum().backward()
    functional.reset_net(lif)
    return spikes.detach(), x.grad


def lif_worker(output: str) -> None:
    """In a process whose SJ_LIF_CUDA_IMPLEMENTATION is set: spikes, gradients and time per call on the GPU."""
    device = torch.device("cuda")
    results = {}
    for name, x in lif_inputs().items():
        x = x.to(device)
        spikes, grad = lif_run(x)
        for _ in range(3):
            lif_run(x)
        _sync(device)
        started = time.perf_counter()
        calls = 10
        for _ in range(calls):
            lif_run(x)
        _sync(device)
        milliseconds = (time.perf_counter() - started) * 1000 / calls
        results[name] = {"spikes": spikes.cpu(), "grad": grad.cpu(), "ms": milliseconds}
    torch.save(results, output)


def run_lif_implementation(implementation: str) -> dict:
    """`lif_worker`'s results for one spikingjelly CUDA implementation, in a process of its own (spikingjelly reads
    SJ_LIF_CUDA_IMPLEMENTATION at import); RuntimeError with the worker's output when it fails."""
    with tempfile.TemporaryDirectory() as folder:
        output = os.path.join(folder, "lif.pt")
        environment = {**os.environ, "SJ_LIF_CUDA_IMPLEMENTATION": implementation}
        run = subprocess.run([sys.executable, "-m", "benchmarks.bench_gpu", "--lif_worker", output], cwd=ROOT,
                             env=environment, capture_output=True, text=True, timeout=240)
        if run.returncode != 0:
            raise RuntimeError((run.stderr or run.stdout)[-3000:])
        return torch.load(output)


def compare_lif() -> dict:
    """Each CUDA implementation against the CPU reference."""
    reference = {name: lif_run(x) for name, x in lif_inputs().items()}
    report = {}
    for implementation in LIF_IMPLEMENTATIONS:
        try:
            results = run_lif_implementation(implementation)
        except RuntimeError as error:
            report[implementation] = {"error": str(error)[-2000:]}
            continue
        entry = {}
        for name, (spikes, grad) in reference.items():
            got = results[name]
            entry[name] = {"spike_mismatches": int((got["spikes"] != spikes).sum()), "spikes": spikes.numel(),
                           "grad_max_abs_diff": float((got["grad"] - grad).abs().max()), "ms_per_call": got["ms"]}
        entry["equal_spikes_dyadic"] = entry["dyadic"]["spike_mismatches"] == 0
        report[implementation] = entry
    return report


def table(results: dict) -> str:
    lines = [f"Device: {results['device']}; bf16 peak {results['peak_bf16_tflops'] or '?'} TFLOP/s (datasheet), "
             f"best bf16 matrix multiply {results['matmul_bf16_tflops']:.0f} TFLOP/s (measured).", "",
             "| model | batch | train samples/s | inference samples/s | peak memory GiB | TFLOP/s | MFU (datasheet) "
             "| MFU (measured matmul) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for preset, entry in results["models"].items():
        if "error" in entry:
            lines.append(f"| {preset} | error: {entry['error'][:80]} | | | | | | |")
            continue
        lines.append(f"| {preset} | {entry['batch_size']} | {entry['train_samples_per_s']:.1f} | "
                     f"{entry['inference_samples_per_s']:.1f} | {entry.get('peak_memory_gib', 0):.1f} | "
                     f"{entry['achieved_tflops']:.1f} | {entry.get('mfu_datasheet', 0):.1%} | "
                     f"{entry.get('mfu_measured_matmul', 0):.1%} |")
    lines += ["", "| LIF implementation | equal spikes (1/64 inputs) | mismatches (random) | max grad diff "
                  "| ms per call |",
              "| --- | --- | --- | --- | --- |"]
    for implementation, entry in results.get("lif", {}).items():
        if "error" in entry:
            lines.append(f"| {implementation} | error | | | |")
            continue
        lines.append(f"| {implementation} | {entry['equal_spikes_dyadic']} | {entry['random']['spike_mismatches']} "
                     f"| {max(entry['dyadic']['grad_max_abs_diff'], entry['random']['grad_max_abs_diff']):.2e} | "
                     f"{entry['random']['ms_per_call']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["ashnets-base", "gshn-base", "spikeclip-base"])
    parser.add_argument("--smoke", action="store_true", help="tiny presets at batch 2 on any device, no LIF check")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--start_batch", type=int, default=8)
    parser.add_argument("--max_batch", type=int, default=1024)
    parser.add_argument("--max_step_s", type=float, default=4.0, help="stop doubling the batch past this step time")
    parser.add_argument("--peak_tflops", type=float, help="the device's bf16 dense peak, if not in the table")
    parser.add_argument("--output_dir", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--lif_worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.lif_worker:
        return lif_worker(args.lif_worker)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.smoke:
        raise SystemExit("No CUDA device: the GPU check needs one (--smoke runs its code on the tiny presets here).")
    if args.smoke:
        args.presets = [preset.replace("-base", "-tiny") for preset in args.presets]
        args.steps, args.warmup = 1, 1
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU (smoke run)"
    peak = args.peak_tflops * 1e12 if args.peak_tflops else bf16_peak(name)
    results = {"device": name, "peak_bf16_tflops": peak / 1e12 if peak else None, "smoke": args.smoke,
               "matmul_bf16_tflops": matmul_peak(device, sizes=(256 if args.smoke else 8192,), repeats=10,
                                                 dtype=torch.bfloat16) / 1e12,
               "models": {}, "machine": machine()}
    for preset in args.presets:
        print(f"bench_gpu: {preset} ...", flush=True)
        try:
            entry = measure_model(preset, device, args)
        except Exception as error:  # one model's failure must not lose the others' numbers
            entry = {"error": f"{type(error).__name__}: {error}"}
        if "achieved_tflops" in entry:
            entry["mfu_measured_matmul"] = entry["achieved_tflops"] / results["matmul_bf16_tflops"]
            if peak:
                entry["mfu_datasheet"] = entry["achieved_tflops"] * 1e12 / peak
        results["models"][preset] = entry
        print(json.dumps({preset: entry}), flush=True)
        write_results(args.output_dir, "gpu", results, table(results))  # each stage's numbers kept as it ends
    if device.type == "cuda":
        results["lif"] = compare_lif()
        write_results(args.output_dir, "gpu", results, table(results))
    print(table(results))
    failed = [preset for preset, entry in results["models"].items() if "error" in entry]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
