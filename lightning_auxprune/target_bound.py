"""A bound on how far past its target the lambda controller can prune, on any run length.

The controller steers lambda from the *measured* pruned fraction, and masks respond with a lag:
on a short run lambda can grow so far before the masks move that most of them close in a few
steps, far past the target.
[`TargetBound`][lightning_auxprune.target_bound.TargetBound] makes that
impossible: after every mask update it keeps the kept fraction at or above
``(1 - final) * (1 - tolerance)`` by reopening the masks with the largest m (the ones the method
ranks highest) when too many are closed. Below that line nothing changes, so the controller still
does the steering; the bound only stops runaways.

"Kept" is what the target measures: open weights (a neuron mask counts its whole fan-in) for
``target_sparsity``, the FLOPs ratio for ``target_flops``. Everything runs on the device with a
fixed number of kernels: one ``kthvalue`` when every mask entry weighs the same (weight masks and
a sparsity target), otherwise one sort of the entries and a cumulative sum.

Examples:
    >>> import torch
    >>> aux = [torch.tensor([-0.1, -0.5, 2.0, -0.3])]
    >>> bound = TargetBound(entry_weights=[1.0], entries=[4], required=2.0, lift=0.01)
    >>> bound.apply(aux)  # 1 of 4 open, 2 required: the best closed mask reopens
    >>> aux[0].tolist()
    [0.009999999776482582, -0.5, 2.0, -0.30000001192092896]

"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch


class TargetBound:
    """Keeps ``sum(weight of each open mask entry) >= required``.

    Args:
        entry_weights: What one open entry of each layer adds to the kept quantity (1 for weight
            masks and a sparsity target; the fan-in for neuron masks; the share of the dense FLOPs
            for a FLOPs target).
        entries: Mask entries per layer.
        required: The least kept quantity allowed (same units as ``entry_weights``); <= 0: no bound.
        lift: The value a reopened entry's m is lifted to, > 0.

    """

    def __init__(self, entry_weights: Sequence[float], entries: Sequence[int], required: float, lift: float) -> None:
        if len(entry_weights) != len(entries):
            raise ValueError(f"{len(entry_weights)} weights for {len(entries)} layers.")
        if not lift > 0:
            raise ValueError(f"lift={lift} must be > 0.")
        self.entries = list(entries)
        self.required = required
        self.lift = lift
        self.uniform = len(set(entry_weights)) <= 1
        self.total = sum(self.entries)
        self._unit = float(entry_weights[0]) if entry_weights else 1.0
        self._weights = torch.tensor(entry_weights, dtype=torch.float64)
        self._sizes = torch.tensor(self.entries)
        self.set_required(required)

    @property
    def enabled(self) -> bool:
        """Whether the bound acts at its current ``required``."""
        return self.required > 0 and self.total > 0 and (not self.uniform or self.count > 0)

    def set_required(self, required: float) -> None:
        """Move the bound (a host number: no sync), e.g. along the target's ramp."""
        self.required = required
        unit = self._unit
        self.count = min(self.total, math.ceil(required / unit - 1e-9)) if self.uniform and unit > 0 else 0

    def apply(self, aux: Sequence[torch.Tensor]) -> None:
        """Reopen the largest-m entries as far as needed (in place, no host sync)."""
        if not aux or not self.enabled:
            return
        with torch.no_grad():
            flat = torch.cat([a.detach().reshape(-1) for a in aux])
            threshold = self._uniform_threshold(flat) if self.uniform else self._weighted_threshold(flat)
            threshold = torch.where(threshold <= 0, threshold, math.inf)  # enough open already: nothing to do
            lifted = torch.where(flat >= threshold, flat.clamp_min(self.lift), flat)
            parts = torch.split(lifted, self.entries)
            torch._foreach_copy_(list(aux), [p.view_as(a) for p, a in zip(parts, aux, strict=True)])

    def _uniform_threshold(self, flat: torch.Tensor) -> torch.Tensor:
        """The ``count``-th largest m."""
        return flat.kthvalue(self.total - self.count + 1).values

    def _weighted_threshold(self, flat: torch.Tensor) -> torch.Tensor:
        """The m of the entry at which the largest-m entries add up to ``required``."""
        if self._weights.device != flat.device:
            self._weights, self._sizes = self._weights.to(flat.device), self._sizes.to(flat.device)
        weights = self._weights.repeat_interleave(self._sizes, output_size=self.total)
        values, order = flat.sort(descending=True)
        reached = torch.cumsum(weights[order], dim=0)
        index = torch.searchsorted(reached, torch.tensor([self.required], dtype=reached.dtype, device=flat.device))
        return values[index.clamp_max(self.total - 1)].squeeze(0)


class StructuredBound:
    """Keeps the kept-FLOPs ratio of neuron masks ``>= required``, where it is not a sum over entries.

    After [`shrink`][lightning_auxprune.export.shrink.shrink], a layer keeps FLOPs in proportion to
    its kept outputs *times* its kept inputs, so the entries' contributions interact. The bound
    ranks all entries by m, evaluates the kept ratio with the top ``k`` open for a grid of ``k``
    (one batched call of [`KeptFlops.batch`][lightning_auxprune.kept_flops.KeptFlops.batch]) and
    reopens the entries of the smallest ``k`` that suffices.

    Args:
        kept: The kept-FLOPs function of the masks.
        entries: Mask entries per mask.
        required: The least kept ratio allowed; <= 0: no bound.
        lift: The value a reopened entry's m is lifted to, > 0.
        steps: Points of the grid of ``k`` (the bound reopens at most ``entries / steps`` too many).

    Examples:
        >>> from lightning_auxprune.kept_flops import KeptFlops
        >>> kept = KeptFlops.weights(1.0, {"a": 1.0}, {"a": 0}, [4])
        >>> aux = [torch.tensor([-0.1, -0.5, 2.0, -0.3])]
        >>> StructuredBound(kept, [4], required=0.5, lift=0.01).apply(aux)
        >>> aux[0].tolist()
        [0.009999999776482582, -0.5, 2.0, -0.30000001192092896]

    """

    def __init__(self, kept: Any, entries: Sequence[int], required: float, lift: float, steps: int = 128) -> None:
        if not lift > 0:
            raise ValueError(f"lift={lift} must be > 0.")
        self.kept = kept
        self.entries = list(entries)
        self.required = required
        self.lift = lift
        self.total = sum(self.entries)
        self._ks = torch.unique(torch.linspace(0, self.total, min(steps, self.total) + 1).round().long())

    @property
    def enabled(self) -> bool:
        """Whether the bound acts at its current ``required``."""
        return self.required > 0 and self.total > 0

    def set_required(self, required: float) -> None:
        """Move the bound (a host number: no sync), e.g. along the target's ramp."""
        self.required = required

    def apply(self, aux: Sequence[torch.Tensor]) -> None:
        """Reopen the largest-m entries as far as needed (in place, no host sync)."""
        if not aux or not self.enabled:
            return
        with torch.no_grad():
            flat = torch.cat([a.detach().reshape(-1) for a in aux])
            if self._ks.device != flat.device:
                self._ks = self._ks.to(flat.device)
            values, order = flat.sort(descending=True)
            rank = torch.empty_like(order)
            rank[order] = torch.arange(self.total, device=flat.device)
            candidates = (rank.unsqueeze(0) < self._ks.unsqueeze(1)) | (flat > 0).unsqueeze(0)
            enough = self.kept.batch(candidates) >= self.required
            first = enough.to(torch.int8).argmax().reshape(1)  # the first k that suffices (all open always does)
            k = self._ks.index_select(0, first)
            threshold = torch.where(k > 0, values.index_select(0, (k - 1).clamp_min(0)), math.inf)
            threshold = torch.where(threshold <= 0, threshold, math.inf)
            lifted = torch.where(flat >= threshold, flat.clamp_min(self.lift), flat)
            parts = torch.split(lifted, self.entries)
            torch._foreach_copy_(list(aux), [p.view_as(a) for p, a in zip(parts, aux, strict=True)])
