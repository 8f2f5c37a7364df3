"""``make demo``: prune LeNet-5 on Fashion-MNIST with AuxMaskPruning and report the result.

1. trains a dense LeNet-5 and tests it;
2. continues from those weights with :class:`~lightning_auxprune.AuxMaskPruning` (pruning,
   then frozen masks), logging to CSV, TensorBoard and W&B (offline);
3. tests the pruned model, prints dense vs pruned accuracy, compression and the per-layer
   table, bakes and saves the pruned model, writes ``summary.json`` and a PNG plot.

Run ``python -m examples.demo --help`` for the knobs.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

from examples.classifier import ImageClassifier
from examples.data.fashion_mnist import FashionMNISTDataModule
from examples.plot import plot_training
from lightning_auxprune import AuxMaskPruning, bake, layer_stats, save_sparse, summarize


def loggers(out: Path, name: str, wandb: bool) -> list[Logger]:
    """CSV and TensorBoard loggers under ``out``, plus W&B (offline unless WANDB_MODE says otherwise)."""
    result: list[Logger] = [CSVLogger(out / "csv", name=name), TensorBoardLogger(out / "tb", name=name)]
    if wandb:
        from lightning.pytorch.loggers import WandbLogger

        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_SILENT", "true")
        wandb_logger = WandbLogger(project="lightning-auxprune-demo", name=name, save_dir=str(out))
        # Lightning always passes `anonymous=None`, which wandb answers with a deprecation warning per run
        wandb_logger._wandb_init.pop("anonymous", None)
        result.append(wandb_logger)
    return result


def trainer(epochs: int, out: Path, name: str, callbacks: list[Any], wandb: bool, limit: float | int) -> L.Trainer:
    """A CPU trainer with the demo's loggers."""
    return L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=loggers(out, name, wandb),
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_progress_bar=True,
        enable_model_summary=False,
        log_every_n_steps=25,
        limit_train_batches=limit,
        deterministic=True,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="data")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--dense-epochs", type=int, default=5)
    p.add_argument("--prune-epochs", type=int, default=10)
    p.add_argument("--freeze-at", type=float, default=8.0, help="epoch of the pruning run at which masks freeze")
    p.add_argument("--strength", type=float, default=3e-4, help="regularizer strength lambda")
    p.add_argument("--aux-lr", type=float, default=5e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--val-size", type=int, default=5000, help="training images held out for validation")
    p.add_argument("--limit-train-batches", type=float, default=1.0, help="fraction (<=1) or count of batches")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-wandb", action="store_true")
    return p.parse_args(argv)


def quiet_third_party_notices() -> None:
    """Drop the notices of other packages that say nothing about this run (tips, deprecations)."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda r: "💡 Tip" not in r.getMessage())
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    os.environ.setdefault("WANDB_SILENT", "true")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the demo; returns the summary it also writes to ``<out>/summary.json``."""
    args = parse_args(argv)
    quiet_third_party_notices()
    out = Path(args.out)
    limit: float | int = int(args.limit_train_batches) if args.limit_train_batches > 1 else args.limit_train_batches
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    L.seed_everything(args.seed, workers=True)
    data = FashionMNISTDataModule(args.data_dir, batch_size=args.batch_size, val_size=args.val_size, seed=args.seed)

    dense = ImageClassifier(arch="lenet5", optimizer="adam", lr=1e-3)
    dense_trainer = trainer(args.dense_epochs, out, "dense", [], not args.no_wandb, limit)
    dense_trainer.fit(dense, data)
    dense_val_acc = float(dense_trainer.callback_metrics["val/acc"])
    dense_acc = float(dense_trainer.test(dense, data, verbose=False)[0]["test/acc"])
    _finish_wandb(dense_trainer)

    pruned = copy.deepcopy(dense)
    pruning = AuxMaskPruning(strength=args.strength, aux_lr=args.aux_lr, freeze=args.freeze_at, print_table=False)
    prune_trainer = trainer(args.prune_epochs, out, "pruned", [pruning], not args.no_wandb, limit)
    prune_trainer.fit(pruned, data)
    flops_ratio = float(prune_trainer.callback_metrics["auxprune/flops_ratio"])
    pruned_acc = float(prune_trainer.test(pruned, data, verbose=False)[0]["test/acc"])
    _finish_wandb(prune_trainer)

    summary = summarize(layer_stats(pruning.masks))
    baked = bake(pruned.net)
    dense_file, sparse_file = out / "lenet5_pruned_state_dict.pt", out / "lenet5_pruned_sparse.pt"
    torch.save(baked.state_dict(), dense_file)
    save_sparse(pruned.net, sparse_file)
    csv_logger = prune_trainer.loggers[0]
    plot = plot_training(
        Path(csv_logger.log_dir or out) / "metrics.csv",
        out / "training.png",
        "LeNet-5 / Fashion-MNIST, AuxMaskPruning",
        reference_accuracy=dense_val_acc,
    )
    result = {
        "dense_test_accuracy": dense_acc,
        "pruned_test_accuracy": pruned_acc,
        "compression": summary.compression,
        "sparsity": summary.sparsity,
        "flops_ratio": flops_ratio,
        "dense_file_bytes": dense_file.stat().st_size,
        "sparse_file_bytes": sparse_file.stat().st_size,
        "dense_epochs": args.dense_epochs,
        "prune_epochs": args.prune_epochs,
        "strength": args.strength,
        "aux_lr": args.aux_lr,
    }
    (out / "summary.json").write_text(json.dumps(result, indent=2))
    print("\n" + pruning.last_table)
    print(
        f"\nLeNet-5 / Fashion-MNIST test accuracy: dense {dense_acc:.2%} ({args.dense_epochs} epochs) -> "
        f"pruned {pruned_acc:.2%} (+{args.prune_epochs} epochs with AuxMaskPruning)\n"
        f"compression {summary.compression:.1f}x (sparsity {summary.sparsity:.2%}), "
        f"FLOPs kept {result['flops_ratio']:.2%}\n"
        f"baked state_dict {result['dense_file_bytes']:,} bytes, CSR export {result['sparse_file_bytes']:,} bytes "
        f"({result['dense_file_bytes'] / result['sparse_file_bytes']:.1f}x smaller)\n"
        f"plot: {plot}\nsummary: {out / 'summary.json'}\n"
        f"logs: CSV {out / 'csv'}, TensorBoard `tensorboard --logdir {out / 'tb'}`"
        + (f", W&B (offline) `wandb sync {out / 'wandb'}/offline-run-*`" if not args.no_wandb else "")
    )
    return result


def _finish_wandb(run_trainer: L.Trainer) -> None:
    for logger in run_trainer.loggers:
        if type(logger).__name__ == "WandbLogger":
            import wandb

            wandb.finish()


if __name__ == "__main__":
    main()
