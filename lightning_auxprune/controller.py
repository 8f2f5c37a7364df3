"""A controller that adjusts lambda so that pruning follows a target schedule.

Users think in targets ("keep 1% of the weights", "keep 25% of the FLOPs"), not in lambda. With a
target, lambda becomes a state: after every optimizer step of the pruning phase it is multiplied
by ``exp(gain * (target(t) - achieved))``, where both are *removed fractions* (of masked weights,
or of the model's dense FLOPs). Too little pruned -> lambda grows; too much -> it shrinks, so masks
with a strong enough data gradient reopen.

The target itself ramps up cubically (the schedule of gradual magnitude pruning, Zhu & Gupta
2017) from 0 at ``start`` to ``final`` at ``end``, and stays there afterwards:
``target(t) = final * (1 - (1 - p)^3)``, ``p = (t - start) / (end - start)`` clipped to [0, 1].

Example:
    >>> c = TargetController(final=0.9, start=0.0, end=10.0, strength=1e-4)
    >>> round(c.target_at(5.0), 4), c.target_at(20.0)
    (0.7875, 0.9)
    >>> c.update(position=5.0, achieved=0.5) > 1e-4   # behind the target: lambda grows
    True

"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

TargetMetric = Literal["sparsity", "flops"]


@dataclass
class TargetController:
    """Proportional-integral control of log(lambda) towards a cubic target.

    Attributes:
        final: Removed fraction to reach at ``end``, in (0, 1).
        start: Position (in the schedule's unit) where the target starts at 0.
        end: Position where the target reaches ``final``; > ``start``.
        strength: The integral part of lambda (lambda's initial value on construction), > 0.
        gain: Integral gain: log-lambda change per step and per unit of (log) error, > 0.
        p_gain: Proportional gain: log-lambda offset per unit of (log) error, >= 0.
        output: The lambda of the last update (``strength`` before the first).
        min_strength: Lower bound of lambda, > 0.
        max_strength: Upper bound of lambda, > ``min_strength``.

    """

    final: float
    start: float
    end: float
    strength: float
    gain: float = 0.01
    p_gain: float = 2.0
    min_strength: float = 1e-9
    max_strength: float = 1.0
    output: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.final < 1.0:
            raise ValueError(f"target={self.final} must be a fraction in (0, 1).")
        if self.end <= self.start:
            raise ValueError(
                f"The target ramp ends at {self.end}, not after it starts at {self.start}: give a ramp > 0 "
                "or a freeze after the warm-up."
            )
        if self.gain <= 0 or self.p_gain < 0:
            raise ValueError(f"Need target_gain={self.gain} > 0 and target_p_gain={self.p_gain} >= 0.")
        if not 0 < self.min_strength < self.max_strength:
            raise ValueError(
                f"Need 0 < min_strength={self.min_strength} (target_min_strength) < max_strength={self.max_strength}."
            )
        if not self.min_strength <= self.strength <= self.max_strength:
            raise ValueError(
                f"strength={self.strength} (lambda's initial value) must lie in "
                f"[{self.min_strength}, {self.max_strength}] when a target is set: lower target_min_strength "
                "or raise strength."
            )
        self.output = self.output or self.strength

    def target_at(self, position: float) -> float:
        """Removed fraction wanted at ``position``."""
        progress = min(1.0, max(0.0, (position - self.start) / (self.end - self.start)))
        return self.final * (1.0 - (1.0 - progress) ** 3)

    def update(self, position: float, achieved: float) -> float:
        """Move lambda after one step given the ``achieved`` removed fraction; return it.

        Example:
            >>> c = TargetController(final=0.5, start=0, end=1, strength=1e-3)
            >>> c.update(1.0, achieved=0.75) < 1e-3   # ahead of the target: lambda shrinks
            True

        """
        error = math.log(max(1.0 - achieved, 1e-12) / (1.0 - self.target_at(position)))
        self.strength = self._clip(self.strength * math.exp(self.gain * error))
        self.output = self._clip(self.strength * math.exp(self.p_gain * error))
        return self.output

    def _clip(self, value: float) -> float:
        return min(self.max_strength, max(self.min_strength, value))

    def state_dict(self) -> dict[str, Any]:
        """The controller's state (everything else comes from the constructor)."""
        return {"strength": self.strength, "output": self.output}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume with a saved state."""
        self.strength = float(state["strength"])
        self.output = float(state["output"])
