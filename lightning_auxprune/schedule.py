"""When pruning happens and how strong the regularizer is: dense warm-up, pruning, frozen masks.

Positions are measured in ``unit`` (``"epoch"``, fractional within an epoch, or optimizer
``"step"``):

* ``[0, warmup)``: dense warm-up, masks do not move;
* ``[warmup, freeze)``: pruning, M is trained with strength ``lambda(t)``;
* ``[freeze, ...)``: masks frozen, only W is fine-tuned (``freeze=None``: never).

``lambda(t)`` is constant, or ramps linearly from 0 at ``warmup`` to ``strength`` at
``warmup + ramp``.

Example:
    >>> s = PruningSchedule(strength=1e-4, warmup=1, ramp=2, freeze=5)
    >>> s.phase(0.5), s.phase(2.0), s.phase(5.0)
    ('warmup', 'pruning', 'frozen')
    >>> s.lambda_at(2.0)
    5e-05

"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lightning_auxprune.options import check_choice

Phase = Literal["warmup", "pruning", "frozen"]
Unit = Literal["epoch", "step"]


@dataclass(frozen=True)
class PruningSchedule:
    """Phases and regularizer strength over training.

    Attributes:
        strength: lambda, the regularizer strength once ramped up (>= 0).
        unit: ``"epoch"`` or ``"step"`` (optimizer steps).
        warmup: Length of the dense warm-up, in ``unit``.
        ramp: Length of the linear lambda ramp after warm-up (0: constant lambda).
        freeze: Position at which masks freeze for a final W-only phase (``None``: never).

    """

    strength: float = 1e-4
    unit: Unit = "epoch"
    warmup: float = 0.0
    ramp: float = 0.0
    freeze: float | None = None

    def __post_init__(self) -> None:
        check_choice("unit", self.unit, Unit)
        if self.strength < 0:
            raise ValueError(f"strength (lambda)={self.strength} must be >= 0; 0 disables the regularizer.")
        if self.warmup < 0 or self.ramp < 0:
            raise ValueError(f"warmup={self.warmup} and ramp={self.ramp} must be >= 0.")
        if self.freeze is not None and self.freeze <= self.warmup:
            raise ValueError(
                f"freeze={self.freeze} must come after warmup={self.warmup} (or be None), "
                "otherwise there is no pruning phase."
            )

    def phase(self, position: float) -> Phase:
        """The phase at ``position`` (in ``unit``)."""
        if position < self.warmup:
            return "warmup"
        if self.freeze is not None and position >= self.freeze:
            return "frozen"
        return "pruning"

    def lambda_at(self, position: float) -> float:
        """Regularizer strength at ``position``; 0 outside the pruning phase."""
        if self.phase(position) != "pruning":
            return 0.0
        if self.ramp == 0:
            return self.strength
        return self.strength * min(1.0, (position - self.warmup) / self.ramp)
