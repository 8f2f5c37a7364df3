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


def plot_training(
    metrics_csv: str | Path,
    out_png: str | Path,
    title: str = "AuxMaskPruning",
    reference_accuracy: float | None = None,
) -> Path:
    """Write a PNG with sparsity (left axis) and validation accuracy (right axis) per step.

    Args:
        metrics_csv: A CSVLogger ``metrics.csv`` with ``auxprune/sparsity`` and ``val/acc``.
        out_png: Where to write the plot.
        title: Plot title.
        reference_accuracy: Drawn as a dashed line (e.g. the dense model's validation accuracy).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    steps, sparsity = read_series(metrics_csv, "auxprune/sparsity")
    ax.plot(steps, [100 * s for s in sparsity], color="tab:red", label="sparsity")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("sparsity of pruned layers (%)", color="tab:red")
    acc_axis = ax.twinx()
    val_steps, acc = read_series(metrics_csv, "val/acc")
    acc_axis.plot(val_steps, [100 * a for a in acc], "o-", color="tab:blue", label="val accuracy")
    if reference_accuracy is not None:
        acc_axis.axhline(100 * reference_accuracy, color="tab:blue", linestyle="--", label="dense val accuracy")
        acc_axis.legend(loc="lower right")
    acc_axis.set_ylabel("validation accuracy (%)", color="tab:blue")
    ax.set_title(title)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
