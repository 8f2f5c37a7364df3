"""Counting mask prune events (open -> closed) and recovery events (closed -> open).

Call :meth:`MaskEvents.update` after every optimizer step; it compares each mask with its
state at the previous call. ``recovered_total - pruned_total`` always equals the change in the
number of open mask entries since the first call.

Example:
    >>> import torch
    >>> from lightning_auxprune.parametrization import AuxMask
    >>> from lightning_auxprune.options import MaskOptions
    >>> mask = AuxMask(torch.ones(3), MaskOptions())
    >>> events = MaskEvents()
    >>> events.update({"fc": mask})
    >>> with torch.no_grad():
    ...     mask.aux[:2] = -1.0
    >>> events.update({"fc": mask})
    >>> events.pruned_total, events.recovered_total
    (2, 0)

"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from lightning_auxprune.parametrization import AuxMask


class MaskEvents:
    """Running totals of prune and recovery events, and counts since the last :meth:`take`."""

    def __init__(self) -> None:
        self.previous: dict[str, torch.Tensor] = {}
        self.pruned_total = 0
        self.recovered_total = 0
        self.pruned_since = 0
        self.recovered_since = 0

    def update(self, masks: Mapping[str, AuxMask]) -> None:
        """Compare each mask with its previous state and count the flips (mask entries)."""
        for name, mask in masks.items():
            now = mask.aux.detach() > 0
            before = self.previous.get(name)
            self.previous[name] = now
            if before is None:
                continue
            flipped = now != before.to(now.device)
            if not bool(flipped.any()):  # the common case: nothing changed since the last call
                continue
            recovered = int((flipped & now).sum())
            pruned = int(flipped.sum()) - recovered
            self.pruned_total += pruned
            self.recovered_total += recovered
            self.pruned_since += pruned
            self.recovered_since += recovered

    def take(self) -> tuple[int, int]:
        """Return ``(pruned, recovered)`` since the last call and reset those counters.

        Example:
            >>> MaskEvents().take()
            (0, 0)

        """
        counts = (self.pruned_since, self.recovered_since)
        self.pruned_since = self.recovered_since = 0
        return counts

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue counting exactly after a resume."""
        return {
            "previous": {k: v.cpu() for k, v in self.previous.items()},
            "pruned_total": self.pruned_total,
            "recovered_total": self.recovered_total,
            "pruned_since": self.pruned_since,
            "recovered_since": self.recovered_since,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.previous = {k: v.clone() for k, v in state["previous"].items()}
        self.pruned_total = int(state["pruned_total"])
        self.recovered_total = int(state["recovered_total"])
        self.pruned_since = int(state["pruned_since"])
        self.recovered_since = int(state["recovered_since"])
