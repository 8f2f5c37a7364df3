"""Keeping pruned weights where they were: weight decay and momentum cannot move them.

With ``weight_grad="masked"`` a pruned weight gets no gradient, but the optimizer still moves it
(weight decay, momentum, Adam's moments from when it was open). So that a recovered weight comes
back with the value it had when it was pruned, its value is *parked* when its mask closes and
written back after every optimizer step:

* ``parked = W - W * h(M)``: the values of closed weights, zero where open (after each step);
* after the next step, ``W = W * h_step + parked``, with ``h_step`` the gate that was in force
  during the step.

Both are in-place multi-tensor kernels over all layers: one persistent buffer the size of the
masked weights, no per-step allocation or copy of the weights, no host synchronisation.

Example:
    >>> import torch
    >>> w = torch.tensor([1.0, 2.0, 3.0])
    >>> gate = torch.tensor([1.0, 0.0, 1.0])
    >>> keeper = PrunedWeights([w], [gate])
    >>> keeper.park()
    >>> _ = w.sub_(0.5)          # an optimizer step with weight decay moves every weight
    >>> keeper.restore()         # ... the pruned one is put back
    >>> w.tolist()
    [0.5, 2.0, 2.5]

"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class PrunedWeights:
    """Parks and restores the closed entries of a list of weight tensors.

    Args:
        tensors: The stored weights W (the parametrizations' ``original``; biases of neuron
            masks too).
        gates: For each tensor, a view of its layer's persistent gate buffer that broadcasts
            against it. The gate buffers are updated in place by the caller, so these views
            always show the current h(M).

    """

    def __init__(self, tensors: Sequence[torch.Tensor], gates: Sequence[torch.Tensor]) -> None:
        if len(tensors) != len(gates):
            raise ValueError(f"{len(tensors)} tensors but {len(gates)} gates.")
        self.tensors = list(tensors)
        self.gates = list(gates)
        with torch.no_grad():
            self.parked = [torch.empty_like(t) for t in self.tensors]

    def park(self) -> None:
        """``parked = W - W * h``: remember the values of the weights closed now."""
        if not self.tensors:
            return
        with torch.no_grad():
            torch._foreach_copy_(self.parked, self.tensors)
            torch._foreach_addcmul_(self.parked, self.tensors, self.gates, value=-1)

    def restore(self) -> None:
        """``W = W * h + parked``: undo the optimizer's move of the weights closed during the step.

        Call before the gates are updated to the masks' new values.
        """
        if not self.tensors:
            return
        with torch.no_grad():
            torch._foreach_mul_(self.tensors, self.gates)
            torch._foreach_add_(self.tensors, self.parked)
