"""Keeping pruned weights where they were: weight decay and momentum cannot move them.

With ``weight_grad="masked"`` a pruned weight gets no gradient, but the optimizer still moves it
(weight decay, momentum, Adam's moments from when it was open). So that a recovered weight comes
back with the value it had when it was pruned, its value is *parked* when its mask closes and
written back after every optimizer step:

* ``parked = W - W * h(M)``: the values of closed weights, zero where open (set once);
* after each step, ``W = W * h_step + parked``, with ``h_step`` the gate that was in force
  during the step;
* then ``parked -= W * (h_new - h_step)``: a weight whose mask just closed is parked, one that
  just reopened is released (``W - W`` is exactly 0), the others keep their value.

All are in-place multi-tensor kernels over all layers: one persistent buffer the size of the
masked weights, no per-step allocation, no copy of the weights, no host synchronisation.

Examples:
    >>> import torch
    >>> w = torch.tensor([1.0, 2.0, 3.0])
    >>> gate = torch.tensor([1.0, 0.0, 1.0])
    >>> keeper = PrunedWeights([w], [0])
    >>> keeper.park([gate])
    >>> _ = w.sub_(0.5)          # an optimizer step with weight decay moves every weight
    >>> keeper.restore([gate])   # ... the pruned one is put back
    >>> w.tolist()
    [0.5, 2.0, 2.5]
    >>> keeper.update([torch.tensor([-1.0, 1.0, 0.0])])  # h: 1 -> 0, 0 -> 1, 1 -> 1
    >>> keeper.parked[0].tolist()  # the first weight is parked now, the second released
    [0.5, 0.0, 0.0]

"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from lightning_auxprune.masked_weight import unit_view


class PrunedWeights:
    """Parks and restores the closed entries of a list of weight tensors.

    Args:
        tensors: The stored weights W (the parametrizations' ``original``; biases of neuron
            masks too).
        layers: For each tensor, the index of its layer's gate in the gate lists passed to
            [`park`][lightning_auxprune.restore.PrunedWeights.park] and
            [`restore`][lightning_auxprune.restore.PrunedWeights.restore] (a neuron mask gates a weight and a bias).
        rows: For each tensor, how to lay its layer's gate out over its rows (head masks of
            attention), or ``None`` for the identity.

    """

    def __init__(
        self,
        tensors: Sequence[torch.Tensor],
        layers: Sequence[int],
        rows: Sequence[Callable[[torch.Tensor], torch.Tensor] | None] | None = None,
    ) -> None:
        if len(tensors) != len(layers):
            raise ValueError(f"{len(tensors)} tensors but {len(layers)} layer indices.")
        self.tensors = list(tensors)
        self.layers = list(layers)
        self.rows = list(rows) if rows is not None else [None] * len(self.tensors)
        with torch.no_grad():
            self.parked = [torch.empty_like(t) for t in self.tensors]

    def _views(self, gates: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each tensor's gate, shaped to broadcast against it (``[C_out]`` gates of neuron masks)."""
        views = []
        for tensor, layer, rows in zip(self.tensors, self.layers, self.rows, strict=True):
            gate = gates[layer] if rows is None else rows(gates[layer])
            views.append(gate if gate.shape == tensor.shape else unit_view(gate, tensor))
        return views

    def park(self, gates: Sequence[torch.Tensor]) -> None:
        """``parked = W - W * h``: remember the values of the weights closed now (``gates``: h(M) per layer)."""
        if not self.tensors:
            return
        with torch.no_grad():
            torch._foreach_copy_(self.parked, self.tensors)
            torch._foreach_addcmul_(self.parked, self.tensors, self._views(gates), value=-1)

    def update(self, changes: Sequence[torch.Tensor]) -> None:
        """``parked -= W * (h_new - h_step)`` after :meth:`restore`, with ``changes`` = h_new - h_step per layer.

        Right after the restore a closed weight equals its parked value, so a reopened one's
        ``parked - W`` is exactly 0 and a newly closed one's ``0 + W`` is its value.
        """
        if not self.tensors:
            return
        with torch.no_grad():
            torch._foreach_addcmul_(self.parked, self.tensors, self._views(changes), value=-1)

    def restore(self, gates: Sequence[torch.Tensor]) -> None:
        """``W = W * h + parked``: undo the optimizer's move of the weights closed during the step.

        Args:
            gates: h(M) per layer as it was during the step (before the masks moved).

        """
        if not self.tensors:
            return
        with torch.no_grad():
            torch._foreach_mul_(self.tensors, self._views(gates))
            torch._foreach_add_(self.tensors, self.parked)
