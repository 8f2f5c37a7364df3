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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from torch import nn

from benchmarks.commands import add_accelerator, add_outputs, add_training_data, apply_quick
from benchmarks.harness import Measured, Record, append_record, load_records, sparsity_figures, train_and_measure
from benchmarks.peers import GradualMagnitudePruning, TorchPruningChannels, lightning_model_pruning
from benchmarks.recipes import ADAM_ON_M, TARGET_RECIPES
from examples.classifier import ImageClassifier
from lightning_auxprune import AuxMaskPruning, bake, find_masks, shrink
from lightning_auxprune.presets import recipe_schedule

MODELS: dict[str, dict[str, Any]] = {
    "lenet300100": {"epochs": 16, "neuron_layers": [r"net\.fc1", r"net\.fc2"]},
    "lenet5": {"epochs": 8, "neuron_layers": [r"net\.conv1", r"net\.conv2", r"net\.fc1"]},
    "vgg": {"epochs": 8, "neuron_layers": [r"net\.features\.\d+", r"net\.classifier\.1"]},
}
"""Per model: the epoch budget every method gets, and the layers neuron methods may remove."""

Factory = Callable[[ImageClassifier, float, int, int, dict[str, Any]], list[Callback]]
"""``(model, setting, epochs, steps, AuxMaskPruning overrides) -> callbacks``."""


@dataclass(frozen=True)
class Method:
    """One method of the comparison, defined once.

    Attributes:
        description: What it is.
        setting: What its setting means: ``"fraction"`` (of weights to prune), ``"lambda"``,
            ``"flops"`` (fraction of the dense FLOPs to keep) or ``"none"``.
        grid: The settings swept per model.
        callbacks: Its callbacks within a run's budget.
        shrinks: Whether its deployed model is ``shrink``-ed (neuron masks) rather than baked.
    """

    description: str
    setting: str
    grid: dict[str, list[float]]
    callbacks: Factory
    shrinks: bool = False


def _window(epochs: int) -> int:
    """Every method prunes within the recipe's window: it ends where AutoPrune's masks freeze."""
    return int(recipe_schedule(epochs)["freeze"])


def _gmp(model: ImageClassifier, setting: float, epochs: int, steps: int, variant: dict[str, Any]) -> list[Callback]:
    per_epoch = steps // epochs
    end = _window(epochs) * per_epoch
    return [GradualMagnitudePruning(setting, start=per_epoch, end=end, every=max(1, per_epoch // 8))]


def _model_pruning(
    model: ImageClassifier, setting: float, epochs: int, steps: int, variant: dict[str, Any]
) -> list[Callback]:
    return [lightning_model_pruning(model, setting, start_epoch=1, end_epoch=_window(epochs))]


def _recipe(overrides: dict[str, Any]) -> Factory:
    def build(
        model: ImageClassifier, setting: float, epochs: int, steps: int, variant: dict[str, Any]
    ) -> list[Callback]:
        settings = {"print_table": False, **overrides, **variant}
        return [AuxMaskPruning.recipe(max_epochs=epochs, target_sparsity=setting, **settings)]

    return build


def _neuron_recipe(
    model: ImageClassifier, setting: float, epochs: int, steps: int, variant: dict[str, Any]
) -> list[Callback]:
    include = MODELS[model.hparams["arch"]]["neuron_layers"]
    budget = {"target_flops": setting, "granularity": "neuron", "include": include, "print_table": False}
    return [AuxMaskPruning.recipe(max_epochs=epochs, **{**budget, **ADAM_ON_M, **variant})]


def _constant_lambda(neuron: bool = False, init: str = "constant") -> Factory:
    def build(
        model: ImageClassifier, setting: float, epochs: int, steps: int, variant: dict[str, Any]
    ) -> list[Callback]:
        options: dict[str, Any] = {
            "strength": setting,
            "aux_lr": 5e-3,
            "init": init,
            "granularity": "neuron" if neuron else "weight",
            "include": MODELS[model.hparams["arch"]]["neuron_layers"] if neuron else None,
            "warmup": 1,
            "freeze": _window(epochs),
            "print_table": False,
        }
        return [AuxMaskPruning(**{**options, **variant})]

    return build


def _torch_pruning(
    model: ImageClassifier, setting: float, epochs: int, steps: int, variant: dict[str, Any]
) -> list[Callback]:
    include = MODELS[model.hparams["arch"]]["neuron_layers"]
    return [TorchPruningChannels(include, setting, at_epoch=max(1, epochs // 4), example=torch.zeros(1, 1, 28, 28))]


def _dense(model: ImageClassifier, setting: float, epochs: int, steps: int, variant: dict[str, Any]) -> list[Callback]:
    return []


def _per_model(lenet300100: list[float], lenet5: list[float], vgg: list[float]) -> dict[str, list[float]]:
    return {"lenet300100": lenet300100, "lenet5": lenet5, "vgg": vgg}


TARGETS = _per_model([0.95, 0.98, 0.99], [0.98, 0.99, 0.995], [0.9, 0.95])
REGISTRY: dict[str, Method] = {
    "dense": Method("no pruning", "none", _per_model([0.0], [0.0], [0.0]), _dense),
    "modelpruning": Method(
        "Lightning's ModelPruning, global L1 unstructured, per-epoch amounts along the cubic schedule",
        "fraction",
        _per_model([0.95, 0.98, 0.99], [0.95, 0.98, 0.99], [0.9, 0.95]),
        _model_pruning,
    ),
    "gmp": Method(
        "gradual magnitude pruning (Zhu & Gupta), cubic schedule from epoch 1 to the window's end",
        "fraction",
        TARGETS,
        _gmp,
    ),
    "autoprune": Method(
        "AutoPrune, constant lambda after 1 dense epoch, masks frozen for the last quarter",
        "lambda",
        _per_model([2e-4, 4e-4, 8e-4], [3e-4, 5e-4], [3e-4]),
        _constant_lambda(),
    ),
    "autoprune_maginit": Method(
        "as autoprune, M initialised proportional to |W|",
        "lambda",
        _per_model([2e-4, 4e-4, 8e-4], [1.5e-4, 3e-4, 5e-4], [3e-4]),
        _constant_lambda(init="magnitude"),
    ),
    **{
        name: Method(
            f"AuxMaskPruning.recipe with a target sparsity, overrides {overrides}",
            "fraction",
            TARGETS,
            _recipe(overrides),
        )
        for name, overrides in TARGET_RECIPES.items()
    },
    "autoprune_neuron": Method(
        "AutoPrune at neuron granularity, constant lambda",
        "lambda",
        _per_model([1e-3], [3e-4, 1e-3], [3e-4, 1e-3]),
        _constant_lambda(neuron=True),
        shrinks=True,
    ),
    "autoprune_neuron_target": Method(
        "the recipe at neuron granularity, the setting the fraction of dense FLOPs to keep",
        "flops",
        _per_model([0.5], [0.25], [0.25]),
        _neuron_recipe,
        shrinks=True,
    ),
    "torchpruning": Method(
        "Torch-Pruning's L1 channel pruning once after the first quarter, then fine-tuning",
        "fraction",
        _per_model([0.75], [0.5, 0.75], [0.5]),
        _torch_pruning,
    ),
}
"""Every method of the comparison: its grid, what its setting means, its callbacks."""
METHODS = list(REGISTRY)
GRID: dict[str, dict[str, Any]] = {
    model: {**spec, **{name: method.grid[model] for name, method in REGISTRY.items()}} for model, spec in MODELS.items()
}
"""Per model: epochs, neuron layers and each method's settings (a view of :data:`REGISTRY`)."""


def callbacks_for(
    method: str, setting: float, model: ImageClassifier, epochs: int, steps: int, variant: dict[str, Any] | None = None
) -> list[Callback]:
    """The callbacks of ``method`` (see :data:`REGISTRY`) within the run's budget; ``variant`` overrides
    AuxMaskPruning arguments (ablations)."""
    if method not in REGISTRY:
        raise ValueError(f"unknown method {method!r}")
    return REGISTRY[method].callbacks(model, setting, epochs, steps, variant or {})


def final_plain_model(method: str, model: ImageClassifier) -> nn.Module:
    """The deployable network: baked (and shrunk for neuron AutoPrune), or as trained."""
    net: nn.Module = model.net
    if not find_masks(model):
        return net
    if REGISTRY[method].shrinks:
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

    def measure(model: ImageClassifier, dense: nn.Module) -> Measured:
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
    add_outputs(parser, "benchmarks/results/runs.jsonl")
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
