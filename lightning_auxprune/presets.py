"""The presets: named sets of settings, written once for the callback and the benchmarks.

* [`paper_settings`][lightning_auxprune.presets.paper_settings]: the method as the paper describes
  it, nothing added;
* [`recipe_settings`][lightning_auxprune.presets.recipe_settings]: the benchmarked recipe, a
  target reached along a cubic ramp within a budget of epochs, whose schedule is
  [`recipe_schedule`][lightning_auxprune.presets.recipe_schedule] (the benchmarks schedule their
  peers with it too).

Each preset has settings that *define* it (overriding them would make it another method: an error
that says to use the constructor) and defaults that overrides may replace. Both are checked the
same way by [`check_overrides`][lightning_auxprune.presets.check_overrides].

Examples:
    >>> recipe_schedule(16)
    {'warmup': 1.0, 'ramp': 9, 'freeze': 12}
    >>> recipe_settings(8, target_sparsity=0.9, overrides={"aux_lr": 0.01})["aux_lr"]
    0.01
    >>> recipe_settings(8, target_flops=0.5, overrides={"granularity": "neuron"})["aux_optimizer"]
    'normalized_sgd'

"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PAPER_FIXED: dict[str, Any] = {
    "regularizer": "count",
    "ste": "leaky_relu",
    "rule": "sign",
    "weight_grad": "masked",
    "init": "constant",
    "aux_optimizer": "shared",
    "warmup": 0.0,
    "ramp": 0.0,
    "freeze": None,
}
"""What the paper preset fixes: constant lambda, ``R = sum h(M)``, leaky-ReLU STE, the sign rule,
masked W gradient, constant M init, M trained by your optimizer, no warm-up, no freeze."""
RECIPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "weight": {"aux_optimizer": "sgd", "aux_lr": 1.0, "strength": 1e-3, "target_min_strength": 1e-5},
    "neuron": {
        "aux_optimizer": "normalized_sgd",
        "aux_lr": 0.05,
        "strength": 1e-3,
        "target_min_strength": 1e-5,
        "ramp_tolerance": 0.05,
        "target_tolerance": 0.05,
        "min_unit_fraction": 0.25,
        "min_uniform_share": 1.0,
    },
}
"""The recipe's defaults per granularity: what steps M at which lr, lambda's starting value and floor.

Weight masks: plain SGD on M at lr 1 with lambda kept above 1e-5, the configuration that measured
best against gradual magnitude pruning (``autoprune_target_sgd_floor`` in docs/benchmarks.md).
Neuron masks: the same with each layer's M gradient divided by its RMS (a unit's gradient sums its
fan-in, whose size differs by orders of magnitude between layers), chosen on validation accuracy
(``benchmarks.structured``), with the kept FLOPs held within 5% of the target's ramp at every step
and of the target at the end (``ramp_tolerance``, ``target_tolerance``): without that the masks
close together past the ramp and the run ends 25% below its budget; and every layer keeps a
quarter of its units (``min_unit_fraction``): at 5%, ResNet-20's last residual stream shrank to 4
of 64 channels on one seed and lost 18 points of validation accuracy; and every layer keeps at
least the units a uniform cut to the ramp's target leaves it (``min_uniform_share=1``: the masks
choose which units, the budget is shared between layers as a uniform cut shares it), ahead of the
cost-aware allocation on validation accuracy over the full-data grid's same-seed runs of the
VGG-like CNN and ResNet-20 (``autoprune_uniform`` against ``autoprune`` in docs/benchmarks.md).
The recipe before these defaults (Adam on M, ``aux_lr=5e-3``, lambda from 1e-4) is
``autoprune_target`` of the benchmarks."""
RECIPE_FIXED = ("warmup", "ramp", "freeze", "interval", "target_sparsity", "target_flops")
"""What the recipe sets itself: the schedule (from the epoch budget) and the target (an argument)."""


def check_overrides(preset: str, overrides: Mapping[str, Any], fixed: Iterable[str], known: Iterable[str]) -> None:
    """Refuse overrides a preset fixes, and names that are no setting at all.

    Raises:
        ValueError: Naming the fixed settings, and what to use instead.
        TypeError: Naming the unknown settings.

    Examples:
        >>> check_overrides("paper", {"rule": "chain"}, PAPER_FIXED, ["rule"])
        Traceback (most recent call last):
        ...
        ValueError: ['rule'] are fixed by the paper preset; use AuxMaskPruning(...) to change them.

    """
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise TypeError(f"{unknown} are not AuxMaskPruning settings (see docs/configuration.md).")
    clash = sorted(set(fixed) & set(overrides))
    if clash:
        raise ValueError(f"{clash} are fixed by the {preset} preset; use AuxMaskPruning(...) to change them.")


def paper_settings(strength: float, aux_lr: float, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments of the paper preset (``overrides``: layer selection, logging, ...)."""
    return {"strength": strength, "aux_lr": aux_lr, **PAPER_FIXED, **overrides}


def recipe_schedule(max_epochs: int) -> dict[str, Any]:
    """The recipe's schedule in epochs.

    One dense epoch; the target is reached 2 epochs before the masks freeze at 3/4 of the budget.

    Raises:
        ValueError: For fewer than 2 epochs.
    """
    if max_epochs < 2:
        raise ValueError(f"max_epochs={max_epochs}: the recipe needs at least 2 epochs (1 of them dense).")
    freeze = max(2, round(0.75 * max_epochs))
    return {"warmup": 1.0, "ramp": max(1, freeze - 3), "freeze": freeze}


def recipe_settings(
    max_epochs: int,
    target_sparsity: float | None = None,
    target_flops: float | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The constructor arguments of the recipe for a budget of ``max_epochs``.

    Raises:
        ValueError: Without exactly one target, or with fewer than 2 epochs.
    """
    if (target_sparsity is None) == (target_flops is None):
        raise ValueError(
            "The recipe needs exactly one target: recipe(target_sparsity=0.9) or recipe(target_flops=0.25)."
        )
    targets = {"target_sparsity": target_sparsity, "target_flops": target_flops, "interval": "epoch"}
    defaults = RECIPE_DEFAULTS[(overrides or {}).get("granularity", "weight")]
    return {**defaults, **(overrides or {}), **targets, **recipe_schedule(max_epochs)}
