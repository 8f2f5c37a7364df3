"""Latency of deployed networks against their dense architecture: the structured grid's, or random closings.

By default every record of ``--records`` (the structured grid, :mod:`benchmarks.structured`) that
stores its deployed architecture and matches ``--models``/``--methods``/``--seeds`` is rebuilt at
those widths (:func:`lightning_auxprune.export.shrink.resize_to`; random values, since latency
depends on the widths only). ``--round-to N`` instead closes, in the dense architecture, as many
units per layer as the record's network lacks and shrinks with ``shrink(round_to=N)``: the
network the same masks give when every width is rounded up to a multiple of N. ``--closing F``
closes the fraction F of units with the smallest L1 norm in the layers of
``examples/configs/*_neuron.yaml`` and shrinks.

Both networks are exported as one would deploy them: BatchNorm folded into the convolutions
(:func:`lightning_auxprune.export.fold.fold_batchnorm`), and timed in the contiguous and the
channels_last memory format; the speedup compares each side's faster format. Each setting
(batch x threads) calls a model's dense network and all of its deployed networks in turn,
``--repeats`` times, and reports medians: the speedups of one setting share one dense time. Goal:
speedup >= 0.8 x MAC ratio at batch 64.

    python -m benchmarks.latency            # writes benchmarks/results/latency.json, docs/latency.md
    python -m benchmarks.latency --closing 0.5 --out benchmarks/results/latency_closing.json \\
        --markdown docs/latency_closing.md
    python -m benchmarks.latency --round-to 8 --out benchmarks/results/latency_round8.json \\
        --markdown docs/latency_round8.md
    python -m benchmarks.latency --quick --closing 0.5   # the VGG-like CNN, one setting
    python -m benchmarks.latency --accelerator gpu --batches 1 64 256 --threads 1 --dtype bfloat16 \\
        --out benchmarks/results/latency_gpu.json --markdown docs/latency_gpu.md
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from benchmarks.commands import add_accelerator, add_outputs, command_line, device_of, write_output
from benchmarks.compare import MODELS
from benchmarks.harness import Record, load_records
from benchmarks.timing import interleaved_medians, machine, state_bytes
from examples.models import build_model
from lightning_auxprune.export.bake import bake
from lightning_auxprune.export.fold import fold_batchnorm
from lightning_auxprune.export.shrink import layer_widths, resize_to, shrink
from lightning_auxprune.flops import count_flops
from lightning_auxprune.layer_selection import select_layers
from lightning_auxprune.options import MaskOptions
from lightning_auxprune.patch import patch_model

NEURON_LAYERS = {
    "vgg": MODELS["vgg"]["neuron_layers"],
    "resnet20": [r"net\.stages\.\d+\.conv1"],
    "mobilenetv2": [r"net\.blocks\.\d+\.depthwise"],
    "vit": [r"net\.blocks\.\d+\.fc1"],
}
"""Layers closed by ``--closing`` (per-layer masks, no coupling)."""
ONE = (1, 1, 28, 28)
FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""``--dtype``: what both networks and their input are cast to after BatchNorm is folded."""


@dataclass
class Pair:
    """A dense network and a deployed (narrower) one of the same architecture."""

    label: str
    arch: str
    dense: nn.Module
    deployed: nn.Module


class Wrapped(nn.Module):
    """The bare network under the name ``net``, as inside ``ImageClassifier``."""

    def __init__(self, arch: str) -> None:
        super().__init__()
        self.net = build_model(arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


def close_units(model: nn.Module, closing: dict[str, Callable[[torch.Tensor], torch.Tensor]]) -> None:
    """Patch the named layers with neuron masks and close the units each layer's function picks from its weight."""
    masks = patch_model(model, list(closing), MaskOptions(granularity="neuron"))
    model.eval()(torch.zeros(ONE))  # pairs BatchNorms with masked layers
    with torch.no_grad():
        for name, mask in masks.items():
            weight = cast(torch.Tensor, model.get_submodule(name).weight)
            mask.aux[closing[name](weight.detach())] = -1.0


def _smallest_l1(fraction: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def pick(weight: torch.Tensor) -> torch.Tensor:
        norms = weight.reshape(weight.shape[0], -1).abs().sum(dim=1)
        return norms.argsort()[: min(int(fraction * norms.numel()), norms.numel() - 1)]

    return pick


def close_smallest_units(model: nn.Module, include: list[str], fraction: float) -> None:
    """Patch ``include`` layers with neuron masks and close the lowest-L1 ``fraction`` of units."""
    close_units(model, {name: _smallest_l1(fraction) for name in select_layers(model, include=include)})


def closing_pair(arch: str, fraction: float) -> Pair:
    """The architecture with ``fraction`` of its lowest-L1 units closed and shrunk."""
    torch.manual_seed(0)
    model = Wrapped(arch)
    close_smallest_units(model, NEURON_LAYERS[arch], fraction)
    shrunk = shrink(model, torch.randn(2, *ONE[1:])).model
    return Pair(
        f"{fraction:.0%} lowest-L1 units closed", arch, cast(nn.Module, bake(model).net), cast(nn.Module, shrunk.net)
    )


def rebuild(record: Record) -> nn.Module:
    """A network of the record's architecture at its deployed widths (random weights, unit BatchNorm variance)."""
    assert record.widths is not None and record.shapes is not None
    torch.manual_seed(record.seed)
    state = {key: _placeholder(key, shape) for key, shape in record.shapes.items()}
    return resize_to(build_model(record.model), state, record.widths)


def _placeholder(key: str, shape: list[int]) -> torch.Tensor:
    """A tensor of ``shape`` valid for the state entry ``key`` (positive variances, integer counters)."""
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.long)
    return torch.ones(shape) if key.endswith("running_var") else torch.randn(shape) * 0.1


def closed_like(record: Record) -> nn.Module:
    """The record's dense architecture with neuron masks closing as many units per layer as its network lacks.

    The first units of each layer close, so coupled layers (equal widths) close the same channels.
    """
    assert record.widths is not None
    torch.manual_seed(record.seed)
    model = build_model(record.model)
    dense = layer_widths(model)
    closed = {
        name: dense[name][attr] - width
        for name, attrs in record.widths.items()
        for attr, width in attrs.items()
        if attr in ("out_channels", "out_features") and width < dense[name][attr]
    }
    close_units(model, {name: partial(_first, count) for name, count in closed.items()})
    return model


def _first(count: int, weight: torch.Tensor) -> torch.Tensor:
    return torch.arange(count)


def rounded(record: Record, round_to: int) -> nn.Module:
    """The record's network as ``shrink(round_to=round_to)`` gives it from the same closed units."""
    return shrink(closed_like(record), torch.randn(2, *ONE[1:]), round_to=round_to).model


def grid_pairs(records: list[Record], round_to: int | None = None) -> list[Pair]:
    """One pair per record of :func:`grid_records` (its network rebuilt, or rounded with ``round_to``)."""
    suffix = f", widths rounded to {round_to}" if round_to else ""
    return [
        Pair(
            f"{r.method} @ {r.setting:g} (seed {r.seed}){suffix}",
            r.model,
            build_model(r.model),
            rounded(r, round_to) if round_to else rebuild(r),
        )
        for r in records
    ]


def grid_records(
    path: str, models: list[str], methods: list[str] | None, seeds: list[int], budgets: list[float] | None = None
) -> list[Record]:
    """The pruned runs of a structured grid's records that store their deployed network, sorted by
    model, method and budget (largest first); exits with what to run when there are none."""
    records = [
        r
        for r in load_records(Path(path)).values()
        if r.variant == "structured"
        and r.method != "dense"
        and r.model in models
        and r.seed in seeds
        and (methods is None or r.method in methods)
        and (budgets is None or r.setting in budgets)
        and r.widths is not None
        and r.shapes is not None
    ]
    if not records:
        raise SystemExit(
            f"No record of {path} for these models, methods, seeds and budgets stores its deployed architecture; "
            "run benchmarks.structured."
        )
    return sorted(records, key=lambda r: (r.model, r.method, -r.setting))


def add_grid_selection(parser: argparse.ArgumentParser, models: list[str]) -> None:
    """``--records``, ``--models`` (default ``models``), ``--methods``, ``--seeds`` and ``--budgets``:
    which deployed networks of a structured grid a script measures (see :func:`selected_pairs`)."""
    parser.add_argument("--records", default="benchmarks/results/structured_runs.jsonl")
    parser.add_argument("--models", nargs="+", default=models, choices=list(NEURON_LAYERS))
    parser.add_argument("--methods", nargs="+", default=None, help="grid methods (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--budgets", nargs="+", type=float, default=None, help="grid budgets (default: all)")


def selected_pairs(args: argparse.Namespace, round_to: int | None = None) -> list[Pair]:
    """The dense and deployed networks of the records :func:`add_grid_selection`'s arguments select."""
    return grid_pairs(grid_records(args.records, args.models, args.methods, args.seeds, args.budgets), round_to)


def deploy(net: nn.Module, device: torch.device, dtype: torch.dtype = torch.float32) -> dict[str, nn.Module]:
    """The network with BatchNorm folded (in float32), cast to ``dtype``, in each memory format."""
    folded = fold_batchnorm(net.eval(), torch.randn(2, *ONE[1:])).model
    return {name: folded_copy(folded, fmt).to(device, dtype) for name, fmt in FORMATS.items()}


def folded_copy(net: nn.Module, fmt: torch.memory_format) -> nn.Module:
    """A copy of ``net`` whose 4-d weights are in memory format ``fmt``."""
    moved: nn.Module = copy.deepcopy(net).to(memory_format=fmt)  # type: ignore[call-overload]
    return moved


def measure(
    pairs: list[Pair],
    batches: list[int],
    threads: list[int],
    repeats: int,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> list[dict[str, Any]]:
    """One record per pair (MACs, parameters, bytes, latency per batch, threads and memory format).

    The pairs share one architecture: its dense network is timed once per setting, interleaved with
    every deployed network, so all speedups of a setting divide by the same dense time (timed apart,
    the same dense network's median moved by up to a third between pairs on a busy machine).
    """
    if len({pair.arch for pair in pairs}) != 1:
        raise ValueError(f"measure takes the pairs of one architecture, got {sorted({p.arch for p in pairs})}")
    dense = deploy(pairs[0].dense, device, dtype)
    deployed = [deploy(pair.deployed, device, dtype) for pair in pairs]
    one = torch.zeros(ONE, dtype=dtype, device=device)
    dense_macs = count_flops(dense["contiguous"], one) // 2
    dense_params = sum(p.numel() for p in dense["contiguous"].parameters())
    dense_bytes = state_bytes(dense["contiguous"])
    records: list[dict[str, Any]] = []
    for pair, nets in zip(pairs, deployed, strict=True):
        shrunk_macs = count_flops(nets["contiguous"], one) // 2
        records.append(
            {
                "label": pair.label,
                "arch": pair.arch,
                "dense_macs": dense_macs,
                "shrunk_macs": shrunk_macs,
                "dense_params": dense_params,
                "shrunk_params": sum(p.numel() for p in nets["contiguous"].parameters()),
                "dense_bytes": dense_bytes,
                "shrunk_bytes": state_bytes(nets["contiguous"]),
                "mac_ratio": dense_macs / shrunk_macs,
                "settings": [],
            }
        )
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        for batch in batches:
            x = torch.randn(batch, *ONE[1:], device=device, dtype=dtype)
            inputs = {name: x.contiguous(memory_format=fmt) for name, fmt in FORMATS.items()}
            fns: list[Callable[[], Any]] = [partial(net[f], inputs[f]) for net in [dense, *deployed] for f in FORMATS]
            times = iter(interleaved_medians(fns, repeats, device=device))
            dense_ms = {f: next(times) for f in FORMATS}
            for record in records:
                shrunk_ms = {f: next(times) for f in FORMATS}
                speedup = min(dense_ms.values()) / min(shrunk_ms.values())
                record["settings"].append(
                    {
                        "batch": batch,
                        "threads": n_threads,
                        "dense_ms": dense_ms,
                        "shrunk_ms": shrunk_ms,
                        "dense_format": min(dense_ms, key=dense_ms.__getitem__),
                        "shrunk_format": min(shrunk_ms, key=shrunk_ms.__getitem__),
                        "speedup": speedup,
                        "goal_met": speedup >= 0.8 * record["mac_ratio"],
                    }
                )
    return records


def markdown(results: dict[str, Any], command: str) -> str:
    """The docs table."""
    lines = [
        "# Latency of shrunk models",
        "",
        f"Generated by `{command}` (see `benchmarks/latency.py`); torch {results['machine']['torch']}, "
        f"{results['machine']['machine']}, {results['device']}, {results.get('dtype', 'float32')}, "
        f"{results['repeats']} interleaved repeats. "
        f"Networks: {results['source']}. Both sides have BatchNorm folded and run in their faster memory "
        "format (c: contiguous, cl: channels_last). Each setting times a model's dense network once, interleaved "
        "with all of its deployed networks, so its rows share one dense time. "
        "Goal: speedup >= 0.8 x (dense MACs / shrunk MACs) at batch 64.",
        "",
        "| model | network | MACs dense → shrunk | params dense → shrunk | batch | threads "
        "| dense ms | shrunk ms | speedup | 0.8 x MAC ratio | goal |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    short = {"contiguous": "c", "channels_last": "cl"}
    for rec in results["pairs"]:
        for s in rec["settings"]:
            dense_ms, shrunk_ms = s["dense_ms"][s["dense_format"]], s["shrunk_ms"][s["shrunk_format"]]
            goal = ("met" if s["goal_met"] else "missed") if s["batch"] >= 64 else "(batch 1: reported)"
            lines.append(
                f"| {rec['arch']} | {rec['label']} | {rec['dense_macs']:,} → {rec['shrunk_macs']:,} "
                f"| {rec['dense_params']:,} → {rec['shrunk_params']:,} | {s['batch']} | {s['threads']} "
                f"| {dense_ms:.3f} ({short[s['dense_format']]}) | {shrunk_ms:.3f} ({short[s['shrunk_format']]}) "
                f"| {s['speedup']:.2f}x | {0.8 * rec['mac_ratio']:.2f}x | {goal} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and write its JSON and markdown."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_grid_selection(parser, ["vgg", "resnet20", "mobilenetv2"])
    parser.add_argument("--closing", type=float, default=None, help="random closings of this fraction instead")
    parser.add_argument("--round-to", type=int, default=None, help="the grid's networks with widths rounded up to N")
    parser.add_argument("--quick", action="store_true", help="VGG-like only, batch 1, 1 thread, 3 repeats")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 64], help="batch sizes (quick: 1)")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="CPU threads (quick: 1)")
    parser.add_argument(
        "--dtype", default="float32", choices=list(DTYPES), help="both networks and the input (bfloat16: on a GPU)"
    )
    add_outputs(parser, "benchmarks/results/latency.json", "docs/latency.md")
    add_accelerator(parser)
    args = parser.parse_args(argv)
    device = device_of(args.accelerator)
    if args.quick:
        args.models = ["vgg"]
    batches, threads = ([1], [1]) if args.quick else (args.batches, args.threads)
    if min(batches) < 1 or min(threads) < 1:
        parser.error(f"--batches {batches} and --threads {threads} must be >= 1")
    repeats = 3 if args.quick else args.repeats
    if args.round_to is not None and (args.round_to < 1 or args.closing is not None):
        parser.error(f"--round-to {args.round_to}: needs N >= 1 and the grid's networks (not --closing)")
    if args.closing is not None:
        pairs = [closing_pair(arch, args.closing) for arch in args.models]
        source = f"the example CNNs with {args.closing:.0%} of the units of their neuron layers closed by L1 norm"
    else:
        pairs = selected_pairs(args, args.round_to)
        source = f"the deployed networks of the structured grid ({args.records})"
        if args.round_to:
            source += f", each width rounded up to a multiple of {args.round_to} by shrink(round_to={args.round_to})"
    initial_threads = torch.get_num_threads()
    results: dict[str, Any] = {
        "machine": machine(),
        "device": str(device),
        "dtype": args.dtype,
        "repeats": repeats,
        "source": source,
        "pairs": [],
    }
    for arch in dict.fromkeys(pair.arch for pair in pairs):  # the order of the pairs
        same = [pair for pair in pairs if pair.arch == arch]
        for record in measure(same, batches, threads, repeats, device, DTYPES[args.dtype]):
            results["pairs"].append(record)
            print(arch, record["label"], [round(s["speedup"], 2) for s in record["settings"]], flush=True)
    torch.set_num_threads(initial_threads)
    write_output(args.out, json.dumps(results, indent=2))
    command = command_line("benchmarks.latency", argv)
    write_output(args.markdown, markdown(results, command))
    print(markdown(results, command))
    return results


if __name__ == "__main__":
    main()
