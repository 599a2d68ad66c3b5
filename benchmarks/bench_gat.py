"""GSHN's dense graph attention layer against PyTorch Geometric's `GATConv`: the same function, and what each costs.

Both get the same weights and the same graphs: B images of N nodes with a random symmetric adjacency (self-loops
included), as GSHN's segment graphs are. `GATConv` needs the graphs as an `edge_index` over the batch's flattened
nodes, which `nonzero()` builds from the adjacency (a host-device synchronisation on a GPU); that conversion is
timed with it, since GSHN would run it at every forward. Forward plus backward, median of rounds that alternate the
two layers; ratios, not absolute times, are the result (docs/model.md section 8 uses them).

    python -m benchmarks.bench_gat
Writes benchmarks/results/gat.json and gat.md.
"""

import argparse
import statistics
import time
from pathlib import Path

import torch

from benchmarks.results_files import machine, write_results
from modeling_ashnets.modeling_gshn import GshnGraphAttentionLayer

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ((32, 9, 128, 4), (64, 9, 128, 4), (32, 33, 768, 4))  # (batch, nodes, width, heads): gshn-tiny, gshn-base


def layers(width: int, heads: int):
    """The dense layer and a GATConv holding the same weights."""
    from torch_geometric.nn import GATConv

    dense = GshnGraphAttentionLayer(width, heads, dropout=0.0)
    for parameter in (dense.attention_source, dense.attention_target, dense.bias):
        torch.nn.init.normal_(parameter)
    reference = GATConv(width, width // heads, heads=heads, concat=True, add_self_loops=False)
    with torch.no_grad():
        reference.lin.weight.copy_(dense.linear.weight)
        reference.att_src.copy_(dense.attention_source[None])
        reference.att_dst.copy_(dense.attention_target[None])
        reference.bias.copy_(dense.bias)
    return dense, reference


def measure(batch: int, nodes: int, width: int, heads: int, rounds: int, steps: int) -> dict:
    torch.manual_seed(0)
    dense, reference = layers(width, heads)
    features = torch.randn(batch, nodes, width, requires_grad=True)
    adjacency = torch.rand(batch, nodes, nodes) < 0.3
    adjacency |= adjacency.transpose(1, 2) | torch.eye(nodes, dtype=torch.bool)

    def dense_step():
        return dense(features, adjacency)

    def pyg_step():
        image, receiver, sender = adjacency.nonzero(as_tuple=True)
        edges = torch.stack([image * nodes + sender, image * nodes + receiver])
        return reference(features.reshape(batch * nodes, width), edges).view(batch, nodes, width)

    difference = (dense_step() - pyg_step()).abs().max().item()
    times = {"dense": [], "torch_geometric": []}
    for _ in range(rounds):
        for name, step in (("dense", dense_step), ("torch_geometric", pyg_step)):
            started = time.perf_counter()
            for _ in range(steps):
                step().sum().backward()
            times[name].append((time.perf_counter() - started) / steps)
    dense_ms, pyg_ms = (1e3 * statistics.median(times[name]) for name in ("dense", "torch_geometric"))
    return {"batch": batch, "nodes": nodes, "width": width, "heads": heads, "max_abs_difference": difference,
            "dense_ms": dense_ms, "torch_geometric_ms": pyg_ms, "dense_over_torch_geometric": dense_ms / pyg_ms}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    rows = [measure(*shape, args.rounds, args.steps) for shape in SHAPES]
    table = ["| batch x nodes x width (heads) | max difference | dense (ms) | GATConv with edge_index (ms) | "
             "dense / GATConv |", "| --- | --- | --- | --- | --- |"]
    table += [f"| {r['batch']} x {r['nodes']} x {r['width']} ({r['heads']}) | {r['max_abs_difference']:.1e} | "
              f"{r['dense_ms']:.2f} | {r['torch_geometric_ms']:.2f} | {r['dense_over_torch_geometric']:.2f} |"
              for r in rows]
    table.append("\nForward and backward of one graph attention layer on the CPU (2 threads), median of "
                 f"{args.rounds} alternating rounds of {args.steps} steps.")
    write_results(str(ROOT / "benchmarks" / "results"), "gat", {"rows": rows, "machine": machine()},
                  "\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
