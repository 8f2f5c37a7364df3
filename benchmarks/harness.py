"""What every training benchmark shares: the record of a run, its JSONL file, the step timer,
one training run, and the sparsity figures counted alike for every method.

Scripts (:mod:`benchmarks.compare`, :mod:`benchmarks.structured`, ...) define their methods and
command lines and call :func:`train_and_measure`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from torch import nn

from benchmarks.peers import weight_layers, weight_of
from benchmarks.timing import quiet_trainer, synchronize
from examples.classifier import ImageClassifier
from examples.data.fashion_mnist import FashionMNISTDataModule
from lightning_auxprune.export.shrink import layer_widths
from lightning_auxprune.kept_flops import layer_flops


@dataclass
class Record:
    """One run's result (the JSON schema of ``runs.jsonl``)."""

    model: str
    method: str
    setting: float
    seed: int
    epochs: int
    dense_accuracy: float | None
    accuracy: float
    val_accuracy: float
    compression: float
    flops_ratio: float
    step_time_ratio: float | None
    step_ms: float
    train_images: int
    variant: str = ""
    widths: dict[str, dict[str, int]] | None = None
    """The deployed network's layer widths (structured runs; ``export.shrink.layer_widths``)."""
    shapes: dict[str, list[int]] | None = None
    """Tensor shapes of the deployed network's ``state_dict`` (structured runs): with ``widths``, enough
    to rebuild its architecture for :mod:`benchmarks.latency`."""


@dataclass(frozen=True)
class Measured:
    """What a benchmark measures on a trained model: compression, FLOPs ratio and, when the deployed
    network is narrower than the dense one, that network (its architecture is recorded)."""

    compression: float
    flops_ratio: float
    deployed: nn.Module | None = None


def architecture(net: nn.Module) -> dict[str, Any]:
    """``widths`` and ``shapes`` of a deployed network, as :class:`Record` stores them."""
    return {"widths": layer_widths(net), "shapes": {k: list(v.shape) for k, v in net.state_dict().items()}}


RecordKey = tuple[str, str, float, int, int, str]


def record_key(record: Record) -> RecordKey:
    """What makes two runs the same run: model, method, setting, seed, epochs, variant."""
    return (record.model, record.method, record.setting, record.seed, record.epochs, record.variant)


def load_records(path: Path) -> dict[RecordKey, Record]:
    """The runs already in a JSONL file (none if it does not exist), so a benchmark can resume."""
    if not path.exists():
        return {}
    records = (Record(**json.loads(line)) for line in path.read_text().splitlines() if line.strip())
    return {record_key(r): r for r in records}


def append_record(path: Path, record: Record) -> None:
    """Append one record to a JSONL file as soon as it exists (and print it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(asdict(record)) + "\n")
    print(json.dumps(asdict(record)), flush=True)


class StepTimer(Callback):
    """Wall time of each training step (batch start to batch end, callbacks included)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        synchronize(pl_module.device)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        synchronize(pl_module.device)  # a GPU step is timed to its end, not to its launch
        self.times.append((time.perf_counter() - self._start) * 1000.0)

    def median_ms(self, skip: int = 10) -> float:
        """Median over the steps after the first ``skip`` (warm-up)."""
        return statistics.median(self.times[skip:] or self.times)


def sparsity_figures(plain: nn.Module, dense: nn.Module) -> Measured:
    """Compression and FLOPs ratio of ``plain`` vs the dense architecture, counted the same way for
    every method: non-zero weights of Linear/Conv layers, FLOPs with a non-zero weight operand."""
    total = sum(weight_of(layer).numel() for layer in weight_layers(dense).values())
    nonzero = sum(int((weight_of(layer) != 0).sum()) for layer in weight_layers(plain).values())
    example = torch.zeros(1, 1, 28, 28)
    _, dense_flops = layer_flops(dense, example)
    _, plain_flops = layer_flops(plain, example)
    densities = {n: float((weight_of(m) != 0).float().mean()) for n, m in weight_layers(plain).items()}
    kept = sum(f * densities.get(n, 1.0) for n, f in plain_flops.items())
    return Measured(total / max(nonzero, 1), kept / sum(dense_flops.values()))


def train_and_measure(
    model_name: str,
    method: str,
    setting: float,
    seed: int,
    args: argparse.Namespace,
    epochs: int,
    factory: Callable[[ImageClassifier, int, int], list[Callback]],
    measure: Callable[[ImageClassifier, nn.Module], Measured],
    logger: Logger | None = None,
) -> Record:
    """Train one configuration (Adam, lr 1e-3, batch 128) and measure it.

    Args:
        model_name: Architecture.
        method: Method name (recorded).
        setting: The method's setting (recorded).
        seed: Seed of the data split, the init and the run.
        args: Data and accelerator options (``data_dir``, ``val_size``, ``train_subset``, ``accelerator``).
        epochs: Training epochs.
        factory: ``(model, epochs, steps) -> callbacks`` of the method.
        measure: ``(trained model, dense reference) -> Measured``.
        logger: To see what the callbacks log every 50 steps, as :mod:`benchmarks.trace` does.
    """
    L.seed_everything(seed, workers=True)
    data = FashionMNISTDataModule(
        args.data_dir, batch_size=128, seed=seed, val_size=args.val_size, train_subset=args.train_subset
    )
    data.setup("fit")
    assert data.train_set is not None
    steps = epochs * -(-len(data.train_set) // 128)
    model = ImageClassifier(arch=model_name, optimizer="adam", lr=1e-3)
    dense_reference = ImageClassifier(arch=model_name).net
    timer = StepTimer()
    trainer = quiet_trainer(
        [*factory(model, epochs, steps), timer],
        accelerator=args.accelerator,
        max_epochs=epochs,
        logger=logger or False,
        log_every_n_steps=50,
    )
    trainer.fit(model, data)
    val_accuracy = float(trainer.callback_metrics["val/acc"])
    accuracy = float(trainer.test(model, data, verbose=False)[0]["test/acc"])
    measured = measure(model, dense_reference)
    return Record(
        model=model_name,
        method=method,
        setting=setting,
        seed=seed,
        epochs=epochs,
        dense_accuracy=None,
        accuracy=accuracy,
        val_accuracy=val_accuracy,
        compression=measured.compression,
        flops_ratio=measured.flops_ratio,
        step_time_ratio=None,
        step_ms=timer.median_ms(),
        train_images=len(data.train_set),
        **(architecture(measured.deployed) if measured.deployed is not None else {}),
    )
