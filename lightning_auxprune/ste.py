"""Straight-through estimators: the surrogate derivative h'(m) of the hard step h(m) = 1[m > 0].

The forward pass always uses the exact step; these functions only shape the backward pass.

| name | h'(m) for m > 0 | h'(m) for m <= 0 |
|---|---|---|
| identity | 1 | 1 |
| relu | 1 | 0 (a pruned entry can never recover) |
| leaky_relu | 1 | alpha |
| softplus | sigmoid(beta m) | sigmoid(beta m) |

Examples:
    >>> import torch
    >>> ste_grad(torch.tensor([-1.0, 2.0]), "leaky_relu", alpha=0.1)
    tensor([0.1000, 1.0000])

"""

from __future__ import annotations

import torch

from lightning_auxprune.options import SteName, check_choice


def hard_step(scores: torch.Tensor) -> torch.Tensor:
    """Return the exact 0/1 gate ``h(m) = 1[m > 0]`` in ``scores``' dtype.

    Examples:
        >>> hard_step(torch.tensor([-0.5, 0.0, 0.5]))
        tensor([0., 0., 1.])

    """
    return (scores > 0).to(scores.dtype)


def ste_grad(scores: torch.Tensor, ste: SteName, alpha: float = 0.1, beta: float = 5.0) -> torch.Tensor:
    """Surrogate derivative h'(m) of the hard step, elementwise.

    Args:
        scores: The auxiliary parameters m.
        ste: ``"identity"``, ``"relu"``, ``"leaky_relu"`` or ``"softplus"``.
        alpha: Slope for m <= 0 of ``leaky_relu``.
        beta: Sharpness of ``softplus``; its derivative is sigmoid(beta * m).

    Returns:
        A tensor shaped like ``scores``.

    Examples:
        >>> ste_grad(torch.tensor([-1.0, 1.0]), "relu")
        tensor([0., 1.])

    """
    if ste == "identity":
        return torch.ones_like(scores)
    if ste == "relu":
        return hard_step(scores)
    if ste == "leaky_relu":
        return torch.where(scores > 0, 1.0, alpha).to(scores.dtype)
    if ste == "softplus":
        return torch.sigmoid(beta * scores)
    check_choice("ste", ste, SteName)
    raise AssertionError("unreachable")
