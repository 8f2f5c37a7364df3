"""The sparsity regularizer ``lambda * R(h(M))`` acting on the auxiliary parameters only.

* ``"count"`` (default): ``R = sum h(m)``, the number of open weights (or units); its gradient
  reaches M through the STE: ``dR/dm = h'(m)``.
* ``"l1"``: ``R = sum |m|``, gradient ``sgn(m)``.

The gradient is added to ``M.grad`` directly (:func:`add_regularizer_grad`), which is what
``backward`` on ``loss + lambda * R`` would produce, without touching the user's loss.

Example:
    >>> import torch
    >>> from lightning_auxprune.parametrization import AuxMask
    >>> from lightning_auxprune.options import MaskOptions
    >>> mask = AuxMask(torch.ones(2, 2), MaskOptions())
    >>> regularizer_value([mask], "count")
    4.0
    >>> add_regularizer_grad([mask], "count", strength=0.5)
    >>> mask.aux.grad
    tensor([[0.5000, 0.5000],
            [0.5000, 0.5000]])

"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from lightning_auxprune.options import RegularizerName, check_choice
from lightning_auxprune.parametrization import AuxMask
from lightning_auxprune.ste import ste_grad


def regularizer_grad(mask: AuxMask, kind: RegularizerName) -> torch.Tensor:
    """``dR/dM`` for one layer's auxiliary parameters.

    Example:
        >>> from lightning_auxprune.options import MaskOptions
        >>> m = AuxMask(torch.ones(3), MaskOptions())
        >>> regularizer_grad(m, "l1").tolist()
        [1.0, 1.0, 1.0]

    """
    aux = mask.aux.detach()
    if kind == "count":
        opts = mask.options
        return ste_grad(aux, opts.ste, opts.alpha, opts.beta)
    if kind == "l1":
        return aux.sign()
    check_choice("regularizer", kind, RegularizerName)
    raise AssertionError("unreachable")


def regularizer_value(masks: Iterable[AuxMask], kind: RegularizerName) -> float:
    """``R`` summed over ``masks`` (for logging).

    Example:
        >>> from lightning_auxprune.options import MaskOptions
        >>> regularizer_value([AuxMask(torch.ones(3), MaskOptions())], "l1")
        3.0

    """
    total = 0.0
    for mask in masks:
        aux = mask.aux.detach()
        total += float(mask.gate().sum() if kind == "count" else aux.abs().sum())
    return total


def add_regularizer_grad(masks: Iterable[AuxMask], kind: RegularizerName, strength: float) -> None:
    """Accumulate ``strength * dR/dM`` into each mask's ``aux.grad`` (creating it if absent).

    Args:
        masks: The layers' auxiliary-mask modules.
        kind: ``"count"`` or ``"l1"``.
        strength: lambda, >= 0. Zero is a no-op.

    Example:
        >>> from lightning_auxprune.options import MaskOptions
        >>> m = AuxMask(torch.ones(2), MaskOptions())
        >>> add_regularizer_grad([m], "count", 0.0); m.aux.grad is None
        True

    """
    if strength == 0.0:
        return
    for mask in masks:
        push = strength * regularizer_grad(mask, kind)
        if mask.aux.grad is None:
            mask.aux.grad = push
        else:
            mask.aux.grad.add_(push)
