"""Plot sparsity and validation accuracy over training from a CSVLogger's ``metrics.csv``.

Example:
    >>> plot_training("runs/demo/csv/pruned/version_0/metrics.csv", "sparsity.png")  # doctest: +SKIP

"""

from __future__ import annotations

import csv
from pathlib import Path


def read_series(metrics_csv: str | Path, key: str) -> tuple[list[float], list[float]]:
    """``(steps, values)`` of one metric column, skipping rows where it is empty."""
    steps, values = [], []
    with open(metrics_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get(key):
                steps.append(float(row["step"]))
                values.append(float(row[key]))
    return steps, values


PHASE_SHADES = {0.0: ("warm-up (dense)", "#dddddd"), 2.0: ("masks frozen", "#d6e9f8")}


def phase_spans(metrics_csv: str | Path) -> list[tuple[float, float, float]]:
    """``(phase, first step, last step)`` runs of the logged ``auxprune/phase`` (0 warm-up, 1 pruning, 2 frozen)."""
    steps, phases = read_series(metrics_csv, "auxprune/phase")
    spans: list[tuple[float, float, float]] = []
    for step, phase in zip(steps, phases, strict=True):
        if spans and spans[-1][0] == phase:
            spans[-1] = (phase, spans[-1][1], step)
        else:
            start = spans[-1][2] if spans else 0.0
            spans.append((phase, start, step))
    return spans


def plot_training(
    metrics_csv: str | Path,
    out_png: str | Path,
    title: str = "AuxMaskPruning",
    reference_accuracy: float | None = None,
) -> Path:
    """Write a PNG with the kept fraction (log axis, left) and validation accuracy (right) per step.

    The kept fraction of the pruned layers' weights is drawn on a log axis, so 10% -> 1% -> 0.5%
    read as the steps they are; warm-up and frozen-mask phases are shaded; the accuracy axis spans
    at least 10 points, so one-point wiggles look like one point.

    Args:
        metrics_csv: A CSVLogger ``metrics.csv`` with ``auxprune/sparsity`` and ``val/acc``.
        out_png: Where to write the plot.
        title: Plot title.
        reference_accuracy: Drawn as a dashed line (e.g. the dense model's validation accuracy).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for phase, first, last in phase_spans(metrics_csv):
        if phase in PHASE_SHADES:
            label, color = PHASE_SHADES[phase]
            ax.axvspan(first, last, color=color, alpha=0.6, lw=0, label=label)
    steps, sparsity = read_series(metrics_csv, "auxprune/sparsity")
    kept = [max(100 * (1 - s), 1e-3) for s in sparsity]
    ax.plot(steps, kept, color="tab:red", label="weights kept (%)")
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("weights kept in pruned layers (%, log)", color="tab:red")
    acc_axis = ax.twinx()
    val_steps, acc = read_series(metrics_csv, "val/acc")
    acc_axis.plot(val_steps, [100 * a for a in acc], "o-", color="tab:blue", markersize=3, label="val accuracy (%)")
    values = [100 * a for a in acc] + ([100 * reference_accuracy] if reference_accuracy is not None else [])
    if reference_accuracy is not None:
        acc_axis.axhline(100 * reference_accuracy, color="tab:blue", linestyle="--", label="dense val accuracy")
    if values:
        top = min(100.0, max(values) + 1.0)
        acc_axis.set_ylim(min(min(values) - 1.0, top - 10.0), top)
    acc_axis.set_ylabel("validation accuracy (%)", color="tab:blue")
    handles = ax.get_legend_handles_labels()[0] + acc_axis.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + acc_axis.get_legend_handles_labels()[1]
    ax.legend(handles, labels, loc="lower left", fontsize=8, framealpha=0.9)
    ax.set_title(title)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
