"""Plain (optionally per-layer normalised) SGD for the auxiliary masks, whatever trains the weights.

By default M is one more parameter group of the user's optimizer. With an adaptive optimizer
(Adam, AdamW, ...) every mask then moves by about the learning rate per step whatever the size
of its gradient: masks are ranked by the *signal-to-noise ratio* of their gradient, and the
regularizer's push is normalised away. Stepping M with plain SGD instead keeps the method's
update ``M -= lr * (g * sgn(W) * h'(M) + lambda * dR/dM)`` literally: a mask closes when the
accumulated data gradient no longer outweighs the accumulated regularizer.

Plain SGD moves the masks of a layer with large gradients faster than those of a layer with
small ones. ``"normalized_sgd"`` divides each layer's M gradient by its root mean square first, so
every layer's masks move at the same overall rate while the ranking inside a layer (and the
balance of data gradient and regularizer) stays SGD's.

[`aux_sgd_step`][lightning_auxprune.aux_sgd.aux_sgd_step] applies that update for all layers with multi-tensor kernels
(torch's fused
SGD, which skips the step on the device when a gradient is not finite, without a host sync) and
clears the gradients, so the user's optimizer skips the masks (optimizers skip parameters whose
``grad`` is ``None``).

Examples:
    >>> import torch
    >>> m = torch.nn.Parameter(torch.ones(3))
    >>> m.grad = torch.tensor([0.5, -1.0, 0.0])
    >>> bool(aux_sgd_step([m], lr=0.1))
    True
    >>> m.detach().tolist(), m.grad
    ([0.949999988079071, 1.100000023841858, 1.0], None)

"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

AuxOptimizer = Literal["shared", "sgd", "normalized_sgd"]
RMS_EPS = 1e-12


def aux_sgd_step(params: Sequence[nn.Parameter], lr: float, normalize: bool = False) -> torch.Tensor:
    """``p -= lr * p.grad`` for every parameter with a gradient, then drop the gradients.

    Nothing moves when any gradient is not finite (what a mixed-precision grad scaler does with
    the weights' step too); the gradients are dropped either way.

    Args:
        params: The mask parameters, one tensor per layer.
        lr: Learning rate, > 0.
        normalize: Divide each tensor's gradient by its root mean square (plus 1e-12) first:
            ``p -= lr * g / rms(g)``.

    Returns:
        A 0-d bool tensor on the parameters' device: whether the step was applied. Reading it
        synchronises with the device; the step itself does not.

    Examples:
        >>> m = torch.nn.Parameter(torch.zeros(2))
        >>> m.grad = torch.tensor([3.0, -4.0])  # rms 3.536
        >>> _ = aux_sgd_step([m], lr=1.0, normalize=True)
        >>> [round(v, 3) for v in m.detach().tolist()]
        [-0.849, 1.131]

    """
    stepped: list[torch.Tensor] = [p for p in params if p.grad is not None]
    if not stepped:
        for p in params:
            p.grad = None
        return torch.zeros((), dtype=torch.bool)
    grads = [p.grad for p in stepped if p.grad is not None]
    with torch.no_grad():
        found_inf = torch.zeros((), dtype=torch.float32, device=grads[0].device)
        torch._amp_foreach_non_finite_check_and_unscale_(grads, found_inf, torch.ones_like(found_inf))
        if normalize:
            norms = torch._foreach_norm(grads)
            scales = torch._foreach_div(norms, [math.sqrt(g.numel()) for g in grads])
            torch._foreach_add_(scales, RMS_EPS)
            torch._foreach_div_(grads, scales)
        torch._fused_sgd_(
            stepped,
            grads,
            [],
            weight_decay=0.0,
            momentum=0.0,
            lr=lr,
            dampening=0.0,
            nesterov=False,
            maximize=False,
            is_first_step=False,
            grad_scale=None,
            found_inf=found_inf,
        )
    for p in params:
        p.grad = None
    return found_inf == 0
