"""The pictures of docs/wandb.md, taken from a real offline W&B run (and its CSV log).

Prunes LeNet-5 on part of Fashion-MNIST for a few epochs with a ``WandbLogger`` (offline),
a ``TensorBoardLogger`` and a ``CSVLogger``, then copies the mask images W&B stored for the last
epoch and draws the density of every layer from the CSV log::

    python -m examples.logging_gallery --data-dir data --out docs/img/logging

Writes ``<out>/mask_<layer>.png`` (h(M) as W&B shows it, white = open), ``<out>/density_by_layer.png``
and ``<out>/gallery.json`` (the run's figures and where the logs are).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger

from examples.classifier import ImageClassifier
from examples.data.fashion_mnist import FashionMNISTDataModule
from examples.plot import read_series
from lightning_auxprune import AuxMaskPruning


def density_chart(metrics_csv: Path, layers: list[str], out_png: Path) -> Path:
    """One chart, one line per layer: the open fraction of its weights per step (log axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8))
    for layer in layers:
        steps, density = read_series(metrics_csv, f"auxprune/density/{layer}")
        ax.plot(steps, [max(100 * d, 1e-3) for d in density], label=layer)
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("weights kept (%, log)")
    ax.set_title("auxprune/density by layer")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run, copy the pictures, write gallery.json."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default="docs/img/logging")
    parser.add_argument("--runs", default="runs/logging_gallery", help="where the loggers write")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-subset", type=int, default=10000)
    parser.add_argument("--val-size", type=int, default=2000)
    args = parser.parse_args(argv)
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    out, runs = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    data = FashionMNISTDataModule(args.data_dir, batch_size=128, val_size=args.val_size, train_subset=args.train_subset)
    model = ImageClassifier(arch="lenet5", optimizer="adam", lr=1e-3)
    pruning = AuxMaskPruning.recipe(max_epochs=args.epochs, target_sparsity=0.95, print_table=False)
    wandb_logger = WandbLogger(project="lightning-auxprune-gallery", save_dir=str(runs))
    csv_logger = CSVLogger(runs / "csv", name="gallery")
    loggers = [wandb_logger, TensorBoardLogger(runs / "tb", name="gallery"), csv_logger]
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        devices=1,
        logger=loggers,
        callbacks=[pruning],
        enable_checkpointing=False,
        log_every_n_steps=10,
    )
    trainer.fit(model, data)
    run_dir = Path(wandb_logger.experiment.dir)
    wandb_logger.experiment.finish()
    layers = list(pruning.masks)
    copied = []
    for layer in layers:  # W&B stores auxprune/masks/<layer> as media/images/auxprune/masks/<layer>_<step>_<hash>.png
        images = (run_dir / "media" / "images" / "auxprune" / "masks").glob(f"{layer}_*.png")
        last = max(images, key=lambda p: int(p.stem[len(layer) + 1 :].split("_")[0]))
        target = out / f"mask_{layer.replace('.', '_')}.png"
        shutil.copyfile(last, target)
        copied.append(str(target))
    chart = density_chart(Path(csv_logger.log_dir) / "metrics.csv", layers, out / "density_by_layer.png")
    metrics = pruning.pruner.metrics(float(args.epochs))
    gallery = {
        "command": " ".join(["python -m examples.logging_gallery", *(argv or [])]),
        "sparsity": metrics["auxprune/sparsity"],
        "compression": metrics["auxprune/compression"],
        "val_acc": float(trainer.callback_metrics["val/acc"]),
        "images": copied,
        "density_chart": str(chart),
        "wandb_run": str(run_dir.parent),
    }
    (out / "gallery.json").write_text(json.dumps(gallery, indent=2) + "\n")
    print(json.dumps(gallery, indent=2))
    return gallery


if __name__ == "__main__":
    main()
