"""Each layer's share of a target when every layer is cut alike: the reference for ``min_uniform_share``.

Learned neuron masks decide two things at once: how the budget is shared between layers, and which
units each layer keeps. The first can tip either way on a small difference: two runs of one seed
that differ only in the order of floating-point sums (as nondeterministic GPU kernels give) ended
with 18 and 32 of the 64 channels of one layer of the VGG-like CNN. A uniform cut (every layer
keeps the same fraction ``u`` of its units, as Torch-Pruning's per-layer ratio does) is a
reference that rounding cannot move: [`UniformShare`][lightning_auxprune.uniform_share.UniformShare]
finds the ``u`` whose cut keeps the target at the current step, so that
[`UnitFloor`][lightning_auxprune.floor.UnitFloor] can keep ``min_uniform_share * u`` of each
layer's units open while the masks choose the rest.

The kept quantity of uniform cuts is evaluated once, for a table of fractions, in one batched call;
each step then looks the fraction up in that table on the host, without touching the device.

Examples:
    >>> import torch
    >>> # two layers of 4 and 2 units; the kept quantity is the open units' share
    >>> share = UniformShare([4, 2], lambda gates: gates.sum(dim=1) / 6, steps=4)
    >>> share.fraction_for(1.0), share.fraction_for(0.5), share.fraction_for(0.0)
    (1.0, 0.5, 0.0)

"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

import torch


class UniformShare:
    """The fraction of units every layer keeps in the uniform cut that keeps a given quantity.

    Args:
        units: Units (mask entries) per layer.
        kept: The kept quantity (a fraction of the dense one) of each row of a ``[J, entries]``
            0/1 gate matrix, as a ``[J]`` tensor; monotone in the open units.
        steps: The table's resolution: fractions ``0, 1/steps, ..., 1``.
        device: Where the gate matrix is built for ``kept``.

    """

    def __init__(
        self,
        units: Sequence[int],
        kept: Callable[[torch.Tensor], torch.Tensor],
        steps: int = 128,
        device: torch.device | str = "cpu",
    ) -> None:
        self.fractions = [j / steps for j in range(steps + 1)]
        rows = [torch.cat([torch.arange(n) < math.ceil(u * n) for n in units]) for u in self.fractions]
        gates = torch.stack(rows).to(device=device, dtype=torch.float32)
        values = kept(gates).tolist()  # one read, when the table is built
        self.kept = [max(values[: j + 1]) for j in range(len(values))]  # non-decreasing, whatever the rounding

    def fraction_for(self, quantity: float) -> float:
        """The largest fraction ``u`` of the table whose uniform cut keeps at most ``quantity``, in [0, 1].

        Rounded down to the table, so that a floor of ``ceil(u * units)`` per layer never keeps more
        than ``quantity`` by itself, even where a layer of few units (4 attention heads) makes the
        kept quantity jump between neighbouring fractions.

        Examples:
            >>> share = UniformShare([10], lambda gates: (gates.sum(dim=1) / 10) ** 2, steps=10)
            >>> share.fraction_for(0.25), share.fraction_for(0.3)  # a layer feeding a layer: FLOPs ~ u squared
            (0.5, 0.5)

        """
        j = bisect.bisect_right(self.kept, quantity + 1e-12)
        return self.fractions[max(j - 1, 0)]
