"""A controller that adjusts lambda so that pruning follows a target schedule.

Users think in targets ("keep 1% of the weights", "keep 25% of the FLOPs"), not in lambda. With a
target, lambda becomes a state: after every optimizer step of the pruning phase it is multiplied
by ``exp(gain * error)``, where ``error = log(kept / wanted)`` compares the kept fraction (of
masked weights, or of the model's dense FLOPs) with the target's. Too little pruned -> lambda
grows; too much -> it shrinks, so masks with a strong enough data gradient reopen.

The target itself ramps up cubically (the schedule of gradual magnitude pruning, Zhu & Gupta
2017) from 0 at ``start`` to ``final`` at ``end``, and stays there afterwards:
``target(t) = final * (1 - (1 - p)^3)``, ``p = (t - start) / (end - start)`` clipped to [0, 1].

The controller's state lives on the masks' device as float64 tensors: the measured fraction
comes from the masks without a host sync, and lambda goes to the regularizer the same way.
Reading [`TargetController.strength`][lightning_auxprune.controller.TargetController.strength] or
[`output`][lightning_auxprune.controller.TargetController.output] synchronises.

Examples:
    >>> c = TargetController(final=0.9, start=0.0, end=10.0, strength=1e-4)
    >>> round(c.target_at(5.0), 4), c.target_at(20.0)
    (0.7875, 0.9)
    >>> bool(c.update(position=5.0, achieved=0.5) > 1e-4)   # behind the target: lambda grows
    True

"""

from __future__ import annotations

from typing import Any

import torch

STATE_DTYPE = torch.float64


class TargetController:
    """Proportional-integral control of log(lambda) towards a cubic target.

    Args:
        final: Removed fraction to reach at ``end``, in (0, 1).
        start: Position (in the schedule's unit) where the target starts at 0.
        end: Position where the target reaches ``final``; > ``start``.
        strength: lambda's initial value, > 0.
        gain: Integral gain: log-lambda change per step and per unit of (log) error, > 0.
        p_gain: Proportional gain: log-lambda offset per unit of (log) error, >= 0.
        min_strength: Lower bound of lambda, > 0.
        max_strength: Upper bound of lambda, > ``min_strength``.

    """

    def __init__(
        self,
        final: float,
        start: float,
        end: float,
        strength: float,
        gain: float = 0.01,
        p_gain: float = 2.0,
        min_strength: float = 1e-9,
        max_strength: float = 1.0,
    ) -> None:
        if not 0.0 < final < 1.0:
            raise ValueError(f"target={final} must be a fraction in (0, 1).")
        if end <= start:
            raise ValueError(
                f"The target ramp ends at {end}, not after it starts at {start}: give a ramp > 0 "
                "or a freeze after the warm-up."
            )
        if not gain > 0 or not p_gain >= 0:
            raise ValueError(f"Need target_gain={gain} > 0 and target_p_gain={p_gain} >= 0.")
        if not 0 < min_strength < max_strength:
            raise ValueError(
                f"Need 0 < min_strength={min_strength} (target_min_strength) < max_strength={max_strength}."
            )
        if not min_strength <= strength <= max_strength:
            raise ValueError(
                f"strength={strength} (lambda's initial value) must lie in "
                f"[{min_strength}, {max_strength}] when a target is set: lower target_min_strength "
                "or raise strength."
            )
        self.final, self.start, self.end = final, start, end
        self.initial = strength
        self.gain, self.p_gain = gain, p_gain
        self.min_strength, self.max_strength = min_strength, max_strength
        self._strength = torch.tensor(strength, dtype=STATE_DTYPE)
        self._output = torch.tensor(strength, dtype=STATE_DTYPE)

    def __repr__(self) -> str:
        return (
            f"TargetController(final={self.final}, start={self.start}, end={self.end}, strength={self.initial}, "
            f"gain={self.gain}, p_gain={self.p_gain}, min_strength={self.min_strength}, "
            f"max_strength={self.max_strength})"
        )

    @property
    def strength(self) -> float:
        """The integral part of lambda (reads the device)."""
        return float(self._strength)

    @property
    def output(self) -> float:
        """The lambda of the last update, ``strength`` before the first (reads the device)."""
        return float(self._output)

    @property
    def lam(self) -> torch.Tensor:
        """The lambda of the last update as a 0-d device tensor (no sync)."""
        return self._output

    def target_at(self, position: float) -> float:
        """Removed fraction wanted at ``position``."""
        progress = min(1.0, max(0.0, (position - self.start) / (self.end - self.start)))
        return self.final * (1.0 - (1.0 - progress) ** 3)

    def update(self, position: float, achieved: torch.Tensor | float) -> torch.Tensor:
        """Move lambda after one step given the ``achieved`` removed fraction; return it (0-d tensor).

        Examples:
            >>> c = TargetController(final=0.5, start=0, end=1, strength=1e-3)
            >>> bool(c.update(1.0, achieved=0.75) < 1e-3)   # ahead of the target: lambda shrinks
            True

        """
        achieved_t = torch.as_tensor(achieved, dtype=STATE_DTYPE, device=self._strength.device)
        if achieved_t.device != self._strength.device:
            self.to(achieved_t.device)
        kept = (1.0 - achieved_t).clamp_min(1e-12)
        error = torch.log(kept / (1.0 - self.target_at(position)))
        self._strength = (self._strength * torch.exp(self.gain * error)).clamp(self.min_strength, self.max_strength)
        self._output = (self._strength * torch.exp(self.p_gain * error)).clamp(self.min_strength, self.max_strength)
        return self._output

    def to(self, device: torch.device | str) -> TargetController:
        """Keep the state on ``device`` (that of the masks)."""
        self._strength = self._strength.to(device)
        self._output = self._output.to(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        """The controller's state (everything else comes from the constructor)."""
        return {"strength": self.strength, "output": self.output}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume with a saved state."""
        device = self._strength.device
        self._strength = torch.tensor(float(state["strength"]), dtype=STATE_DTYPE, device=device)
        self._output = torch.tensor(float(state["output"]), dtype=STATE_DTYPE, device=device)


OVER_TARGET = 1.05
"""A run that keeps more than this times its target's share (of weights or FLOPs) missed its budget."""
UNDER_TARGET = 0.8
"""A run that keeps less than this times its target's share pruned far more than asked."""


def target_miss(kept: float, wanted: float) -> str | None:
    """How a run's final kept share missed the share its target asked for, or ``None`` if it did not.

    Keeping more than asked breaks the budget the user set, so 5% above it counts; keeping less is
    more pruning than asked (accuracy given away), counted from 20% below.

    Args:
        kept: The share of weights or FLOPs the masks keep at the end.
        wanted: The share the target asked to keep (``1 - final``).

    Examples:
        >>> target_miss(0.379, 0.35)
        '8.3% above the target'
        >>> target_miss(0.36, 0.35) is None
        True
        >>> target_miss(0.2, 0.35)
        '42.9% below the target'

    """
    ratio = kept / wanted
    if ratio > OVER_TARGET:
        return f"{percent(ratio - 1)} above the target"
    if ratio < UNDER_TARGET:
        return f"{percent(1 - ratio)} below the target"
    return None


def percent(share: float) -> str:
    """A share as a percentage with at most one decimal (``0.5533`` -> ``'55.3%'``, ``1.0`` -> ``'100%'``)."""
    return f"{100 * share:.1f}".rstrip("0").rstrip(".") + "%"
