"""``torch.nn.utils.parametrize`` modules that hold the auxiliary parameters M of one layer.

[`AuxMask`][lightning_auxprune.parametrization.AuxMask] is registered on a layer's ``weight``: it owns the trainable
``aux`` parameter
(M) and turns the stored weight W into ``W * h(M)``. For neuron granularity
[`BiasGate`][lightning_auxprune.parametrization.BiasGate]
gates the layer's bias with the same M, so a pruned unit outputs exactly zero.

Examples:
    >>> import torch
    >>> from torch.nn.utils import parametrize
    >>> layer = torch.nn.Linear(3, 2)
    >>> parametrize.register_parametrization(layer, "weight", AuxMask(layer.weight, MaskOptions()))
    ParametrizedLinear(...)
    >>> layer.parametrizations.weight[0].aux.shape
    torch.Size([2, 3])

"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from lightning_auxprune.attention import head_rows
from lightning_auxprune.masked_weight import expand_gate, masked_weight
from lightning_auxprune.options import MaskOptions
from lightning_auxprune.ste import hard_step

MASK_DTYPE = torch.float32


def initial_scores(weight: torch.Tensor, options: MaskOptions, heads: int | None = None) -> torch.Tensor:
    """Initial M for ``weight``: positive everywhere, constant or proportional to magnitude.

    With ``heads``, one m per attention head of a packed ``in_proj_weight``.

    Examples:
        >>> initial_scores(torch.tensor([[3.0, -1.0]]), MaskOptions(init="magnitude")).tolist()
        [[1.5, 0.5]]

    """
    shape = weight.shape if options.granularity == "weight" else weight.shape[:1] if heads is None else (heads,)
    if options.init == "constant":
        return torch.full(shape, options.init_scale, dtype=MASK_DTYPE, device=weight.device)
    magnitude = weight.detach().abs().to(MASK_DTYPE)
    if options.granularity == "neuron" and heads is not None:  # [3, heads, head_dim, E] -> per head
        magnitude = magnitude.reshape(3, heads, -1).transpose(0, 1).reshape(heads, -1).mean(dim=1)
    elif options.granularity == "neuron":
        magnitude = magnitude.reshape(weight.shape[0], -1).mean(dim=1)
    relative = magnitude / magnitude.mean().clamp_min(torch.finfo(MASK_DTYPE).tiny)
    return options.init_scale * relative.clamp_min(1e-3)


class AuxMask(nn.Module):
    """Parametrization ``W -> W * h(M)`` owning the auxiliary parameter ``aux`` (M).

    Args:
        weight: The weight to be masked; fixes M's shape, dtype, device and (optionally) init.
        options: Granularity, STE, gradient rules and init.
        shared: Another layer's neuron mask whose M this one uses too (coupled layers: their
            units open and close together).
        heads: Neuron granularity on an attention block's packed ``in_proj_weight``: one m per
            head (see [`lightning_auxprune.attention`][lightning_auxprune.attention]).

    Examples:
        >>> mask = AuxMask(torch.ones(2, 3), MaskOptions(granularity="neuron"))
        >>> mask.aux.shape, mask.density()
        (torch.Size([2]), 1.0)

    """

    def __init__(
        self, weight: torch.Tensor, options: MaskOptions, shared: AuxMask | None = None, heads: int | None = None
    ) -> None:
        super().__init__()
        self.options = options
        self.weight_shape = tuple(weight.shape)
        self.param_order: list[str] = ["weight", "bias"]
        if heads is not None and (options.granularity != "neuron" or weight.shape[0] % (3 * heads)):
            raise ValueError(
                f"Head masks need neuron granularity and a packed [3 * E, E] weight, not {self.weight_shape}."
            )
        self.heads = heads
        self.head_dim = weight.shape[0] // (3 * heads) if heads else 0
        if shared is not None and (options.granularity != "neuron" or shared.aux.shape != weight.shape[:1]):
            raise ValueError(
                f"Only neuron masks of the same number of units can be shared: {tuple(shared.aux.shape)} "
                f"units for a weight of shape {tuple(weight.shape)} ({options.granularity} granularity)."
            )
        self.aux: nn.Parameter = (
            shared.aux if shared is not None else nn.Parameter(initial_scores(weight, options, heads))
        )

    def rows(self, per_entry: torch.Tensor) -> torch.Tensor:
        """Per-entry values (M, or a gate) laid out like the weight's rows: the identity except for head masks."""
        return head_rows(per_entry, self.head_dim) if self.heads else per_entry

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        """Return ``weight * h(aux)`` (gradients per the configured rules)."""
        return masked_weight(weight, self.rows(self.aux), self.options)

    def _apply(self, fn: Any, recurse: bool = True) -> AuxMask:
        """Move M like any parameter, but keep it float32 when the model is cast to a lower precision.

        ``model.to(torch.bfloat16)`` (what ``precision="bf16-true"`` does) would otherwise round M
        to 8 bits of mantissa, and small mask steps would vanish.
        """
        super()._apply(fn, recurse)  # type: ignore[no-untyped-call]
        if self.aux.is_floating_point() and self.aux.dtype != MASK_DTYPE:
            self.aux.data = self.aux.data.to(MASK_DTYPE)
        return self

    def gate(self) -> torch.Tensor:
        """The current hard 0/1 mask h(M), M-shaped (``[C_out]`` for neuron granularity)."""
        return hard_step(self.aux.detach())

    def weight_gate(self, weight: torch.Tensor) -> torch.Tensor:
        """The current hard mask broadcast to ``weight``'s shape."""
        return expand_gate(self.rows(self.aux.detach()), weight).expand_as(weight)

    def density(self) -> float:
        """Fraction of open weights (equal to the fraction of open units for neuron masks)."""
        return float(self.gate().mean())

    def fan_in(self) -> int:
        """Weights per mask entry: 1 for weight granularity, the unit's fan-in for neuron."""
        if self.aux.dim() == len(self.weight_shape):
            return 1
        return int(math.prod(self.weight_shape[1:])) * (3 * self.head_dim if self.heads else 1)

    def extra_repr(self) -> str:
        return f"granularity={self.options.granularity}, ste={self.options.ste}, rule={self.options.rule}"


class BiasGate(nn.Module):
    """Parametrization ``b -> b * h(M)`` reusing a neuron-granularity ``AuxMask``'s M.

    The M parameter is referenced, not registered, so it appears once in ``parameters()`` and
    in the state dict.

    Examples:
        >>> owner = AuxMask(torch.ones(2, 3), MaskOptions(granularity="neuron"))
        >>> BiasGate(owner)(torch.ones(2)).tolist()
        [1.0, 1.0]

    """

    def __init__(self, owner: AuxMask) -> None:
        super().__init__()
        if owner.options.granularity != "neuron":
            raise ValueError("BiasGate needs a neuron-granularity AuxMask (weight masks do not cover the bias).")
        object.__setattr__(self, "owner", owner)
        self.owner: AuxMask

    def forward(self, bias: torch.Tensor) -> torch.Tensor:
        """Return ``bias * h(M)``; the bias gradient follows ``weight_grad``, M gets none from it."""
        return masked_weight(bias, self.owner.rows(self.owner.aux), self.owner.options, feeds_mask=False)
