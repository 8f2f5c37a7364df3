"""Side-by-side pruning benchmark: dense, ModelPruning, GMP, AutoPrune (weight / neuron), Torch-Pruning.

Every run uses the same data (Fashion-MNIST, 5,000 training images held out for validation),
optimizer (Adam, lr 1e-3, batch 128), epochs, no augmentation, and seeds. Test accuracy is read
once, at the end of each run; recipes are chosen on the validation split. Each run appends one
JSON record to ``benchmarks/results/runs.jsonl``; :mod:`benchmarks.report` turns them into
``summary.json``, tables and plots.

    python -m benchmarks.compare --models lenet300100 --seeds 0 1 2
    python -m benchmarks.compare --quick --data-dir <dir>      # smoke run, a few hundred images
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from torch import nn

from benchmarks.commands import add_accelerator, add_training_data, apply_quick
from benchmarks.peers import (
    GradualMagnitudePruning,
    TorchPruningChannels,
    lightning_model_pruning,
    weight_layers,
    weight_of,
)
from benchmarks.recipes import TARGET_RECIPES
from benchmarks.timing import quiet_trainer, synchronize
from examples.classifier import ImageClassifier
from examples.data.fashion_mnist import FashionMNISTDataModule
from lightning_auxprune import AuxMaskPruning, bake, find_masks, shrink
from lightning_auxprune.kept_flops import layer_flops
from lightning_auxprune.presets import recipe_schedule

# Per model: epochs, settings swept per method, and the layers neuron methods may remove.
GRID: dict[str, dict[str, Any]] = {
    "lenet300100": {
        "epochs": 16,
        "gmp": [0.95, 0.98, 0.99],
        "modelpruning": [0.95, 0.98, 0.99],
        "autoprune": [2e-4, 4e-4, 8e-4],
        "autoprune_maginit": [2e-4, 4e-4, 8e-4],
        "autoprune_target": [0.95, 0.98, 0.99],
        "autoprune_target_sgd": [0.95, 0.98, 0.99],
        "autoprune_target_sgd_floor": [0.95, 0.98, 0.99],
        "autoprune_neuron": [1e-3],
        "autoprune_neuron_target": [0.5],
        "torchpruning": [0.75],
        "neuron_layers": [r"net\.fc1", r"net\.fc2"],
    },
    "lenet5": {
        "epochs": 8,
        "gmp": [0.98, 0.99, 0.995],
        "modelpruning": [0.95, 0.98, 0.99],
        "autoprune": [3e-4, 5e-4],
        "autoprune_maginit": [1.5e-4, 3e-4, 5e-4],
        "autoprune_target": [0.98, 0.99, 0.995],
        "autoprune_target_sgd": [0.98, 0.99, 0.995],
        "autoprune_target_sgd_floor": [0.98, 0.99, 0.995],
        "autoprune_neuron": [3e-4, 1e-3],
        "autoprune_neuron_target": [0.25],
        "torchpruning": [0.5, 0.75],
        "neuron_layers": [r"net\.conv1", r"net\.conv2", r"net\.fc1"],
    },
    "vgg": {
        "epochs": 8,
        "gmp": [0.9, 0.95],
        "modelpruning": [0.9, 0.95],
        "autoprune": [3e-4],
        "autoprune_maginit": [3e-4],
        "autoprune_target": [0.9, 0.95],
        "autoprune_target_sgd": [0.9, 0.95],
        "autoprune_target_sgd_floor": [0.9, 0.95],
        "autoprune_neuron": [3e-4, 1e-3],
        "autoprune_neuron_target": [0.25],
        "torchpruning": [0.5],
        "neuron_layers": [r"net\.features\.\d+", r"net\.classifier\.1"],
    },
}
METHODS = [
    "dense",
    "modelpruning",
    "gmp",
    "autoprune",
    "autoprune_maginit",
    "autoprune_target",
    "autoprune_target_sgd",
    "autoprune_target_sgd_floor",
    "autoprune_neuron",
    "autoprune_neuron_target",
    "torchpruning",
]


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


def callbacks_for(
    method: str, setting: float, model: ImageClassifier, epochs: int, steps: int, variant: dict[str, Any] | None = None
) -> list[Callback]:
    """The pruning callback of a method, scheduled within the shared budget.

    ``variant`` overrides AuxMaskPruning arguments (ablations).
    Magnitude peers prune from epoch 1 to 3/4 of the budget (cubic schedule) and fine-tune after;
    AutoPrune warms up 1 epoch, prunes, and freezes its masks for the last quarter (``_maginit``:
    M initialised proportional to |W| instead of constant; ``_target``: the setting is a target
    sparsity that lambda is controlled to follow, reached 2 epochs before the freeze;
    ``autoprune_target_sgd``: the same with M stepped by plain SGD, :data:`benchmarks.recipes.SGD_FOR_M`;
    ``autoprune_target_sgd_floor``: and lambda kept above 1e-5;
    ``autoprune_neuron_target``: the same recipe at neuron granularity, the setting being the
    fraction of dense FLOPs to keep); Torch-Pruning
    removes channels after the first quarter and fine-tunes for the rest.
    """
    per_epoch = steps // epochs
    freeze = recipe_schedule(epochs)["freeze"]  # every method prunes within the recipe's window
    if method == "dense":
        return []
    if method == "gmp":
        return [GradualMagnitudePruning(setting, start=per_epoch, end=freeze * per_epoch, every=max(1, per_epoch // 8))]
    if method == "modelpruning":
        return [lightning_model_pruning(model, setting, start_epoch=1, end_epoch=freeze)]
    if method in TARGET_RECIPES:
        overrides = {**TARGET_RECIPES[method], **(variant or {})}
        return [AuxMaskPruning.recipe(max_epochs=epochs, target_sparsity=setting, print_table=False, **overrides)]
    if method == "autoprune_neuron_target":
        include = GRID[model.hparams["arch"]]["neuron_layers"]
        budget = {"target_flops": setting, "granularity": "neuron", "include": include, "print_table": False}
        return [AuxMaskPruning.recipe(max_epochs=epochs, **{**budget, **(variant or {})})]
    if method.startswith("autoprune"):
        neuron = method == "autoprune_neuron"
        options: dict[str, Any] = {
            "strength": setting,
            "aux_lr": 5e-3,
            "init": "magnitude" if method == "autoprune_maginit" else "constant",
            "granularity": "neuron" if neuron else "weight",
            "include": GRID[model.hparams["arch"]]["neuron_layers"] if neuron else None,
            "warmup": 1,
            "freeze": freeze,
            "print_table": False,
        }
        return [AuxMaskPruning(**{**options, **(variant or {})})]
    if method == "torchpruning":
        include = GRID[model.hparams["arch"]]["neuron_layers"]
        return [TorchPruningChannels(include, setting, at_epoch=max(1, epochs // 4), example=torch.zeros(1, 1, 28, 28))]
    raise ValueError(f"unknown method {method!r}")


def final_plain_model(method: str, model: ImageClassifier) -> nn.Module:
    """The deployable network: baked (and shrunk for neuron AutoPrune), or as trained."""
    net: nn.Module = model.net
    if not find_masks(model):
        return net
    if method.startswith("autoprune_neuron"):
        wrapper = shrink(model, torch.zeros(2, 1, 28, 28), on_unsafe="skip").model
        return cast(nn.Module, wrapper.net)
    return cast(nn.Module, bake(model).net)


def sparsity_figures(plain: nn.Module, dense: nn.Module) -> tuple[float, float]:
    """(compression, flops_ratio) of ``plain`` vs the dense architecture, counted the same way for
    every method: non-zero weights of Linear/Conv layers, FLOPs with a non-zero weight operand."""
    total = sum(weight_of(layer).numel() for layer in weight_layers(dense).values())
    nonzero = sum(int((weight_of(layer) != 0).sum()) for layer in weight_layers(plain).values())
    example = torch.zeros(1, 1, 28, 28)
    _, dense_flops = layer_flops(dense, example)
    _, plain_flops = layer_flops(plain, example)
    densities = {n: float((weight_of(m) != 0).float().mean()) for n, m in weight_layers(plain).items()}
    kept = sum(f * densities.get(n, 1.0) for n, f in plain_flops.items())
    return total / max(nonzero, 1), kept / sum(dense_flops.values())


def budget(model_name: str, args: argparse.Namespace) -> int:
    """The epochs of a run: ``--epochs`` if given, else the model's budget in :data:`GRID`."""
    return int(args.epochs or GRID[model_name]["epochs"])


def run(
    model_name: str,
    method: str,
    setting: float,
    seed: int,
    args: argparse.Namespace,
    variant: dict[str, Any] | None = None,
    logger: Logger | None = None,
    epochs: int | None = None,
    factory: Callable[[ImageClassifier, int, int], list[Callback]] | None = None,
    measure: Callable[[ImageClassifier, nn.Module], tuple[float, float]] | None = None,
) -> Record:
    """Train one configuration and measure it.

    Args:
        model_name: Architecture.
        method: Method name (recorded; picks the callbacks unless ``factory`` is given).
        setting: The method's setting (recorded; passed to :func:`callbacks_for`).
        seed: Seed of the data split, the init and the run.
        args: Data and accelerator options.
        variant: AuxMaskPruning overrides.
        logger: To see what the callback logs every 50 steps, as :mod:`benchmarks.trace` does.
        epochs: Training epochs (default: the model's budget in :data:`GRID`).
        factory: ``(model, epochs, steps) -> callbacks`` instead of :func:`callbacks_for`.
        measure: ``(trained model, dense reference) -> (compression, flops_ratio)`` instead of
            :func:`sparsity_figures` on :func:`final_plain_model`.
    """
    L.seed_everything(seed, workers=True)
    epochs = epochs or budget(model_name, args)
    data = FashionMNISTDataModule(
        args.data_dir, batch_size=128, seed=seed, val_size=args.val_size, train_subset=args.train_subset
    )
    data.setup("fit")
    assert data.train_set is not None
    steps = epochs * -(-len(data.train_set) // 128)
    model = ImageClassifier(arch=model_name, optimizer="adam", lr=1e-3)
    dense_reference = ImageClassifier(arch=model_name).net
    timer = StepTimer()
    callbacks = (
        factory(model, epochs, steps) if factory else callbacks_for(method, setting, model, epochs, steps, variant)
    )
    trainer = quiet_trainer(
        [*callbacks, timer],
        accelerator=args.accelerator,
        max_epochs=epochs,
        logger=logger or False,
        log_every_n_steps=50,
    )
    trainer.fit(model, data)
    val_accuracy = float(trainer.callback_metrics["val/acc"])
    accuracy = float(trainer.test(model, data, verbose=False)[0]["test/acc"])
    if measure is not None:
        compression, flops_ratio = measure(model, dense_reference)
    else:
        compression, flops_ratio = sparsity_figures(final_plain_model(method, model), dense_reference)
    return Record(
        model=model_name,
        method=method,
        setting=setting,
        seed=seed,
        epochs=epochs,
        dense_accuracy=None,
        accuracy=accuracy,
        val_accuracy=val_accuracy,
        compression=compression,
        flops_ratio=flops_ratio,
        step_time_ratio=None,
        step_ms=timer.median_ms(),
        train_images=len(data.train_set),
    )


def main(argv: list[str] | None = None) -> list[Record]:
    """Run the grid (dense first per model and seed), append records, fill the dense columns."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(GRID), choices=list(GRID))
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    add_training_data(parser)
    parser.add_argument("--out", default="benchmarks/results/runs.jsonl")
    parser.add_argument("--quick", action="store_true", help="2 epochs on 400 images, one setting per method")
    add_accelerator(parser)
    args = parser.parse_args(argv)
    if args.quick:
        apply_quick(args)
    torch.set_num_threads(torch.get_num_threads())
    out = Path(args.out)
    done = load_records(out)  # runs already in the file are kept, not repeated: an interrupted benchmark resumes
    records: list[Record] = []
    for model_name in args.models:
        epochs = budget(model_name, args)
        for seed in args.seeds:
            dense = done.get((model_name, "dense", 0.0, seed, epochs, ""))
            if dense is None:
                dense = run(model_name, "dense", 0.0, seed, args)
                dense.dense_accuracy, dense.step_time_ratio = dense.accuracy, 1.0
                append_record(out, dense)
            records.append(dense)
            for method in args.methods:
                if method == "dense":
                    continue
                settings = GRID[model_name][method][:1] if args.quick else GRID[model_name][method]
                for setting in settings:
                    previous = done.get((model_name, method, setting, seed, epochs, ""))
                    if previous is not None:
                        records.append(previous)
                        continue
                    record = run(model_name, method, setting, seed, args)
                    record.dense_accuracy = dense.accuracy
                    record.step_time_ratio = record.step_ms / dense.step_ms
                    records.append(record)
                    append_record(out, record)
    return records


if __name__ == "__main__":
    main()
