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

:func:`aux_sgd_step` applies that update and clears the gradients, so the user's optimizer skips
the masks (optimizers skip parameters whose ``grad`` is ``None``).

Example:
    >>> import torch
    >>> m = torch.nn.Parameter(torch.ones(3))
    >>> m.grad = torch.tensor([0.5, -1.0, 0.0])
    >>> aux_sgd_step([m], lr=0.1)
    True
    >>> m.detach().tolist(), m.grad
    ([0.949999988079071, 1.100000023841858, 1.0], None)

"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

AuxOptimizer = Literal["shared", "sgd", "normalized_sgd"]
RMS_EPS = 1e-12


def aux_sgd_step(params: Sequence[nn.Parameter], lr: float, normalize: bool = False) -> bool:
    """``p -= lr * p.grad`` for every parameter with a gradient, then drop the gradients.

    Nothing moves when any gradient is not finite (what a mixed-precision grad scaler does with
    the weights' step too); the gradients are dropped either way.

    Args:
        params: The mask parameters, one tensor per layer.
        lr: Learning rate, > 0.
        normalize: Divide each tensor's gradient by its root mean square (plus 1e-12) first:
            ``p -= lr * g / rms(g)``.

    Returns:
        Whether the step was applied.

    Example:
        >>> m = torch.nn.Parameter(torch.zeros(2))
        >>> m.grad = torch.tensor([3.0, -4.0])  # rms 3.536
        >>> aux_sgd_step([m], lr=1.0, normalize=True), [round(v, 3) for v in m.detach().tolist()]
        (True, [-0.849, 1.131])

    """
    grads = [p.grad for p in params if p.grad is not None]
    finite = bool(torch.stack([g.isfinite().all() for g in grads]).all()) if grads else False
    with torch.no_grad():
        for p in params:
            if p.grad is not None and finite:
                step = p.grad / (p.grad.square().mean().sqrt() + RMS_EPS) if normalize else p.grad
                p.sub_(step, alpha=lr)
            p.grad = None
    return finite
