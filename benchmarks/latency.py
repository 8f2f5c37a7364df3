"""Dense vs shrunk latency, MACs, parameters and bytes of the neuron-pruned example CNNs.

For each model, neuron masks are attached to the layers whose units can be removed exactly
(same patterns as ``examples/configs/*_neuron.yaml``) and the ``--fraction`` of units with the
smallest L1 norm is closed; :func:`lightning_auxprune.export.shrink` then removes them. Latency depends
only on the resulting widths, not on how the masks were learned. Each setting (batch size x
threads) reports the median of ``--repeats`` interleaved runs.

    python -m benchmarks.latency            # writes benchmarks/results/latency.json, docs/latency.md
    python -m benchmarks.latency --quick    # one small setting, for smoke tests
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from benchmarks.commands import add_accelerator, command_line, device_of
from benchmarks.compare import MODELS
from benchmarks.timing import interleaved_medians, machine, state_bytes
from examples.models import build_model
from lightning_auxprune.export.bake import bake
from lightning_auxprune.export.shrink import shrink
from lightning_auxprune.flops import count_flops
from lightning_auxprune.layer_selection import select_layers
from lightning_auxprune.options import MaskOptions
from lightning_auxprune.patch import patch_model

NEURON_LAYERS = {
    "vgg": MODELS["vgg"]["neuron_layers"],
    "resnet20": [r"net\.stages\.\d+\.conv1"],
    "mobilenetv2": [r"net\.blocks\.\d+\.depthwise"],
}


class Wrapped(nn.Module):
    """The bare network under the name ``net``, as inside ``ImageClassifier``."""

    def __init__(self, arch: str) -> None:
        super().__init__()
        self.net = build_model(arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


def close_smallest_units(model: nn.Module, include: list[str], fraction: float) -> None:
    """Patch ``include`` layers with neuron masks and close the lowest-L1 ``fraction`` of units."""
    masks = patch_model(model, select_layers(model, include=include), MaskOptions(granularity="neuron"))
    model.eval()(torch.zeros(1, 1, 28, 28))  # pairs BatchNorms with masked layers
    with torch.no_grad():
        for name, mask in masks.items():
            weight = cast(torch.Tensor, model.get_submodule(name).weight)
            norms = weight.detach().reshape(weight.shape[0], -1).abs().sum(dim=1)
            count = min(int(fraction * norms.numel()), norms.numel() - 1)
            mask.aux[norms.argsort()[:count]] = -1.0


def measure(
    arch: str,
    fraction: float,
    batches: list[int],
    threads: list[int],
    repeats: int,
    fuse_bn: bool = False,
    device: torch.device | None = None,
) -> dict[str, Any]:
    """One model's record (``fuse_bn``: fold BatchNorm into convolutions on both sides first)."""
    torch.manual_seed(0)
    model = Wrapped(arch)
    close_smallest_units(model, NEURON_LAYERS[arch], fraction)
    example = torch.randn(2, 1, 28, 28)
    result = shrink(model, example)
    dense_model = bake(model).eval()
    shrunk = result.model.eval()
    if fuse_bn:
        from torch.fx.experimental.optimization import fuse

        dense_model, shrunk = fuse(dense_model), fuse(shrunk)
    one = torch.zeros(1, 1, 28, 28)
    record: dict[str, Any] = {
        "fraction_closed": fraction,
        "dense_macs": count_flops(dense_model, one) // 2,
        "shrunk_macs": count_flops(shrunk, one) // 2,
        "dense_params": sum(p.numel() for p in dense_model.parameters()),
        "shrunk_params": sum(p.numel() for p in shrunk.parameters()),
        "dense_bytes": state_bytes(dense_model),
        "shrunk_bytes": state_bytes(shrunk),
        "settings": [],
    }
    mac_ratio = record["dense_macs"] / record["shrunk_macs"]
    record["mac_ratio"] = mac_ratio
    device = device or torch.device("cpu")
    dense_model, shrunk = dense_model.to(device), shrunk.to(device)
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        for batch in batches:
            x = torch.randn(batch, 1, 28, 28, device=device)
            fns: list[Callable[[], Any]] = [partial(dense_model, x), partial(shrunk, x)]
            dense_ms, shrunk_ms = interleaved_medians(fns, repeats, device=device)
            speedup = dense_ms / shrunk_ms
            record["settings"].append(
                {
                    "batch": batch,
                    "threads": n_threads,
                    "dense_ms": dense_ms,
                    "shrunk_ms": shrunk_ms,
                    "speedup": speedup,
                    "goal_met": speedup >= 0.8 * mac_ratio,
                }
            )
    return record


def markdown(results: dict[str, Any], command: str) -> str:
    """The docs table."""
    lines = [
        "# Latency of shrunk models",
        "",
        f"Generated by `{command}` (see `benchmarks/latency.py`); torch {results['machine']['torch']}, "
        f"{results['machine']['machine']}. Goal: speedup >= 0.8 x (dense MACs / shrunk MACs).",
        "",
        "| model | closed units | MACs dense → shrunk | params dense → shrunk | bytes dense → shrunk | batch | threads "
        "| dense ms | shrunk ms | speedup | 0.8 x MAC ratio | goal |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arch, rec in results["models"].items():
        for s in rec["settings"]:
            lines.append(
                f"| {arch} | {rec['fraction_closed']:.0%} | {rec['dense_macs']:,} → {rec['shrunk_macs']:,} "
                f"| {rec['dense_params']:,} → {rec['shrunk_params']:,} "
                f"| {rec['dense_bytes']:,} → {rec['shrunk_bytes']:,} "
                f"| {s['batch']} | {s['threads']} | {s['dense_ms']:.3f} | {s['shrunk_ms']:.3f} | {s['speedup']:.2f}x "
                f"| {0.8 * rec['mac_ratio']:.2f}x | {'met' if s['goal_met'] else 'missed'} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and write its JSON and markdown."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one model, batch 1, 1 thread, few repeats")
    parser.add_argument("--fraction", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--fuse-bn", action="store_true", help="fold BatchNorm into convs (both models)")
    parser.add_argument("--out", default="benchmarks/results/latency.json")
    parser.add_argument("--markdown", default="docs/latency.md")
    add_accelerator(parser)
    args = parser.parse_args(argv)
    device = device_of(args.accelerator)
    archs = ["vgg"] if args.quick else list(NEURON_LAYERS)
    batches, threads = ([1], [1]) if args.quick else ([1, 64], [1, 2])
    repeats = 3 if args.quick else args.repeats
    initial_threads = torch.get_num_threads()
    results: dict[str, Any] = {"machine": machine(), "repeats": repeats, "fuse_bn": args.fuse_bn, "models": {}}
    for arch in archs:
        results["models"][arch] = measure(arch, args.fraction, batches, threads, repeats, args.fuse_bn, device)
        print(json.dumps({arch: results["models"][arch]["settings"]}, indent=1))
    torch.set_num_threads(initial_threads)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    command = command_line("benchmarks.latency", argv)
    Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
    Path(args.markdown).write_text(markdown(results, command))
    print(markdown(results, command))
    return results


if __name__ == "__main__":
    main()
