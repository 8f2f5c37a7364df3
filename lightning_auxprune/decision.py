"""The final decision on which masks stay open, taken on their recent average instead of the last step.

While pruning holds a target, a few masks near zero keep closing and reopening: the push closes
some, the bound or the data gradient reopens others. Which of them happen to be open at the step the
masks freeze is then a draw that differs between two runs of the same seed (another order of
floating-point sums is enough). [`MaskAverage`][lightning_auxprune.decision.MaskAverage] keeps an
exponential average of every m over the last ``window`` of training (one multi-tensor ``lerp`` per
step, no host sync) and, when the masks freeze, opens the entries with the largest averages, as many
as keep the kept fraction the run reached (the target's bound reopens them, so FLOPs and coupling
count exactly as during training), and closes the rest.

Examples:
    >>> import torch
    >>> from lightning_auxprune.target_bound import TargetBound
    >>> aux = [torch.tensor([1.0, -1.0, 1.0, -1.0])]
    >>> average = MaskAverage(window=1.0)
    >>> average.update(aux, position=0.0)
    >>> aux[0].copy_(torch.tensor([-0.1, 2.0, 1.0, -1.0]))  # entry 0 closed, entry 1 opened at the last step
    tensor([-0.1000,  2.0000,  1.0000, -1.0000])
    >>> average.update(aux, position=0.5)  # halfway to the new values
    >>> [round(v, 2) for v in average.values[0].tolist()]
    [0.45, 0.5, 1.0, -1.0]
    >>> bound = TargetBound(entry_weights=[1.0], entries=[4], required=0.0, lift=1e-3)
    >>> average.decide(aux, bound, required=2.0)  # keep two open: the two largest averages
    >>> (aux[0] > 0).tolist()
    [False, True, True, False]

"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lightning_auxprune.target_bound import StructuredBound, TargetBound


class MaskAverage:
    """An exponential average of the masks over a window of training, and the decision taken on it.

    Args:
        window: The average's time constant, in the unit of the schedule's positions (epochs or
            steps), > 0: each update moves the average ``(position step) / window`` of the way.

    """

    def __init__(self, window: float) -> None:
        if not window > 0:
            raise ValueError(f"window={window} must be > 0.")
        self.window = window
        self.values: list[torch.Tensor] | None = None
        self.position: float | None = None
        self.decided = False

    def update(self, aux: Sequence[torch.Tensor], position: float) -> None:
        """Move the average towards ``aux`` by the training done since the last update."""
        current = [a.detach() for a in aux]
        if self.values is None or self.position is None:
            self.values = [a.clone() for a in current]
        else:
            weight = min(1.0, max(0.0, position - self.position) / self.window)
            if weight > 0:
                torch._foreach_lerp_(self.values, current, weight)
        self.position = position

    def decide(self, aux: Sequence[torch.Tensor], bound: TargetBound | StructuredBound, required: float) -> None:
        """Open the entries with the largest averages until ``bound`` counts ``required`` kept; close the rest.

        Args:
            aux: The masks, changed in place (each entry's average, shifted below zero, or the
                bound's lift for the entries it opens).
            bound: The target's bound (its kept-quantity function and lift).
            required: The kept quantity to reach, in the bound's units.

        """
        if self.values is None:
            return
        with torch.no_grad():
            flat = torch.cat([v.reshape(-1) for v in self.values])
            closed = flat - (flat.max() + bound.lift)  # every entry closed, in the order of its average
            decided = [part.view_as(a).clone() for part, a in zip(torch.split(closed, bound.entries), aux, strict=True)]
            saved = bound.required
            bound.set_required(required)
            bound.apply(decided)
            bound.set_required(saved)
            torch._foreach_copy_(list(aux), decided)
        self.decided = True

    def state_dict(self) -> dict[str, Any]:
        """The average (on the CPU), its position and whether the decision was taken."""
        values = [v.detach().cpu() for v in self.values] if self.values is not None else None
        return {"values": values, "position": self.position, "decided": self.decided}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | None = None) -> None:
        """Restore :meth:`state_dict`'s average, on ``device``."""
        values = state.get("values")
        self.values = [v.to(device) for v in values] if values is not None else None
        self.position = state.get("position")
        self.decided = bool(state.get("decided", False))
