"""The sparsity regularizer ``lambda * R(h(M))`` acting on the auxiliary parameters only.

* ``"count"`` (default): ``R = sum h(m)``, the number of open weights (or units); its gradient
  reaches M through the STE: ``dR/dm = h'(m)``.
* ``"l1"``: ``R = sum |m|``, gradient ``sgn(m)``.

The gradient is added to ``M.grad`` directly
([`add_regularizer_grad`][lightning_auxprune.regularizer.add_regularizer_grad]), which is what
``backward`` on ``loss + lambda * R`` would produce, without touching the user's loss, and only
to masks that received a data gradient in this step: a frozen layer (``requires_grad=False``,
e.g. by ``BackboneFinetuning``) or a skipped batch (``training_step`` returned ``None``) is not
pruned by the regularizer alone. It is
computed for all layers at once with multi-tensor kernels, and ``strength`` may be a device
tensor (the lambda controller's output), so the step never waits for the host.

Examples:
    >>> import torch
    >>> from lightning_auxprune.parametrization import AuxMask
    >>> from lightning_auxprune.options import MaskOptions
    >>> mask = AuxMask(torch.ones(2, 2), MaskOptions())
    >>> regularizer_value([mask], "count")
    4.0
    >>> mask.aux.grad = torch.zeros(2, 2)  # what backward left
    >>> add_regularizer_grad([mask], "count", strength=0.5)
    >>> mask.aux.grad
    tensor([[0.5000, 0.5000],
            [0.5000, 0.5000]])

"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch

from lightning_auxprune.mask_set import hard_gates
from lightning_auxprune.options import MaskOptions, RegularizerName, check_choice
from lightning_auxprune.parametrization import AuxMask


def shared_options(masks: Sequence[AuxMask]) -> MaskOptions:
    """The options all ``masks`` share (multi-tensor kernels need one STE for all layers).

    Raises:
        ValueError: If the masks were made with different options.

    """
    options = {m.options for m in masks}
    if len(options) != 1:
        raise ValueError(f"Masks with different options {sorted(map(str, options))}: patch them with one MaskOptions.")
    return options.pop()


def regularizer_grads(
    masks: Sequence[AuxMask], kind: RegularizerName, gates: Sequence[torch.Tensor] | None = None
) -> list[torch.Tensor]:
    """``dR/dM`` for every layer's auxiliary parameters, as new tensors.

    Args:
        masks: The layers' auxiliary-mask modules (one set of options).
        kind: ``"count"`` or ``"l1"``.
        gates: h(M) per layer, if already computed (saves two kernels).

    Examples:
        >>> from lightning_auxprune.options import MaskOptions
        >>> m = AuxMask(torch.ones(3), MaskOptions())
        >>> regularizer_grads([m], "l1")[0].tolist()
        [1.0, 1.0, 1.0]

    """
    check_choice("regularizer", kind, RegularizerName)
    if not masks:
        return []
    aux: list[torch.Tensor] = [m.aux for m in masks]
    with torch.no_grad():
        if kind == "l1":
            return list(torch._foreach_sign(aux))
        opts = shared_options(masks)
        if opts.ste == "softplus":
            push = torch._foreach_mul(aux, opts.beta)
            torch._foreach_sigmoid_(push)
            return list(push)
        if opts.ste == "identity":
            return [torch.ones_like(a) for a in aux]
        if gates is None:
            gates = hard_gates(aux)
        if opts.ste == "relu":
            return [g.clone() for g in gates]
        push = torch._foreach_mul(list(gates), 1.0 - opts.alpha)  # leaky_relu: alpha + (1 - alpha) * h
        torch._foreach_add_(push, opts.alpha)
        return list(push)


def regularizer_value(masks: Sequence[AuxMask], kind: RegularizerName) -> float:
    """``R`` summed over ``masks`` (for logging; reads the device once).

    Examples:
        >>> from lightning_auxprune.options import MaskOptions
        >>> regularizer_value([AuxMask(torch.ones(3), MaskOptions())], "l1")
        3.0

    """
    return float(regularizer_total(masks, kind))


def regularizer_total(masks: Sequence[AuxMask], kind: RegularizerName) -> torch.Tensor:
    """``R`` summed over ``masks`` as a float64 device tensor (no host sync)."""
    check_choice("regularizer", kind, RegularizerName)
    if not masks:
        return torch.zeros((), dtype=torch.float64)
    aux: list[torch.Tensor] = [m.aux for m in masks]
    with torch.no_grad():
        values = hard_gates(aux) if kind == "count" else aux
        return torch.stack(torch._foreach_norm(values, 1, dtype=torch.float64)).sum()


def add_regularizer_grad(
    masks: Sequence[AuxMask],
    kind: RegularizerName,
    strength: float | torch.Tensor,
    gates: Sequence[torch.Tensor] | None = None,
    costs: Sequence[float] | None = None,
) -> None:
    """Accumulate ``strength * cost * dR/dM`` into the ``aux.grad`` of each mask that has one.

    A mask without a gradient (its layer was frozen or unused, or the batch was skipped) is left
    alone: pushed by the regularizer only, every such mask would close at the same step.

    Args:
        masks: The layers' auxiliary-mask modules.
        kind: ``"count"`` or ``"l1"``.
        strength: lambda, >= 0: a number (zero is a no-op) or a 0-d tensor on the masks' device.
        gates: h(M) per layer (aligned with ``masks``), if already computed.
        costs: A weight per layer for its entries' push (the cost-aware push of a FLOPs target:
            what closing one entry saves, relative to the average entry); ``None``: 1 everywhere.

    Examples:
        >>> from lightning_auxprune.options import MaskOptions
        >>> m = AuxMask(torch.ones(2), MaskOptions())
        >>> add_regularizer_grad([m], "count", 1.0); m.aux.grad is None  # no data gradient: no push
        True

    """
    if not isinstance(strength, torch.Tensor) and strength == 0.0:
        return
    chosen = [i for i, m in enumerate(masks) if m.aux.grad is not None]
    if not chosen:
        return
    if len(chosen) < len(masks):
        masks = [masks[i] for i in chosen]
        gates = [gates[i] for i in chosen] if gates is not None else None
        costs = [costs[i] for i in chosen] if costs is not None else None
    push = regularizer_grads(masks, kind, gates)
    with torch.no_grad():
        if costs is not None:
            torch._foreach_mul_(push, list(costs))
        torch._foreach_mul_(push, strength)
        torch._foreach_add_([cast(torch.Tensor, m.aux.grad) for m in masks], push)
