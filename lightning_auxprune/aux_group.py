"""The optimizer's named ``"auxprune"`` parameter group holding every auxiliary mask.

[`attach_aux_group`][lightning_auxprune.aux_group.attach_aux_group] moves the mask parameters out of the user's groups
(a
``configure_optimizers`` that passes ``self.parameters()`` includes them) into one group with
its own learning rate and no weight decay. [`align_schedulers`][lightning_auxprune.aux_group.align_schedulers] makes LR
schedulers built
before the group existed aware of it, so none of them crashes or silently misses it; whether
the schedule then applies to the aux group is decided by [`aux_lr`][lightning_auxprune.aux_group.aux_lr] and re-applied
by the
caller before each step.

Examples:
    >>> import torch
    >>> w, m = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    >>> opt = torch.optim.SGD([w, m], lr=0.1, weight_decay=1e-4)
    >>> group = attach_aux_group(opt, [m], lr=0.01)
    >>> [len(g["params"]) for g in opt.param_groups], group["name"], group["weight_decay"]
    ([1, 1], 'auxprune', 0.0)

"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import torch
from torch import nn

from lightning_auxprune.options import check_choice

AUX_GROUP = "auxprune"
AuxLrMode = Literal["fixed", "follow"]
_PER_GROUP_LISTS = {
    "base_lrs": "lr",
    "_last_lr": "lr",
    "max_lrs": "lr",
    "min_lrs": 0.0,
    "lr_lambdas": "one",
    "base_momentums": "first",
    "max_momentums": "first",
}


def constant_one(_: int) -> float:
    """LR multiplier used for the aux group in ``LambdaLR``-style schedulers."""
    return 1.0


def find_aux_group(optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
    """The aux group of ``optimizer``, or ``None``."""
    for group in optimizer.param_groups:
        if group.get("name") == AUX_GROUP:
            return group
    return None


def attach_aux_group(optimizer: torch.optim.Optimizer, params: Sequence[nn.Parameter], lr: float) -> dict[str, Any]:
    """Move ``params`` (compared by identity) into a new ``"auxprune"`` group of ``optimizer``.

    Args:
        optimizer: The user's optimizer (SGD, Adam, AdamW, ... any ``torch.optim.Optimizer``).
        params: The auxiliary mask parameters, in a deterministic order.
        lr: The aux group's learning rate.

    Returns:
        The new group.

    Raises:
        ValueError: If the optimizer already has an aux group, or removing the masks would
            leave one of the user's groups empty.

    """
    if find_aux_group(optimizer) is not None:
        raise ValueError(f"The optimizer already has a parameter group named {AUX_GROUP!r}.")
    ids = {id(p) for p in params}
    for index, group in enumerate(optimizer.param_groups):
        kept = [p for p in group["params"] if id(p) not in ids]
        if not kept and group["params"]:
            raise ValueError(
                f"Parameter group {index} holds only auxiliary masks; configure_optimizers should not "
                "create a group for them: AuxMaskPruning adds its own."
            )
        group["params"] = kept
    reference = optimizer.param_groups[0] if optimizer.param_groups else {}
    optimizer.add_param_group({"params": list(params), "lr": lr, "weight_decay": 0.0, "name": AUX_GROUP})
    group = optimizer.param_groups[-1]
    group["initial_lr"] = lr
    for key, value in reference.items():
        group.setdefault(key, value)
    return group


def _schedulers_within(scheduler: Any) -> Iterable[Any]:
    yield scheduler
    for inner in getattr(scheduler, "_schedulers", []) or []:
        yield from _schedulers_within(inner)


def align_schedulers(schedulers: Iterable[Any], optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Extend per-group lists of ``schedulers`` bound to ``optimizer`` by one entry for the aux group.

    Handles ``base_lrs``/``_last_lr`` (all ``LRScheduler`` subclasses), ``lr_lambdas``
    (``LambdaLR``, ``MultiplicativeLR``), ``min_lrs`` (``ReduceLROnPlateau``), ``max_lrs``
    and ``base_momentums``/``max_momentums`` (``CyclicLR``) and nested schedulers
    (``SequentialLR``, ``ChainedScheduler``).
    ``OneCycleLR``'s per-group keys were copied by [`attach_aux_group`][lightning_auxprune.aux_group.attach_aux_group].

    Examples:
        >>> p, m = torch.nn.Parameter(torch.ones(1)), torch.nn.Parameter(torch.ones(1))
        >>> opt = torch.optim.SGD([p, m], lr=0.1)
        >>> sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1)
        >>> _ = attach_aux_group(opt, [m], lr=0.01)
        >>> align_schedulers([sched], opt, 0.01)
        >>> sched.base_lrs
        [0.1, 0.01]

    """
    groups = len(optimizer.param_groups)
    for top in schedulers:
        for scheduler in _schedulers_within(top):
            if getattr(scheduler, "optimizer", None) is not optimizer:
                continue
            for attr, fill in _PER_GROUP_LISTS.items():
                values = getattr(scheduler, attr, None)
                if isinstance(values, list) and len(values) == groups - 1:
                    fills = {"lr": lr, "one": constant_one, "first": values[0] if values else None}
                    values.append(fills.get(fill, fill) if isinstance(fill, str) else fill)


def aux_lr(optimizer: torch.optim.Optimizer, base: float, mode: AuxLrMode) -> float:
    """The aux group's learning rate to apply now.

    ``"fixed"``: always ``base``. ``"follow"``: ``base`` times the ratio of group 0's current
    lr to its ``initial_lr`` (the factor the user's scheduler has applied so far).

    Examples:
        >>> p = torch.nn.Parameter(torch.ones(1))
        >>> opt = torch.optim.SGD([{"params": [p], "lr": 0.05, "initial_lr": 0.1}])
        >>> aux_lr(opt, 1e-2, "follow")
        0.005

    """
    if mode == "fixed":
        return base
    if mode != "follow":  # validated only off the common path: this runs several times per step
        check_choice("aux_lr_mode", mode, AuxLrMode)
    first = optimizer.param_groups[0]
    initial = first.get("initial_lr", first["lr"])
    return base * (first["lr"] / initial) if initial else base


def set_aux_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Write ``lr`` into the aux group (no-op if the optimizer has none)."""
    group = find_aux_group(optimizer)
    if group is not None:
        group["lr"] = lr
