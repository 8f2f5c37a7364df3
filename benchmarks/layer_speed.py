"""How fast each convolution of a deployed network runs, against the same layer of the dense network.

:mod:`benchmarks.op_share` says how much of a network's time its convolutions take; this script
says which of them fall short of their MACs. For the networks of the structured grid (rebuilt
from their records, BatchNorm folded, ``channels_last``, as :mod:`benchmarks.latency` times
them) it records the input each ``Conv2d`` sees in one forward, then times every convolution on
its own with that input: the dense network's and every deployed network's layers in turn, once
a round, so a slow phase of the machine hits all of them. The table gives each layer's channels,
milliseconds and MACs per second (GMAC/s): a layer that keeps a fifth of its MACs but runs at half
the dense layer's GMAC/s is only 2.5x faster.

    python -m benchmarks.layer_speed --records benchmarks/results/structured_full_runs.jsonl \\
        --models resnet20 --methods autoprune tp_l1 --seeds 0 --budgets 0.25 \\
        --out benchmarks/results/layer_speed.json --markdown docs/layer_speed.md
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from benchmarks.commands import add_outputs, command_line, publish
from benchmarks.latency import ONE, Pair, add_grid_selection, deploy, selected_pairs


def conv_inputs(net: nn.Module, x: torch.Tensor) -> dict[str, tuple[nn.Conv2d, torch.Size]]:
    """Each ``Conv2d`` of ``net`` by name, with the shape of the input it sees when ``net(x)`` runs.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.Conv2d(4, 8, 3))
        >>> {name: tuple(shape) for name, (_, shape) in conv_inputs(net, torch.zeros(2, 1, 9, 9)).items()}
        {'0': (2, 1, 9, 9), '1': (2, 4, 4, 4)}

    """
    seen: dict[str, tuple[nn.Conv2d, torch.Size]] = {}

    def hook(name: str, conv: nn.Conv2d) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]:
        return lambda _module, inputs, _output: seen.__setitem__(name, (conv, inputs[0].shape))

    convs = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    handles = [conv.register_forward_hook(hook(name, conv)) for name, conv in convs]
    try:
        with torch.inference_mode():
            net(x)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def conv_macs(conv: nn.Conv2d, shape: torch.Size) -> int:
    """Multiply-accumulates of ``conv`` on an input of ``shape`` (from its output size).

    Example:
        >>> conv_macs(nn.Conv2d(2, 4, 3, padding=1), torch.Size([1, 2, 5, 5]))  # 4 x 5 x 5 outputs, 2 x 9 each
        1800

    """
    with torch.inference_mode():
        out = conv(torch.zeros(1, *shape[1:]))
    return (
        int(shape[0] * out[0].numel()) * (conv.in_channels // conv.groups) * conv.kernel_size[0] * conv.kernel_size[1]
    )


def layer_times(layers: list[tuple[nn.Conv2d, torch.Tensor]], rounds: int, iters: int) -> list[float]:
    """Median over ``rounds`` of each layer's milliseconds per call; every layer once a round, in turn."""
    samples: list[list[float]] = [[] for _ in layers]
    with torch.inference_mode():
        for conv, x in layers:  # warm-up: oneDNN picks and caches its kernels on the first calls
            for _ in range(3):
                conv(x)
        for _ in range(rounds):
            for (conv, x), times in zip(layers, samples, strict=True):
                start = time.perf_counter()
                for _ in range(iters):
                    conv(x)
                times.append((time.perf_counter() - start) * 1000 / iters)
    return [statistics.median(times) for times in samples]


def measure(arch_pairs: list[Pair], batch: int, rounds: int, iters: int) -> list[dict[str, Any]]:
    """One row per convolution of the dense architecture: its dense and each deployed network's timing."""
    nets = [arch_pairs[0].dense, *(pair.deployed for pair in arch_pairs)]
    nets = [deploy(net, torch.device("cpu"))["channels_last"] for net in nets]
    x = torch.randn(batch, *ONE[1:]).contiguous(memory_format=torch.channels_last)
    convs = [conv_inputs(net, x) for net in nets]
    names = list(convs[0])
    layers = [
        (conv, torch.randn(shape).contiguous(memory_format=torch.channels_last))
        for seen in convs
        for conv, shape in (seen[name] for name in names)
    ]
    times = layer_times(layers, rounds, iters)
    labels = ["dense", *(pair.label for pair in arch_pairs)]
    rows = []
    for i, name in enumerate(names):
        row: dict[str, Any] = {"arch": arch_pairs[0].arch, "layer": name, "networks": {}}
        for j, (label, seen) in enumerate(zip(labels, convs, strict=True)):
            conv, shape = seen[name]
            ms = times[j * len(names) + i]
            macs = conv_macs(conv, shape)
            row["networks"][label] = {
                "in_channels": conv.in_channels,
                "out_channels": conv.out_channels,
                "resolution": list(shape[2:]),
                "macs": macs,
                "ms": ms,
                "gmacs_per_s": macs / ms / 1e6,
            }
        rows.append(row)
    return rows


def markdown(results: dict[str, Any], command: str) -> str:
    """The docs page: per layer, channels, ms and GMAC/s of the dense and of each deployed network."""
    lines = [
        "# How fast each convolution runs",
        "",
        f"Generated by `{command}` (see `benchmarks/layer_speed.py`); batch {results['batch']}, one thread, "
        f"medians of {results['rounds']} rounds of {results['iters']} calls, BatchNorm folded, channels_last. "
        "Each cell: input → output channels, ms per call, GMAC/s.",
    ]
    for arch in dict.fromkeys(row["arch"] for row in results["rows"]):
        rows = [row for row in results["rows"] if row["arch"] == arch]
        labels = list(rows[0]["networks"])
        lines += ["", f"## {arch}", "", "| layer | input | " + " | ".join(labels) + " |"]
        lines.append("|---|---|" + "---|" * len(labels))
        for row in rows:
            cells = [
                f"{n['in_channels']}→{n['out_channels']}: {n['ms']:.3f} ms, {n['gmacs_per_s']:.0f}"
                for n in row["networks"].values()
            ]
            size = "x".join(str(s) for s in row["networks"]["dense"]["resolution"])
            lines.append(f"| {row['layer']} | {size} | " + " | ".join(cells) + " |")
        totals = [sum(row["networks"][label]["ms"] for row in rows) for label in labels]
        macs = [sum(row["networks"][label]["macs"] for row in rows) for label in labels]
        lines.append(
            "| all convolutions | | "
            + " | ".join(
                f"{ms:.2f} ms, {m / ms / 1e6:.0f} ({macs[0] / m:.2f}x fewer MACs)"
                for ms, m in zip(totals, macs, strict=True)
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Time every convolution of the grid's deployed networks and write the JSON and the markdown page."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_grid_selection(parser, ["resnet20"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=15, help="each layer is timed once a round, in turn")
    parser.add_argument("--iters", type=int, default=5, help="calls per timing")
    parser.add_argument("--quick", action="store_true", help="batch 2, 1 round of 1 call")
    add_outputs(parser, "benchmarks/results/layer_speed.json", "docs/layer_speed.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.rounds, args.iters = 2, 1, 1
    if min(args.batch, args.rounds, args.iters) < 1:
        parser.error("--batch, --rounds and --iters must be >= 1")
    pairs = selected_pairs(args)
    initial_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []
    for arch in dict.fromkeys(pair.arch for pair in pairs):
        rows += measure([p for p in pairs if p.arch == arch], args.batch, args.rounds, args.iters)
    torch.set_num_threads(initial_threads)
    results = {key: getattr(args, key) for key in ("batch", "rounds", "iters", "records")}
    results["rows"] = rows
    publish(args.out, args.markdown, results, markdown(results, command_line("benchmarks.layer_speed", argv)))
    return results


if __name__ == "__main__":
    main()
