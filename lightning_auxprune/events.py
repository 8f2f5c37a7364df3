"""Counting mask prune events (open -> closed) and recovery events (closed -> open), on the device.

[`MaskEvents.record`][lightning_auxprune.events.MaskEvents.record] compares the gates h(M) before and after an
optimizer step. Counting
happens on the masks' device (the number of flipped entries is an L1 norm of the gate change,
for all layers in one multi-tensor kernel); the totals are read back only when they are logged
or saved. ``recovered_total - pruned_total`` always equals the change in the number of open mask
entries since counting started.

Examples:
    >>> import torch
    >>> before = [torch.tensor([1.0, 1.0, 0.0])]
    >>> after = [torch.tensor([0.0, 1.0, 1.0])]
    >>> events = MaskEvents()
    >>> events.record(before, after)
    >>> events.pruned_total, events.recovered_total
    (1, 1)
    >>> events.take(), events.take()
    ((1, 1), (0, 0))

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lightning_auxprune.mask_set import COUNT_DTYPE, count_open

_PRUNED_TOTAL, _RECOVERED_TOTAL, _PRUNED_SINCE, _RECOVERED_SINCE = range(4)


def _total(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum of absolute values over a list of tensors, float64, one multi-tensor kernel."""
    return count_open(tensors).sum()


class MaskEvents:
    """Running totals of prune and recovery events, and counts since the last ``take``."""

    def __init__(self) -> None:
        self.counts = torch.zeros(4, dtype=COUNT_DTYPE)

    def record(
        self,
        before: Sequence[torch.Tensor],
        after: Sequence[torch.Tensor],
        open_before: torch.Tensor | None = None,
        open_after: torch.Tensor | None = None,
        change: Sequence[torch.Tensor] | None = None,
    ) -> None:
        """Count the entries that flipped between two lists of 0/1 gates (no host sync).

        Args:
            before: h(M) per layer before the step.
            after: h(M) per layer after the step, same shapes.
            open_before: Open entries per layer before, if already counted.
            open_after: Open entries per layer after, if already counted.
            change: ``after - before`` per layer, if already computed.

        """
        if not before:
            return
        with torch.no_grad():
            change = torch._foreach_sub(list(after), list(before)) if change is None else change
            flips = _total(change)
            opened_after = _total(after) if open_after is None else open_after.sum()
            opened_before = _total(before) if open_before is None else open_before.sum()
            net = opened_after - opened_before
            recovered = (flips + net) / 2
            pruned = flips - recovered
            if self.counts.device != flips.device:
                self.counts = self.counts.to(flips.device)
            self.counts += torch.stack([pruned, recovered, pruned, recovered])

    @property
    def pruned_total(self) -> int:
        """Prune events so far (reads the device)."""
        return round(float(self.counts[_PRUNED_TOTAL]))

    @property
    def recovered_total(self) -> int:
        """Recovery events so far (reads the device)."""
        return round(float(self.counts[_RECOVERED_TOTAL]))

    def take(self) -> tuple[int, int]:
        """Return ``(pruned, recovered)`` since the last call and reset those counters.

        Examples:
            >>> MaskEvents().take()
            (0, 0)

        """
        values = self.counts.tolist()
        self.counts[_PRUNED_SINCE:] = 0.0
        return round(values[_PRUNED_SINCE]), round(values[_RECOVERED_SINCE])

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue counting exactly after a resume."""
        values = [round(v) for v in self.counts.tolist()]
        return {
            "pruned_total": values[_PRUNED_TOTAL],
            "recovered_total": values[_RECOVERED_TOTAL],
            "pruned_since": values[_PRUNED_SINCE],
            "recovered_since": values[_RECOVERED_SINCE],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what [`state_dict`][lightning_auxprune.events.MaskEvents.state_dict] returned.

        A ``"previous"`` entry (version 0.1) is ignored: the gates are read from the masks.
        """
        keys = ("pruned_total", "recovered_total", "pruned_since", "recovered_since")
        self.counts = torch.tensor([float(state[k]) for k in keys], dtype=COUNT_DTYPE, device=self.counts.device)
