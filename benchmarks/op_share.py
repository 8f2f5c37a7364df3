"""Where a deployed network's inference time goes, against its dense architecture.

For the networks of the structured grid that :mod:`benchmarks.latency` times (rebuilt from their
records, BatchNorm folded, ``channels_last``), ``torch.profiler`` sums the self CPU time of each
kind of op: convolutions, Linear layers, attention, elementwise ops (ReLU, GELU, residual
additions) and the rest.
The dense network and every deployed one are profiled in turn, ``--rounds`` times, so a slow
phase of the machine hits all of them. The table gives each kind's milliseconds per forward and,
for the deployed networks, its speedup next to the MAC ratio: whether the convolutions
themselves fall short of their MACs, or work that does not scale with them.

    python -m benchmarks.op_share --records benchmarks/results/structured_full_runs.jsonl \\
        --models resnet20 --seeds 0 --out benchmarks/results/op_share.json --markdown docs/op_share.md
"""

from __future__ import annotations

import argparse
import collections
from typing import Any

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from benchmarks.commands import add_outputs, command_line, publish
from benchmarks.latency import ONE, Pair, add_grid_selection, deploy, selected_pairs
from lightning_auxprune.flops import count_flops

KINDS = {
    "convolution": {"convolution", "_convolution", "conv2d", "mkldnn_convolution", "conv1d"},
    "matmul": {"linear", "addmm", "mm", "matmul", "_addmm_activation"},
    "attention": {
        "_native_multi_head_attention",
        "_transform_bias_rescale_qkv",
        "bmm",
        "baddbmm",
        "_softmax",
        "_masked_softmax",
        "_scaled_dot_product_flash_attention_for_cpu",
    },
    "elementwise": {
        *("relu", "relu_", "clamp_min", "clamp_min_", "clamp", "clamp_", "hardtanh", "hardtanh_"),
        *("add", "add_", "gelu", "mul", "div", "sub"),
    },
}
"""Op kinds by the profiler's op name (``matmul``: Linear layers; ``attention``: what
``nn.MultiheadAttention`` runs besides its projections; ``elementwise``: activations, ReLU6's
``clamp`` among them, and residual sums); anything else (pooling, normalisation, copies) is ``other``."""


def kind_of(op: str) -> str:
    """The kind of a profiler op name.

    Example:
        >>> [kind_of(op) for op in ("aten::mkldnn_convolution", "aten::addmm", "aten::clamp", "aten::cat")]
        ['convolution', 'matmul', 'elementwise', 'other']

    """
    name = op.split("::")[-1]
    return next((kind for kind, names in KINDS.items() if name in names), "other")


def op_times(nets: list[nn.Module], x: torch.Tensor, rounds: int, iters: int) -> list[dict[str, float]]:
    """Milliseconds per forward of each op kind (and ``total``) for each network, profiled in turn."""
    sums: list[collections.Counter[str]] = [collections.Counter() for _ in nets]
    with torch.inference_mode():
        for net in nets:  # warm-up: oneDNN picks and caches its kernels on the first calls
            for _ in range(3):
                net(x)
        for _ in range(rounds):
            for net, total in zip(nets, sums, strict=True):
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    for _ in range(iters):
                        net(x)
                for event in prof.key_averages():
                    total[kind_of(event.key)] += event.self_cpu_time_total / 1000.0
    calls = rounds * iters
    return [{kind: ms / calls for kind, ms in total.items()} | {"total": sum(total.values()) / calls} for total in sums]


def measure(arch_pairs: list[Pair], batch: int, threads: int, rounds: int, iters: int) -> list[dict[str, Any]]:
    """One row for the dense network, then one per deployed network of the same architecture."""
    torch.set_num_threads(threads)
    dense = deploy(arch_pairs[0].dense, torch.device("cpu"))["channels_last"]
    deployed = [deploy(pair.deployed, torch.device("cpu"))["channels_last"] for pair in arch_pairs]
    one = torch.zeros(ONE)
    macs = [count_flops(net, one) // 2 for net in [dense, *deployed]]
    x = torch.randn(batch, *ONE[1:]).contiguous(memory_format=torch.channels_last)
    times = op_times([dense, *deployed], x, rounds, iters)
    labels = ["dense", *(pair.label for pair in arch_pairs)]
    rows = []
    for label, net_macs, ms in zip(labels, macs, times, strict=True):
        row: dict[str, Any] = {"arch": arch_pairs[0].arch, "network": label, "threads": threads, "macs": net_macs}
        row["ms"] = ms
        row["mac_ratio"] = macs[0] / net_macs
        row["speedup"] = {kind: times[0][kind] / ms[kind] for kind in ms if ms[kind] > 0 and kind in times[0]}
        rows.append(row)
    return rows


def markdown(results: dict[str, Any], command: str) -> str:
    """The docs table: per network, milliseconds per forward by op kind, and speedups against dense."""
    kinds = [*KINDS, "other", "total"]
    lines = [
        "# Where the inference time goes",
        "",
        f"Generated by `{command}` (see `benchmarks/op_share.py`); batch {results['batch']}, "
        f"{results['rounds']} rounds of {results['iters']} forwards, BatchNorm "
        "folded, channels_last. Self CPU time of each op kind per forward (torch.profiler), in ms, and in "
        "brackets its speedup against the dense network's same kind.",
        "",
        "| model | network | threads | MAC ratio | " + " | ".join(kinds) + " |",
        "|---|---|---|---|" + "---|" * len(kinds),
    ]
    for row in results["rows"]:
        cells = []
        for kind in kinds:
            ms = row["ms"].get(kind, 0.0)
            speedup = row["speedup"].get(kind)
            cells.append(f"{ms:.2f}" + (f" ({speedup:.2f}x)" if speedup and row["network"] != "dense" else ""))
        lines.append(
            f"| {row['arch']} | {row['network']} | {row['threads']} | {row['mac_ratio']:.2f}x | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Profile the grid's deployed networks and write the JSON and the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_grid_selection(parser, ["resnet20"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", nargs="+", type=int, default=[1], help="CPU threads (each a block of rows)")
    parser.add_argument("--rounds", type=int, default=5, help="each network is profiled once a round, in turn")
    parser.add_argument("--iters", type=int, default=10, help="forwards per profile")
    parser.add_argument("--quick", action="store_true", help="batch 2, 1 round of 2 forwards")
    add_outputs(parser, "benchmarks/results/op_share.json", "docs/op_share.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.rounds, args.iters = 2, 1, 2
    if min(args.batch, *args.threads, args.rounds, args.iters) < 1:
        parser.error("--batch, --threads, --rounds and --iters must be >= 1")
    pairs = selected_pairs(args)
    initial_threads = torch.get_num_threads()
    rows = []
    for arch in dict.fromkeys(pair.arch for pair in pairs):
        for threads in args.threads:
            rows += measure([p for p in pairs if p.arch == arch], args.batch, threads, args.rounds, args.iters)
    torch.set_num_threads(initial_threads)
    results = {key: getattr(args, key) for key in ("batch", "threads", "rounds", "iters", "records")}
    results["rows"] = rows
    publish(args.out, args.markdown, results, markdown(results, command_line("benchmarks.op_share", argv)))
    return results


if __name__ == "__main__":
    main()
