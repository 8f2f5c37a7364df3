"""A floor under each layer's open units, so that neuron pruning cannot close a layer entirely.

A layer whose units all close outputs zeros (or BatchNorm's constant): the network falls to chance
while the pruned fraction looks like progress. [`UnitFloor`][lightning_auxprune.floor.UnitFloor] keeps the ``k`` most
open units of
every neuron-masked layer open: after each mask update, in a layer whose ``k``-th largest m is not
positive, those ``k`` units are lifted to a small positive value (the rest are left alone, so
they can still close). ``k = max(min_units, ceil(min_fraction * units))``, at most the layer's units.

Everything runs on the device with a fixed number of kernels, whatever the number of layers:
the masks are padded into one ``[layers, units]`` matrix for a single ``topk``.

Examples:
    >>> import torch
    >>> aux = [torch.tensor([-1.0, -0.5, -2.0]), torch.tensor([3.0, -1.0])]
    >>> floor = UnitFloor([3, 2], min_units=1, min_fraction=0.0, lift=0.1)
    >>> floor.apply(aux)
    >>> [a.tolist() for a in aux]  # the first layer's best unit reopens; the second had one open
    [[-1.0, 0.10000000149011612, -2.0], [3.0, -1.0]]

"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn.utils.rnn import pad_sequence


def floor_units(units: int, min_units: int, min_fraction: float) -> int:
    """``max(min_units, ceil(min_fraction * units))``, at most ``units``.

    Examples:
        >>> floor_units(64, 1, 0.05), floor_units(2, 4, 0.0)
        (4, 2)

    """
    return min(units, max(min_units, math.ceil(min_fraction * units)))


class UnitFloor:
    """Keeps at least ``k`` units open per layer.

    Args:
        units: Units (mask entries) per layer.
        min_units: Units kept open at least, >= 0 (0 and ``min_fraction=0``: no floor).
        min_fraction: Fraction of each layer's units kept open at least, in [0, 1).
        lift: The value a reopened unit's m is lifted to, > 0.

    """

    def __init__(self, units: Sequence[int], min_units: int, min_fraction: float, lift: float) -> None:
        if min_units < 0 or not 0.0 <= min_fraction < 1.0:
            raise ValueError(f"Need min_units={min_units} >= 0 and min_fraction={min_fraction} in [0, 1).")
        if not lift > 0:
            raise ValueError(f"lift={lift} must be > 0.")
        self.units = list(units)
        self.counts = [floor_units(n, min_units, min_fraction) for n in self.units]
        self.lift = lift
        self._ranks = torch.tensor([max(k, 1) - 1 for k in self.counts])
        self._active = torch.tensor([k > 0 for k in self.counts])
        self._sizes = torch.tensor(self.units)
        self._sizes_f64 = self._sizes.to(torch.float64)  # for the moving floor's ceil, cast once

    @property
    def enabled(self) -> bool:
        """Whether any layer has a floor."""
        return any(k > 0 for k in self.counts)

    def floor_gates(self) -> torch.Tensor:
        """The 0/1 gates of every layer held at its floor (its first ``k`` units open), all layers in a row.

        Examples:
            >>> UnitFloor([4, 2], min_units=1, min_fraction=0.5, lift=1e-3).floor_gates().tolist()
            [1.0, 1.0, 0.0, 0.0, 1.0, 0.0]

        """
        parts = [torch.arange(n) < k for n, k in zip(self.units, self.counts, strict=True)]
        return torch.cat(parts).to(torch.float32) if parts else torch.zeros(0)

    def apply(self, aux: Sequence[torch.Tensor], fraction: float = 0.0) -> None:
        """Lift the ``k`` largest m of each layer that has fewer than ``k`` open units (in place, no sync).

        Args:
            aux: The layers' masks.
            fraction: Keep at least ``ceil(fraction * units)`` open in each layer too (a floor
                that moves, as ``min_uniform_share`` asks), in [0, 1].

        Examples:
            >>> import torch
            >>> aux = [torch.tensor([2.0, -1.0, -3.0, -2.0])]
            >>> UnitFloor([4], min_units=1, min_fraction=0.0, lift=0.5).apply(aux, fraction=0.5)
            >>> aux[0].tolist()  # half the units: the best closed one reopens
            [2.0, 0.5, -3.0, -2.0]

        """
        if not aux or not (self.enabled or fraction > 0):
            return
        device = aux[0].device
        if self._ranks.device != device:
            tensors = (self._ranks, self._active, self._sizes, self._sizes_f64)
            self._ranks, self._active, self._sizes, self._sizes_f64 = (t.to(device) for t in tensors)
        ranks, active, k = self._ranks, self._active, max(self.counts)
        if fraction > 0:  # computed on the device from a host number: no copy, no sync
            moving = torch.ceil(self._sizes_f64 * fraction).to(self._sizes.dtype)
            ranks = torch.maximum(ranks, torch.minimum(moving, self._sizes) - 1)
            active = active | (moving > 0)
            k = min(max(self.units), max(k, math.ceil(fraction * max(self.units)) + 1))
        with torch.no_grad():
            flat = [a.detach().reshape(-1) for a in aux]
            padded = pad_sequence(flat, batch_first=True, padding_value=-math.inf)
            top = padded.topk(int(k), dim=1).values
            kth = top.gather(1, ranks.clamp_min(0).unsqueeze(1)).squeeze(1)
            threshold = torch.where((kth <= 0) & active, kth, math.inf)  # at the floor or above: none
            every = torch.cat(flat)
            per_entry = threshold.repeat_interleave(self._sizes, output_size=every.numel())
            lifted = torch.where(every >= per_entry, every.clamp_min(self.lift), every)
            torch._foreach_copy_(
                list(aux), [p.view_as(a) for p, a in zip(torch.split(lifted, self.units), aux, strict=True)]
            )
