"""The masked weight ``T = W * h(M)`` with AutoPrune's separate gradient rules for W and M.

Forward: the exact hard step, so the mask used in training is the mask deployed.
Backward, with ``g = dL/dT``:

* W: ``g * h(M)`` (``weight_grad="masked"``) or ``g`` (``"unmasked"``);
* M: ``g * sgn(W) * h'(M)`` (``rule="sign"``) or ``g * W * h'(M)`` (``rule="chain"``); for
  neuron granularity the product ``g * sgn(W)`` is summed over each unit's fan-in first.

Both passes are a handful of fused elementwise kernels per layer (``torch.where`` on ``M > 0``,
no dtype casts of the gate): M stays float32 while W may be bfloat16 or float16, and M's gradient
is accumulated in float32.

Examples:
    >>> import torch
    >>> w = torch.tensor([[1.0, -2.0]], requires_grad=True)
    >>> m = torch.tensor([[0.5, -0.5]], requires_grad=True)
    >>> t = masked_weight(w, m, MaskOptions())
    >>> t
    tensor([[1., 0.]], grad_fn=<MaskedWeightBackward>)
    >>> t.sum().backward()
    >>> w.grad, m.grad
    (tensor([[1., 0.]]), tensor([[ 1.0000, -0.1000]]))

"""

from __future__ import annotations

from typing import Any

import torch

from lightning_auxprune.options import MaskOptions
from lightning_auxprune.ste import hard_step, ste_grad


def unit_view(per_unit: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a per-output-unit tensor ``[C_out]`` so it broadcasts over ``like``'s fan-in.

    Examples:
        >>> unit_view(torch.ones(3), torch.zeros(3, 4, 5, 5)).shape
        torch.Size([3, 1, 1, 1])

    """
    return per_unit.reshape(per_unit.shape[0], *([1] * (like.dim() - 1)))


def open_entries(scores: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Boolean ``M > 0`` shaped to broadcast against ``weight`` (weight or neuron masks).

    Examples:
        >>> open_entries(torch.tensor([1.0, -1.0]), torch.zeros(2, 3)).tolist()
        [[True], [False]]

    """
    opened = scores > 0
    return opened if scores.shape == weight.shape else unit_view(opened, weight)


def expand_gate(scores: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Hard 0/1 gate ``h(M)`` in ``weight``'s dtype, shaped to broadcast against ``weight``.

    Examples:
        >>> expand_gate(torch.tensor([1.0, -1.0]), torch.zeros(2, 3)).tolist()
        [[1.0], [0.0]]

    """
    gate = hard_step(scores).to(weight.dtype)
    return gate if scores.shape == weight.shape else unit_view(gate, weight)


class MaskedWeight(torch.autograd.Function):
    """Autograd function computing ``W * h(M)`` with the configured gradient rules."""

    @staticmethod
    def forward(
        ctx: Any, weight: torch.Tensor, scores: torch.Tensor, options: MaskOptions, feeds_mask: bool
    ) -> torch.Tensor:
        ctx.save_for_backward(weight, scores)
        ctx.options = options
        ctx.feeds_mask = feeds_mask
        return torch.where(open_entries(scores, weight), weight, 0.0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        weight, scores = ctx.saved_tensors
        options: MaskOptions = ctx.options
        opened = scores > 0
        grad_weight = grad
        if options.weight_grad == "masked":
            grad_weight = torch.where(opened if scores.shape == weight.shape else unit_view(opened, weight), grad, 0.0)
        grad_scores = None
        if ctx.feeds_mask and ctx.needs_input_grad[1]:
            direction = weight.sign() if options.rule == "sign" else weight
            correlation = grad.to(scores.dtype) * direction.to(scores.dtype)
            if scores.shape != weight.shape:
                correlation = correlation.sum(dim=tuple(range(1, weight.dim())))
            if options.ste == "leaky_relu":  # h'(m) = 1 or alpha: one pass, reusing M > 0
                grad_scores = torch.where(opened, correlation, correlation * options.alpha)
            else:
                grad_scores = correlation * ste_grad(scores, options.ste, options.alpha, options.beta)
        return grad_weight, grad_scores, None, None


def masked_weight(
    weight: torch.Tensor, scores: torch.Tensor, options: MaskOptions, feeds_mask: bool = True
) -> torch.Tensor:
    """Return ``weight * h(scores)`` whose backward follows ``options``' rules.

    Args:
        weight: The layer's weight W (or its bias, for neuron granularity).
        scores: The auxiliary parameters M: W's shape, or ``[C_out]`` for neuron granularity.
        options: Gradient rules and STE.
        feeds_mask: Whether this tensor's gradient drives M. The bias of a neuron-pruned layer is
            gated by the same M but does not drive it (M's rule sums over the weight fan-in only).

    Examples:
        >>> masked_weight(torch.ones(2, 2), torch.tensor([1.0, -1.0]), MaskOptions()).tolist()
        [[1.0, 1.0], [0.0, 0.0]]

    """
    result: torch.Tensor = MaskedWeight.apply(weight, scores, options, feeds_mask)  # type: ignore[no-untyped-call,unused-ignore]
    return result
