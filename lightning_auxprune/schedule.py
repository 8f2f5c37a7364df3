"""When pruning happens: dense warm-up, pruning, frozen masks; and the shape of lambda's ramp.

Positions are numbers in one unit chosen by the caller (the callback uses epochs, fractional
within an epoch, or optimizer steps):

* ``[0, warmup)``: dense warm-up, masks do not move;
* ``[warmup, freeze)``: pruning, M is trained with the regularizer;
* ``[freeze, ...)``: masks frozen, only W is fine-tuned (``freeze=None``: never).

Without a target, lambda is ``strength * ramp_factor(t)``: constant, or ramping linearly from 0 at
``warmup`` to ``strength`` at ``warmup + ramp``. The schedule holds no lambda itself: the pruner
owns it (a constant, or the controller's state).

Examples:
    >>> s = PruningSchedule(warmup=1, ramp=2, freeze=5)
    >>> s.phase(0.5), s.phase(2.0), s.phase(5.0)
    ('warmup', 'pruning', 'frozen')
    >>> s.ramp_factor(2.0)
    0.5

"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Phase = Literal["warmup", "pruning", "frozen"]
PHASE_CODE: dict[Phase, int] = {"warmup": 0, "pruning": 1, "frozen": 2}


def check_finite(**values: float | None) -> None:
    """Raise a ValueError naming any value that is NaN or infinite (``None`` is allowed).

    Examples:
        >>> check_finite(warmup=1.0, freeze=None)

    """
    for name, value in values.items():
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{name}={value} must be a finite number.")


@dataclass(frozen=True)
class PruningSchedule:
    """Phases over training and the shape of lambda's ramp.

    Attributes:
        warmup: Length of the dense warm-up.
        ramp: How long pruning takes to come in after warm-up: lambda rises linearly to its
            strength over it (0: at once) or, with a target, the target along its cubic curve.
        freeze: Position at which masks freeze for a final W-only phase (``None``: never).

    """

    warmup: float = 0.0
    ramp: float = 0.0
    freeze: float | None = None

    def __post_init__(self) -> None:
        check_finite(warmup=self.warmup, ramp=self.ramp, freeze=self.freeze)
        if self.warmup < 0 or self.ramp < 0:
            raise ValueError(f"warmup={self.warmup} and ramp={self.ramp} must be >= 0.")
        if self.freeze is not None and self.freeze <= self.warmup:
            raise ValueError(
                f"freeze={self.freeze} must come after warmup={self.warmup} (or be None), "
                "otherwise there is no pruning phase."
            )

    def phase(self, position: float) -> Phase:
        """The phase at ``position``."""
        if position < self.warmup:
            return "warmup"
        if self.freeze is not None and position >= self.freeze:
            return "frozen"
        return "pruning"

    def ramp_factor(self, position: float) -> float:
        """Fraction of the full lambda at ``position``: 0 outside the pruning phase, 1 after the ramp."""
        if self.phase(position) != "pruning":
            return 0.0
        if self.ramp == 0:
            return 1.0
        return min(1.0, (position - self.warmup) / self.ramp)
