"""Neuron/filter pruning at equal FLOPs: AutoPrune against Torch-Pruning's channel criteria.

Every method trains the same architecture for the same epochs with the same optimizer (Adam,
lr 1e-3, batch 128) on Fashion-MNIST (55,000 training / 5,000 validation images by default), and
is asked to keep a fraction of the dense FLOPs (``--budgets``, default 0.5, 0.35, 0.25). The
deployed model is measured: AutoPrune's is ``shrink``-ed, Torch-Pruning's is already narrow;
``flops_ratio`` is its forward FLOPs over the dense model's, both counted by
``torch.utils.flop_counter``. The classifier stays dense for every method.

Methods (:data:`METHODS`, each defined once):

* ``autoprune``: ``AuxMaskPruning.recipe(target_flops=budget, granularity="neuron")`` with coupled
  masks, the cost-aware push, per-layer normalised SGD on M, a lambda floor, the kept FLOPs
  held within 5% of the ramp and a quarter of each layer's units kept (:data:`NEURON_M`);
* ``autoprune_low_floor``: the same with 5% of each layer's units kept at least (not a quarter);
* ``autoprune_uniform``: the same with every layer held at least at the share of its units a
  uniform cut to the ramp's target leaves it (``min_uniform_share=1``): the masks choose which
  units, the layers' widths follow the uniform cut. This is the neuron recipe now; its ablations
  ``autoprune_uniform_uncoupled`` / ``autoprune_uniform_costblind`` / ``autoprune_uniform_adam``
  change one thing (one mask per layer; every unit pushed alike; the user's Adam on M);
* ``autoprune_early_freeze``: the same with the masks frozen at half the epochs (the target
  reached an epoch before), so half the run fine-tunes a fixed network;
* ``autoprune_late``: the same, dense until 3/8 of the epochs and at the target by half of them
  (where the one-shot peers cut), the masks frozen an epoch later;
* ``autoprune_final_bound``: the recipe before the bound along the ramp and the quarter floor
  (kept FLOPs bounded at 0.75 x the budget, at the end only; 5% of each layer's units); its
  ablations ``autoprune_exact`` / ``autoprune_sgd`` / ``autoprune_uncoupled`` /
  ``autoprune_costblind`` / ``autoprune_adam`` / ``autoprune_integral`` / ``autoprune_slow``
  (bounded at the budget itself; plain SGD on M; one mask per layer; every unit pushed alike; the
  user's Adam on M; an integral-only controller; slower masks);
* ``tp_<criterion>``: Torch-Pruning with the L1, L2, group-norm or Taylor criterion, pruned in
  steps at the start of epochs 1 .. 3/4 of training along the same cubic ramp, then fine-tuned;
* ``tp_<criterion>_oneshot``: dense training for half the epochs, one cut to the budget, then
  fine-tuning.

Runs append to ``--out`` as they finish (an interrupted grid resumes, and reuses a stored run only
if it trained on as many images as asked: keep the subset's and the full data's runs apart, as
``make bench-structured`` does); two processes share one grid when one runs it with
``--reverse``, and ``--workers N`` trains N runs at a time in processes of its own (dense runs
first, then whole points method by method; this process alone appends, and a run that fails is
named at the end while the others go on). ``--report`` writes
``summary.json`` (``flops_at_0.5pt`` per model and method: the lowest mean FLOPs ratio whose mean
test accuracy is within 0.5 points of dense on the same seeds), a Markdown table and Pareto plots.

Example:
    python -m benchmarks.structured --models vgg --seeds 0 --quick

"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from torch import nn

from benchmarks.commands import add_accelerator, add_outputs, add_training_data, apply_quick, command_line, write_output
from benchmarks.harness import Measured, Record, append_record, load_records, train_and_measure
from benchmarks.peers import TP_IMPORTANCES, TorchPruningFlops, cubic_sparsity
from benchmarks.widths import mean_widths, widths_table
from examples.classifier import ImageClassifier
from examples.data.fashion_mnist import FashionMNISTDataModule
from lightning_auxprune import AuxMaskPruning, shrink
from lightning_auxprune.flops import count_flops
from lightning_auxprune.layer_selection import output_layer
from lightning_auxprune.presets import recipe_schedule, recipe_settings

MODELS = {"vgg": 8, "resnet20": 8, "mobilenetv2": 8, "vit": 8}
"""Architectures and their epoch budget (the same for every method)."""
BUDGETS = [0.5, 0.35, 0.25]
EXAMPLE_SHAPE = (1, 1, 28, 28)
NEURON_M = {
    "aux_optimizer": "normalized_sgd",
    "aux_lr": 0.05,
    "strength": 1e-3,
    "target_min_strength": 1e-5,
    "ramp_tolerance": 0.05,
    "target_tolerance": 0.05,
    "min_unit_fraction": 0.25,
    "min_uniform_share": 0.0,
}
"""SGD on M with each layer's gradient divided by its RMS, and the lambda floor. Chosen on validation
accuracy (VGG-like, 10,000 images, seed 0, budget 0.35) over plain SGD at lr 1 (the weight-granularity
winner, ``autoprune_sgd``) and lr 0.1: a unit's gradient sums over its fan-in, whose size differs
between layers by orders of magnitude. The kept FLOPs never fall more than 5% below the ramp's,
nor below 0.95 x the budget at the end: chosen (after the trace showed the masks closing together
past the ramp) over the bound at 0.75 x the budget alone (``autoprune_final_bound``) on validation
accuracy at equal budgets, and because the run then lands on the budget it was given. Every layer
keeps a quarter of its units at least: a layer at 5% (``autoprune_low_floor``) cost ResNet-20 up
to 18 points of validation accuracy where the push shrank the last stage's residual stream to 4
of 64 channels. The layers share the budget freely (``min_uniform_share=0``): this was the neuron
recipe until ``autoprune_uniform`` measured better on the full data, and the records of
``autoprune`` keep its name."""
FINAL_BOUND = {"ramp_tolerance": None, "target_tolerance": 0.25, "min_unit_fraction": 0.05}
"""The bound before ``ramp_tolerance``: at 0.75 x the budget, at the end only. Every ablation
below that names ``autoprune_final_bound`` ran with it."""
UNIFORM = {"min_uniform_share": 1.0}
"""What ``autoprune_uniform`` (the neuron recipe now) adds to :data:`NEURON_M`; the ablations that
name ``autoprune_uniform`` change one thing of it."""
USER_ADAM = {"aux_optimizer": "shared", "aux_lr": 5e-3, "strength": 1e-4, "target_min_strength": 1e-9}
"""M stepped by the model's own optimizer (Adam here), with the lambda scale and floor of the
weight-granularity recipe before SGD on M: the "user's optimizer" side of the ablation."""


Builder = Callable[[ImageClassifier, float, int], list[Callback]]
"""``(model, budget, epochs) -> callbacks``: how a method is set up for one run."""


@dataclass(frozen=True)
class Method:
    """One benchmarked method: what it is, and the callbacks that run it within a budget."""

    description: str
    callbacks: Builder


def _autoprune(**overrides: Any) -> Builder:
    def build(model: ImageClassifier, budget: float, epochs: int) -> list[Callback]:
        settings = {**NEURON_M, "print_table": False, **overrides}
        return [AuxMaskPruning.recipe(max_epochs=epochs, target_flops=budget, granularity="neuron", **settings)]

    return build


def _rescheduled(schedule: Callable[[int], dict[str, float]]) -> Builder:
    """The recipe with another schedule (``epochs -> warmup, ramp, freeze``).

    The recipe fixes its schedule, so this builds the callback from the recipe's settings.
    """

    def build(model: ImageClassifier, budget: float, epochs: int) -> list[Callback]:
        settings = recipe_settings(epochs, target_flops=budget, overrides={"granularity": "neuron", **NEURON_M})
        settings.update(schedule(epochs), print_table=False)
        return [AuxMaskPruning(**settings)]

    return build


def _early_freeze(epochs: int) -> dict[str, float]:
    """Target at ``epochs / 2 - 1``, masks frozen at ``epochs / 2`` (8 epochs: 3 and 4; the recipe: 4 and 6)."""
    return {"warmup": 1.0, "ramp": max(1, epochs // 2 - 2), "freeze": max(2, epochs // 2)}


def _late_cut(epochs: int) -> dict[str, float]:
    """Dense until ``epochs / 2 - 1``, the target an epoch later (where the one-shot peers cut), frozen one after."""
    return {"warmup": max(1, epochs // 2 - 1), "ramp": 1, "freeze": epochs // 2 + 1}


def _torch_pruning(importance: str, oneshot: bool) -> Builder:
    def build(model: ImageClassifier, budget: float, epochs: int) -> list[Callback]:
        last = recipe_schedule(epochs)["freeze"]  # AutoPrune's masks freeze here too
        if oneshot:
            schedule = {max(1, epochs // 2): budget}
        else:  # the same cubic ramp AutoPrune's controller follows, one cut per epoch start
            span = max(1, last - 1)
            schedule = {e: 1.0 - cubic_sparsity(e / span, 1.0 - budget) for e in range(1, last)}
        keep = [name for name in [output_layer(model)] if name]
        return [TorchPruningFlops(importance, schedule, torch.zeros(EXAMPLE_SHAPE), keep)]

    return build


METHODS: dict[str, Method] = {
    "autoprune": Method(
        "coupled masks, cost-aware push, per-layer normalised SGD on M, lambda floor, held within 5% of the "
        "ramp, a quarter of each layer's units kept",
        _autoprune(),
    ),
    "autoprune_low_floor": Method(
        "as autoprune, a layer may shrink to 5% of its units (min_unit_fraction=0.05, the constructor's default)",
        _autoprune(min_unit_fraction=0.05),
    ),
    "autoprune_slow_masks": Method(
        "as autoprune, masks stepped at aux_lr=0.02 instead of 0.05 (a longer average before a mask closes)",
        _autoprune(aux_lr=0.02),
    ),
    "autoprune_hysteresis": Method(
        "as autoprune, a mask that closes or reopens is moved 0.25 past zero (hysteresis=0.25)",
        _autoprune(hysteresis=0.25),
    ),
    "autoprune_uniform": Method(
        "as autoprune, every layer keeps at least the units a uniform cut to the ramp's target leaves it "
        "(min_uniform_share=1): the masks choose which units, not how many per layer",
        _autoprune(**UNIFORM),
    ),
    "autoprune_uniform_uncoupled": Method(
        "as autoprune_uniform (the recipe), one mask per layer: layers joined by a residual sum or a "
        "depthwise convolution no longer open and close their units together",
        _autoprune(**UNIFORM, coupled=False),
    ),
    "autoprune_uniform_costblind": Method(
        "as autoprune_uniform (the recipe), every unit pushed alike whatever its FLOPs",
        _autoprune(**UNIFORM, cost_aware=False),
    ),
    "autoprune_uniform_adam": Method(
        "as autoprune_uniform (the recipe), M stepped by the user's Adam instead of normalised SGD",
        _autoprune(**UNIFORM, **USER_ADAM),
    ),
    "autoprune_early_freeze": Method(
        "as autoprune, the target reached at epoch 3 and the masks frozen at 4 of 8 (half the run fine-tunes)",
        _rescheduled(_early_freeze),
    ),
    "autoprune_late": Method(
        "as autoprune, dense for 3 of 8 epochs, the target reached at 4 (where the one-shot peers cut), masks "
        "frozen at 5",
        _rescheduled(_late_cut),
    ),
    "autoprune_final_bound": Method(
        "as autoprune, bounded only at the end, at 0.75 x the budget (the recipe before ramp_tolerance)",
        _autoprune(**FINAL_BOUND),
    ),
    "autoprune_sgd": Method(
        "as autoprune_final_bound, plain SGD on M at lr 1 (the weight-granularity winner)",
        _autoprune(**FINAL_BOUND, aux_optimizer="sgd", aux_lr=1.0),
    ),
    "autoprune_exact": Method(
        "as autoprune_final_bound, target_tolerance=0: the bound stops pruning at the budget itself",
        _autoprune(**{**FINAL_BOUND, "target_tolerance": 0.0}),
    ),
    "autoprune_uncoupled": Method(
        "as autoprune_final_bound, one mask per layer", _autoprune(**FINAL_BOUND, coupled=False)
    ),
    "autoprune_integral": Method(
        "as autoprune_final_bound, integral-only controller (target_p_gain=0): lambda does not jump when the masks lag",
        _autoprune(**FINAL_BOUND, target_p_gain=0.0),
    ),
    "autoprune_slow": Method(
        "as autoprune_final_bound, masks stepped at aux_lr=0.02 instead of 0.05",
        _autoprune(**FINAL_BOUND, aux_lr=0.02),
    ),
    "autoprune_costblind": Method(
        "as autoprune_final_bound, every unit pushed alike", _autoprune(**FINAL_BOUND, cost_aware=False)
    ),
    "autoprune_adam": Method(
        "as autoprune_final_bound, M stepped by the user's Adam (the recipe's default)",
        _autoprune(**FINAL_BOUND, **USER_ADAM),
    ),
    **{
        f"tp_{name}": Method(f"Torch-Pruning, {name} criterion, pruned during training", _torch_pruning(name, False))
        for name in TP_IMPORTANCES
    },
    **{
        f"tp_{name}_oneshot": Method(
            f"Torch-Pruning, {name} criterion, one cut at mid-training", _torch_pruning(name, True)
        )
        for name in TP_IMPORTANCES
    },
}


def run(
    model_name: str, method: str, budget: float, seed: int, args: argparse.Namespace, logger: Logger | None = None
) -> Record:
    """One run of ``method`` (or ``"dense"``) within ``budget``, for the model's epochs (``args.epochs`` overrides)."""
    epochs = args.epochs or MODELS[model_name]
    factory = _no_callbacks if method == "dense" else _factory(METHODS[method], budget)
    record = train_and_measure(model_name, method, budget, seed, args, epochs, factory, measure, logger)
    record.variant = "structured"
    return record


def _no_callbacks(model: ImageClassifier, epochs: int, steps: int) -> list[Callback]:
    return []


def _factory(method: Method, budget: float) -> Callable[[ImageClassifier, int, int], list[Callback]]:
    """The ``(model, epochs, steps) -> callbacks`` factory :func:`benchmarks.harness.train_and_measure` takes."""
    return lambda model, epochs, _steps: method.callbacks(model, budget, epochs)


def measure(model: ImageClassifier, dense: nn.Module) -> Measured:
    """Parameter compression and FLOPs ratio of the deployed network against the dense one, and that network."""
    example = torch.zeros(EXAMPLE_SHAPE, device=model.device)
    net: nn.Module = model.net
    if any(isinstance(c, AuxMaskPruning) for c in getattr(model.trainer, "callbacks", [])):
        net = cast(nn.Module, shrink(model, example, on_unsafe="skip").model.net)
    dense = dense.to(model.device)
    params = sum(p.numel() for p in dense.parameters()) / sum(p.numel() for p in net.parameters())
    return Measured(params, count_flops(net, example) / count_flops(dense, example), net)


def aggregate(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model and method: mean/std test accuracy and FLOPs ratio per budget, and ``flops_at_0.5pt``.

    A point is compared with the dense runs of its own seeds, since methods may have run on
    different seeds (``flops_at_0.5pt``: the lowest mean FLOPs ratio within 0.5 points of them).
    """
    summary: dict[str, dict[str, Any]] = {}
    for model in sorted({r["model"] for r in records}):
        rows = [r for r in records if r["model"] == model]
        if len({r["train_images"] for r in rows}) > 1:
            raise ValueError(
                f"{model}: runs on {sorted({r['train_images'] for r in rows})} training images in one results file; "
                "a summary compares one training set: keep each in its own --out."
            )
        dense_by_seed = {r["seed"]: r["accuracy"] for r in rows if r["method"] == "dense"}
        if not dense_by_seed:
            continue
        dense_mean = statistics.mean(dense_by_seed.values())
        summary[model] = {
            "dense_accuracy": dense_mean,
            "seeds": len(dense_by_seed),
            "train_images": sorted({r["train_images"] for r in rows}),
            "epochs": sorted({r["epochs"] for r in rows}),
            "widths": mean_widths([r for r in rows if r["method"] == "dense"]),
            "methods": {},
        }
        for method in METHODS:
            points = []
            for budget in sorted({r["setting"] for r in rows if r["method"] == method}):
                same = [r for r in rows if (r["method"], r["setting"]) == (method, budget)]
                runs = [r for r in same if r["seed"] in dense_by_seed]
                if not runs:
                    continue
                accuracy = [r["accuracy"] for r in runs]
                flops = [r["flops_ratio"] for r in runs]
                points.append(
                    {
                        "budget": budget,
                        "runs": len(runs),
                        "accuracy": statistics.mean(accuracy),
                        "accuracy_std": statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0,
                        "flops_ratio": statistics.mean(flops),
                        "seeds": sorted(r["seed"] for r in runs),
                        "dense_accuracy": statistics.mean(dense_by_seed[r["seed"]] for r in runs),
                        "widths": mean_widths(runs),
                    }
                )
            if points:
                # against dense on the same seeds: methods may have run on different seeds
                within = [p["flops_ratio"] for p in points if p["accuracy"] >= p["dense_accuracy"] - 0.005]
                summary[model]["methods"][method] = {
                    "points": points,
                    "flops_at_0.5pt": min(within) if within else None,
                }
    return summary


def markdown(summary: dict[str, dict[str, Any]], command: str, records: str, plots: dict[str, str]) -> str:
    """The results as Markdown: one table per model, and its Pareto plot where ``plots`` links one."""
    lines = [
        f"Generated by `{command}` from the records in `{records}`, which `python -m benchmarks.structured` "
        "appends to (`make bench-structured` runs the full grid).",
        "",
    ]
    for model, block in summary.items():
        images = ", ".join(f"{n:,}" for n in block.get("train_images", []))
        epochs = ", ".join(str(n) for n in block.get("epochs", []))
        lines += [
            f"### {model} (dense {block['dense_accuracy']:.2%}, {block['seeds']} seed(s), {images} training images, "
            f"{epochs} epochs)",
            "",
            "| method | budget | FLOPs kept | test accuracy (runs) | dense, same seeds | seeds | flops_at_0.5pt |",
            "|---|---|---|---|---|---|---|",
        ]
        for method, result in block["methods"].items():
            best = result["flops_at_0.5pt"]
            for point in result["points"]:
                lines.append(
                    f"| {method} | {point['budget']:.2f} | {point['flops_ratio']:.1%} | "
                    f"{point['accuracy']:.2%} ± {point['accuracy_std']:.2%} ({point['runs']}) | "
                    f"{point['dense_accuracy']:.2%} | {', '.join(map(str, point['seeds']))} | "
                    f"{'—' if best is None else f'{best:.1%}'} |"
                )
        lines.append("")
        if model in plots:
            lines += [f"![{model}: test accuracy against FLOPs kept]({plots[model]})", ""]
        lines += _widths_section(model, block)
    return "\n".join(lines)


def _widths_section(model: str, block: dict[str, Any]) -> list[str]:
    """Where each method kept its units: the mean output width of every layer some run narrowed."""
    columns = {
        f"{method} {point['budget']:.2f}": point["widths"]
        for method, result in block["methods"].items()
        for point in result["points"]
        if point.get("widths")
    }
    if not block.get("widths") or not columns:
        return []
    return [
        f"Units kept per layer ({model}, mean over the runs of each point that recorded them; "
        "layers no run narrowed are left out):",
        "",
        *widths_table(block["widths"], columns),
        "",
    ]


def plot(summary: dict[str, dict[str, Any]], folder: Path) -> dict[str, Path]:
    """Test accuracy against FLOPs kept, one Pareto plot per model (``{model: path}``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = {}
    for model, block in summary.items():
        figure, axis = plt.subplots(figsize=(6, 4))
        for method, result in block["methods"].items():
            points = sorted(result["points"], key=lambda p: p["flops_ratio"])
            style = "-o" if method.startswith("autoprune") else "--s"
            axis.plot([p["flops_ratio"] for p in points], [p["accuracy"] for p in points], style, label=method)
        axis.axhline(block["dense_accuracy"] - 0.005, color="grey", lw=0.8, ls=":", label="dense - 0.5 pt")
        axis.set(xlabel="FLOPs kept (shrunk / dense)", ylabel="test accuracy", title=model)
        axis.legend(fontsize=6)
        figure.tight_layout()
        path = folder / f"structured_{model}.png"
        figure.savefig(path, dpi=120)
        plt.close(figure)
        paths[model] = path
    return paths


def paired(
    records: list[dict[str, Any]], method: str, other: str, metric: str = "val_accuracy"
) -> list[tuple[str, float, int, float]]:
    """``(model, budget, seed, difference)`` of ``metric``, ``method`` minus ``other``, where both ran.

    How the recipe's defaults are chosen: on validation accuracy, run for run, at equal budgets
    (``metric="accuracy"`` compares test accuracy, for reporting only).

    Example:
        >>> rows = [{"model": "vgg", "method": m, "setting": 0.5, "seed": 0, "val_accuracy": a}
        ...         for m, a in (("a", 0.9), ("b", 0.85))]
        >>> [(m, b, s, round(d, 4)) for m, b, s, d in paired(rows, "a", "b")]
        [('vgg', 0.5, 0, 0.05)]
    """
    other_runs = {(r["model"], r["setting"], r["seed"]): r[metric] for r in records if r["method"] == other}
    return sorted(
        (r["model"], r["setting"], r["seed"], r[metric] - other_runs[(r["model"], r["setting"], r["seed"])])
        for r in records
        if r["method"] == method and (r["model"], r["setting"], r["seed"]) in other_runs
    )


def print_paired(records: list[dict[str, Any]], method: str, other: str, metric: str = "val_accuracy") -> None:
    """Print :func:`paired` in points, then its mean, standard deviation and how many pairs are below 0,
    for each model (when there are several) and over all."""
    pairs = paired(records, method, other, metric)
    if not pairs:
        raise SystemExit(f"{method} and {other} have no run on the same model, budget and seed.")
    for model, budget, seed, difference in pairs:
        print(f"{model} {budget:g} seed {seed}: {100 * difference:+.2f} pt")
    models = list(dict.fromkeys(p[0] for p in pairs))
    groups = {model: [p for p in pairs if p[0] == model] for model in models} if len(models) > 1 else {}
    for label, group in [*groups.items(), ("", pairs)]:
        differences = [100 * p[3] for p in group]
        spread = f"sd {statistics.stdev(differences):.2f}, " if len(differences) > 1 else ""
        below = sum(d < 0 for d in differences)
        print(
            f"{f'{label}: ' if label else ''}{method} - {other}: {statistics.mean(differences):+.2f} pt over "
            f"{len(group)} paired runs ({metric}; {spread}{below} below 0)"
        )


Job = tuple[str, str, float, int, int]
"""``(model, method, budget, seed, epochs)``: one run of the grid."""


def jobs(args: argparse.Namespace) -> list[Job]:
    """``(model, method, budget, seed, epochs)`` of every run asked for, dense first per model and seed.

    With ``args.reverse`` the same list last to first: two processes given the same grid, one of
    them reversed, share it without training a run twice (but for the one they meet on).
    """
    grid = [
        (model_name, method, budget, seed, args.epochs or epochs)
        for model_name, epochs in MODELS.items()
        if model_name in args.models
        for seed in args.seeds
        for method, budget in [("dense", 0.0)] + [(m, b) for m in args.methods for b in args.budgets]
    ]
    return grid[::-1] if args.reverse else grid


def pool_order(grid: list[Job], methods: list[str], models: list[str]) -> list[Job]:
    """The jobs as a pool hands them out: dense runs first, then method by method (in the order
    asked), model by model, budget by budget (largest first), seed by seed.

    A grid cut short then holds whole points (every seed of a method at a budget) of the methods
    named first, rather than every method of the first seed.

    Example:
        >>> grid = [("vit", "dense", 0.0, 0, 8), ("vit", "tp_l1", 0.5, 0, 8), ("vit", "autoprune", 0.5, 0, 8),
        ...         ("vit", "dense", 0.0, 1, 8), ("vit", "tp_l1", 0.5, 1, 8), ("vit", "autoprune", 0.5, 1, 8)]
        >>> [(m, s) for _, m, _, s, _ in pool_order(grid, ["autoprune", "tp_l1"], ["vit"])]
        [('dense', 0), ('dense', 1), ('autoprune', 0), ('autoprune', 1), ('tp_l1', 0), ('tp_l1', 1)]

    """
    method_rank = {name: i for i, name in enumerate(["dense", *methods])}
    model_rank = {name: i for i, name in enumerate(models)}
    return sorted(grid, key=lambda job: (method_rank[job[1]], model_rank[job[0]], -job[2], job[3]))


def run_in_pool(args: argparse.Namespace, out: Path) -> list[Record]:
    """Train the grid's missing runs in ``args.workers`` processes; this process alone appends to ``out``.

    Meant for a GPU that one small network leaves mostly idle: each worker trains one run at a
    time on it. A run that fails is reported with its error and the others go on; the command
    then exits non-zero, naming the failed runs (rerunning it retries just those).
    """
    grid = jobs(args)
    stored = {key[:5]: record for key, record in load_records(out).items() if key[5] == "structured"}
    records = [stored[job] for job in grid if job in stored]
    for record in records:
        check_training_set(record, args, out)
    todo = [job for job in pool_order(grid, args.methods, args.models) if job not in stored]
    print(f"{len(todo)} runs to train in {args.workers} processes ({len(records)} already in {out})", flush=True)
    failed: list[str] = []
    context = multiprocessing.get_context("spawn")  # CUDA cannot be used in a forked child
    with ProcessPoolExecutor(
        args.workers, mp_context=context, initializer=init_worker, initargs=(args.threads, os.getpid())
    ) as pool:
        futures = {pool.submit(run, *job[:4], args): job[:4] for job in todo}
        for future in as_completed(futures):
            try:
                record = future.result()
            except Exception as error:  # reported, and the command fails at the end
                failed.append(f"{futures[future]}: {type(error).__name__}: {error}")
                print(f"run {futures[future]} failed: {type(error).__name__}: {error}", flush=True)
                continue
            append_record(out, record)
            records.append(record)
    if failed:
        raise SystemExit(f"{len(failed)} runs failed (the others are in {out}):\n" + "\n".join(failed))
    return records


def init_worker(threads: int, parent: int) -> None:
    """Set up a pool process: ``threads`` CPU threads, and exit as soon as the grid's process is gone.

    A grid stopped by ``kill`` (or killed for memory) cannot shut its pool down, and its workers
    would go on training runs nobody records, for as long as a run takes.
    """
    torch.set_num_threads(threads)
    threading.Thread(target=_exit_with, args=(parent,), name="exit-with-the-grid", daemon=True).start()


def _exit_with(parent: int, every_s: float = 1.0) -> None:
    while os.getppid() == parent:
        time.sleep(every_s)
    os._exit(1)


def check_training_set(stored: Record, args: argparse.Namespace, out: Path) -> None:
    """Refuse to reuse a stored run that trained on another number of images than this command asks for.

    A run is keyed by model, method, budget, seed and epochs: the training set is not in the key,
    so a grid on the full data given the results file of the 10,000-image subset would otherwise
    report the subset's runs as its own.
    """
    asked = FashionMNISTDataModule(val_size=args.val_size, train_subset=args.train_subset).train_images
    if stored.train_images != asked:
        raise SystemExit(
            f"{out} holds {stored.model} / {stored.method} / budget {stored.setting} / seed {stored.seed} trained on "
            f"{stored.train_images:,} images; this command trains on {asked:,}: give it its own --out "
            "(and --summary, --markdown) for this training set."
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (``--quick`` applied)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--budgets", nargs="+", type=float, default=BUDGETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    add_outputs(parser, "benchmarks/results/structured_runs.jsonl", "docs/structured.md")
    parser.add_argument("--summary", default="benchmarks/results/structured_summary.json")
    parser.add_argument("--plots", default="docs/img")
    parser.add_argument("--report", action="store_true", help="only summarise the runs already in --out")
    parser.add_argument(
        "--paired",
        nargs=2,
        metavar=("METHOD", "OTHER"),
        help="only print METHOD's --paired-metric minus OTHER's (of --models), per run and on average",
    )
    parser.add_argument(
        "--paired-metric", default="val_accuracy", choices=["val_accuracy", "accuracy"], help="what --paired compares"
    )
    parser.add_argument("--quick", action="store_true", help="2 epochs on 400 images, one budget")
    parser.add_argument(
        "--reverse",
        action="store_true",
        help="run the jobs last to first: a second process on the same --out meets the first one halfway",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="train this many runs at a time, each in its own process (benchmarks/gpu.sh runs 8 on one GPU)",
    )
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each worker process (with --workers)")
    add_training_data(parser)
    add_accelerator(parser)
    args = parser.parse_args(argv)
    if args.quick:
        apply_quick(args)
        args.budgets = args.budgets[:1]
    return args


def main(argv: list[str] | None = None) -> list[Record]:
    """Run the grid (dense first per model and seed), then write the summary."""
    args = parse_args(argv)
    out = Path(args.out)
    if args.paired:
        rows = [asdict(r) for r in load_records(out).values() if r.variant == "structured" and r.model in args.models]
        method, other = args.paired
        print_paired(rows, method, other, args.paired_metric)
        return []
    records: list[Record] = []
    if args.workers > 1 and not args.report:
        records = run_in_pool(args, out)
    elif not args.report:
        for model_name, method, budget, seed, epochs in jobs(args):
            # read before every run: another process may share --out and have finished this one
            stored = load_records(out).get((model_name, method, budget, seed, epochs, "structured"))
            if stored is not None:
                check_training_set(stored, args, out)
                records.append(stored)
                continue
            record = run(model_name, method, budget, seed, args)
            append_record(out, record)
            records.append(record)
    summary = aggregate([asdict(r) for r in load_records(out).values() if r.variant == "structured"])
    write_output(args.summary, json.dumps(summary, indent=2))
    Path(args.plots).mkdir(parents=True, exist_ok=True)
    page = Path(args.markdown).resolve().parent
    links = {model: os.path.relpath(path.resolve(), page) for model, path in plot(summary, Path(args.plots)).items()}
    command = command_line("benchmarks.structured", argv)
    write_output(args.markdown, "# Structured pruning at equal FLOPs\n\n" + markdown(summary, command, args.out, links))
    return records


if __name__ == "__main__":
    main()
