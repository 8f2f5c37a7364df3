"""Summaries, tables and Pareto plots from ``benchmarks/results/runs.jsonl``.

``compression_at_0.5pt`` of a model and method is the largest mean compression (over seeds) of a
setting whose mean test accuracy is within 0.5 points of the same model's mean dense accuracy;
``flops_at_0.5pt`` likewise the smallest FLOPs ratio. ``null`` where no setting qualifies.

    python -m benchmarks.report     # writes benchmarks/results/summary.json, docs/benchmarks.md, docs/img/*.png
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.commands import command_line, write_output
from benchmarks.compare import REGISTRY


def load(path: Path) -> list[dict[str, Any]]:
    """All records of a runs.jsonl file."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def aggregate(records: list[dict[str, Any]]) -> dict[str, dict[tuple[str, float], dict[str, Any]]]:
    """model -> (method, setting) -> means/stds over seeds."""
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["model"], r["method"], r["setting"])].append(r)
    table: dict[str, dict[tuple[str, float], dict[str, Any]]] = defaultdict(dict)
    for (model, method, setting), runs in groups.items():

        def stat(key: str, runs: list[dict[str, Any]] = runs) -> tuple[float, float]:
            values = [r[key] for r in runs if r[key] is not None]
            return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0

        table[model][(method, setting)] = {
            "seeds": len(runs),
            "epochs": runs[0]["epochs"],
            "accuracy": stat("accuracy"),
            "val_accuracy": stat("val_accuracy"),
            "compression": stat("compression"),
            "flops_ratio": stat("flops_ratio"),
            "step_time_ratio": stat("step_time_ratio"),
        }
    return table


def summarize(table: dict[str, dict[tuple[str, float], dict[str, Any]]]) -> dict[str, Any]:
    """The summary.json content."""
    summary: dict[str, Any] = {}
    for model, rows in table.items():
        dense = rows.get(("dense", 0.0))
        if dense is None:
            continue
        bar = dense["accuracy"][0] - 0.005
        per_method: dict[str, Any] = {}
        for method in sorted({m for m, _ in rows}):
            ok = [v for (m, _), v in rows.items() if m == method and v["accuracy"][0] >= bar]
            per_method[method] = {
                "compression_at_0.5pt": max((v["compression"][0] for v in ok), default=None),
                "flops_at_0.5pt": min((v["flops_ratio"][0] for v in ok), default=None),
            }
        summary[model] = {"dense_accuracy": dense["accuracy"][0], "methods": per_method}
    return summary


def plot(table: dict[str, dict[tuple[str, float], dict[str, Any]]], folder: Path) -> list[Path]:
    """Accuracy vs compression and accuracy vs FLOPs per model (mean ± std over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for model, rows in table.items():
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        palette = plt.get_cmap("tab20")  # more methods than the default cycle's 10 colours
        for index, method in enumerate(sorted({m for m, _ in rows})):
            points = sorted((v for (m, _), v in rows.items() if m == method), key=lambda v: v["compression"][0])
            for axis, key, scale in ((axes[0], "compression", "log"), (axes[1], "flops_ratio", "log")):
                axis.errorbar(
                    [p[key][0] for p in points],
                    [100 * p["accuracy"][0] for p in points],
                    yerr=[100 * p["accuracy"][1] for p in points],
                    marker="os^Dv"[index % 5],
                    color=palette((2 * index) % 20 + (index // 10) % 2),
                    capsize=3,
                    label=method,
                )
                axis.set_xscale(scale)
        axes[0].set_xlabel("compression (weights / non-zero weights)")
        axes[1].set_xlabel("FLOPs with non-zero weights / dense FLOPs")
        for axis in axes:
            axis.set_ylabel("test accuracy (%)")
            axis.grid(alpha=0.3)
        axes[1].legend(fontsize=8)
        fig.suptitle(f"{model} on Fashion-MNIST")
        fig.tight_layout()
        path = folder / f"pareto_{model}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


# Methods whose setting is a pruned fraction s (the knob is then the asked-for compression
# 1 / (1 - s)); the others' setting is lambda (or a FLOPs fraction).
FRACTION_SETTINGS = {name for name, method in REGISTRY.items() if method.setting == "fraction"}


def knob(method: str, setting: float) -> float:
    """The value a user turns: lambda, or the asked-for compression ``1 / (1 - s)``."""
    return 1.0 / (1.0 - setting) if method in FRACTION_SETTINGS else setting


def sensitivity(rows: dict[tuple[str, float], dict[str, Any]]) -> list[str]:
    """How much compression and accuracy move when a method's knob moves (consecutive settings).

    ``elasticity`` = log(compression ratio) / log(knob ratio): 1 means the compression follows the
    knob proportionally, larger means a small change of the knob moves the result a lot.
    """
    lines = [
        "| method | knob | from → to | knob ratio | compression ratio | elasticity | accuracy change (pt) "
        "| accuracy std over seeds (pt) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method in sorted({m for m, _ in rows} - {"dense"}):
        settings = sorted(s for m, s in rows if m == method)
        name = "target compression" if method in FRACTION_SETTINGS else "λ"
        for low, high in itertools.pairwise(settings):
            a, b = rows[(method, low)], rows[(method, high)]
            k = knob(method, high) / knob(method, low)
            c = b["compression"][0] / a["compression"][0]
            elasticity = math.log(c) / math.log(k)
            lines.append(
                f"| {method} | {name} | {low:g} → {high:g} | {k:.2f} | {c:.2f} | {elasticity:.2f} "
                f"| {100 * (b['accuracy'][0] - a['accuracy'][0]):+.2f} "
                f"| {100 * a['accuracy'][1]:.2f}, {100 * b['accuracy'][1]:.2f} |"
            )
    return lines


def markdown(table: dict[str, dict[tuple[str, float], dict[str, Any]]], summary: dict[str, Any], command: str) -> str:
    """The generated part of docs/benchmarks.md."""
    lines = [f"Generated by `{command}` from `benchmarks/results/runs.jsonl`.", ""]
    for model, rows in table.items():
        lines += [f"### {model}", "", f"![Pareto fronts of {model}](img/pareto_{model}.png)", ""]
        lines += [
            "| method | setting | seeds | epochs | test accuracy (%) | val accuracy (%) | compression | FLOPs ratio "
            "| step time / dense |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for (method, setting), v in sorted(rows.items()):
            lines.append(
                f"| {method} | {setting:g} | {v['seeds']} | {v['epochs']} "
                f"| {100 * v['accuracy'][0]:.2f} ± {100 * v['accuracy'][1]:.2f} "
                f"| {100 * v['val_accuracy'][0]:.2f} | {v['compression'][0]:.1f}x "
                f"| {v['flops_ratio'][0]:.3f} | {v['step_time_ratio'][0]:.2f} |"
            )
        if model in summary:
            lines += ["", "| method | compression at ≤ 0.5 pt drop | FLOPs ratio at ≤ 0.5 pt drop |", "|---|---|---|"]
            for method, s in summary[model]["methods"].items():
                comp = "—" if s["compression_at_0.5pt"] is None else f"{s['compression_at_0.5pt']:.1f}x"
                flops = "—" if s["flops_at_0.5pt"] is None else f"{s['flops_at_0.5pt']:.3f}"
                lines.append(f"| {method} | {comp} | {flops} |")
        lines += ["", f"Sensitivity of {model} to each method's knob:", "", *sensitivity(rows)]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Read runs, write summary.json, plots and the generated markdown."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="benchmarks/results/runs.jsonl")
    parser.add_argument("--summary", default="benchmarks/results/summary.json")
    parser.add_argument("--markdown", default="docs/benchmark_results.md")
    parser.add_argument("--images", default="docs/img")
    args = parser.parse_args(argv)
    table = aggregate(load(Path(args.runs)))
    summary = summarize(table)
    write_output(args.summary, json.dumps(summary, indent=2))
    plot(table, Path(args.images))
    command = command_line("benchmarks.report", argv)
    write_output(args.markdown, "# Benchmark results (generated)\n\n" + markdown(table, summary, command))
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
