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
from pathlib import Path
from typing import Any, cast

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from torch import nn

from benchmarks.commands import add_accelerator, add_training_data, apply_quick
from benchmarks.harness import Record, append_record, load_records, sparsity_figures, train_and_measure
from benchmarks.peers import GradualMagnitudePruning, TorchPruningChannels, lightning_model_pruning
from benchmarks.recipes import TARGET_RECIPES
from examples.classifier import ImageClassifier
from lightning_auxprune import AuxMaskPruning, bake, find_masks, shrink
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
) -> Record:
    """One run of a method of :data:`GRID` (``variant``: AuxMaskPruning overrides), within the model's budget."""

    def factory(model: ImageClassifier, epochs: int, steps: int) -> list[Callback]:
        return callbacks_for(method, setting, model, epochs, steps, variant)

    def measure(model: ImageClassifier, dense: nn.Module) -> tuple[float, float]:
        return sparsity_figures(final_plain_model(method, model), dense)

    epochs = budget(model_name, args)
    return train_and_measure(model_name, method, setting, seed, args, epochs, factory, measure, logger)


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
