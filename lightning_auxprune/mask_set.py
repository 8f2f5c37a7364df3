"""All auxiliary masks of a model as aligned lists, for multi-tensor (``torch._foreach_*``) ops.

A training step touches every mask several times (regularizer, aux step, restore, statistics,
events). Doing that with one Python loop of small kernels per layer makes the step host-bound on
a GPU. [`MaskSet`][lightning_auxprune.mask_set.MaskSet] keeps the masks' tensors in lists and computes what the step
needs with
one multi-tensor kernel per operation, for all layers at once, without reading anything back to
the host:

* [`MaskSet.hard_gates`][lightning_auxprune.mask_set.MaskSet.hard_gates] is ``h(M) = 1[M > 0]`` for every layer
  (``sign`` clamped at 0);
* [`MaskSet.open_entries`][lightning_auxprune.mask_set.MaskSet.open_entries] counts the open entries per layer (an L1
  norm of the gates) into
  one device tensor.

Examples:
    >>> import torch
    >>> from lightning_auxprune.options import MaskOptions
    >>> from lightning_auxprune.parametrization import AuxMask
    >>> masks = MaskSet({"a": AuxMask(torch.ones(2, 3), MaskOptions()),
    ...                  "b": AuxMask(torch.ones(4, 5), MaskOptions(granularity="neuron"))})
    >>> with torch.no_grad():
    ...     masks.aux[0][0, 0] = -1.0
    >>> masks.open_entries(masks.hard_gates()).tolist()
    [5.0, 4.0]
    >>> masks.entries.tolist(), masks.fan_in.tolist()
    ([6.0, 4.0], [1.0, 5.0])

"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from lightning_auxprune.parametrization import AuxMask

COUNT_DTYPE = torch.float64
"""Per-layer counts are float64 on the device: exact integers up to 2**53."""
EXACT_IN_FLOAT32 = 2**24
"""Gates are summed in float32 (no conversion pass) when every layer has at most this many entries."""


def hard_gates(scores: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``h(m) = 1[m > 0]`` for a list of tensors: ``sign(m)`` clamped at 0, two multi-tensor kernels.

    Like the forward pass (``m > 0``), a NaN reads as 0:
    [`MaskSet.nonfinite_layers`][lightning_auxprune.mask_set.MaskSet.nonfinite_layers] finds them.

    Examples:
        >>> hard_gates([torch.tensor([-1.0, 0.0, 1e-30, 3.0])])
        [tensor([0., 0., 1., 1.])]

    """
    if not scores:
        return []
    with torch.no_grad():
        gates = torch._foreach_sign(list(scores))
        torch._foreach_clamp_min_(gates, 0.0)
    return list(gates)


def count_open(gates: Sequence[torch.Tensor], dtype: torch.dtype | None = None) -> torch.Tensor:
    """Sum of each 0/1 tensor, ``[L]`` float64 on their device, one multi-tensor kernel (no host sync).

    Args:
        gates: 0/1 tensors (or any, for sums of absolute values).
        dtype: Accumulate in this dtype (float64 for layers with more than 2**24 entries, where a
            float32 sum stops being exact); ``None``: the gates' own dtype, no conversion pass.

    Examples:
        >>> count_open([torch.ones(3), torch.zeros(2)])
        tensor([3., 0.], dtype=torch.float64)

    """
    if not gates:
        return torch.zeros(0, dtype=COUNT_DTYPE)
    norms = torch._foreach_norm(list(gates), 1) if dtype is None else torch._foreach_norm(list(gates), 1, dtype=dtype)
    return torch.stack(norms).to(COUNT_DTYPE)


class MaskSet:
    """The masks of a model in ``named_modules`` order, with per-mask sizes as device tensors.

    Coupled layers share one M (see [`patch_model`][lightning_auxprune.patch.patch_model]'s
    ``groups``); the set holds each M once, and every per-mask figure covers all its layers.

    Args:
        masks: ``{layer_name: AuxMask}``, as returned by [`patch_model`][lightning_auxprune.patch.patch_model].

    Attributes:
        names: One name per M: its first layer's.
        layers: The layers of each M (one, or a coupled group).
        mask_of: Each layer's index in ``names``.
        masks: One [`AuxMask`][lightning_auxprune.parametrization.AuxMask] per M (its first layer's).
        aux: The M parameters (float32).
        entries: Entries per M (weights, or units for neuron masks), float64.
        fan_in: Weights per entry (1, or the units' fan-in summed over the M's layers), float64.
        weights: Weights per M, float64.
        total_weights: Weights in all masked layers (a Python int).
        entry_counts: ``entries`` as Python ints (read without touching the device).
        fan_ins: ``fan_in`` as Python ints.

    """

    def __init__(self, masks: Mapping[str, AuxMask]) -> None:
        index: dict[int, int] = {}
        self.names: list[str] = []
        self.layers: list[list[str]] = []
        self.masks: list[AuxMask] = []
        self.mask_of: dict[str, int] = {}
        self.fan_ins: list[int] = []
        weights: list[int] = []
        for name, mask in masks.items():
            key = id(mask.aux)
            if key not in index:
                index[key] = len(self.masks)
                self.names.append(name)
                self.layers.append([])
                self.masks.append(mask)
                self.fan_ins.append(0)
                weights.append(0)
            k = self.mask_of[name] = index[key]
            self.layers[k].append(name)
            self.fan_ins[k] += mask.fan_in()
            weights[k] += math.prod(mask.weight_shape)
        self.aux: list[nn.Parameter] = [m.aux for m in self.masks]
        self.entry_counts = [m.aux.numel() for m in self.masks]
        self.entries = torch.tensor(self.entry_counts, dtype=COUNT_DTYPE)
        self.fan_in = torch.tensor(self.fan_ins, dtype=COUNT_DTYPE)
        self.weights = torch.tensor(weights, dtype=COUNT_DTYPE)
        self.total_weights = sum(weights)
        self._sum_dtype = COUNT_DTYPE if any(n > EXACT_IN_FLOAT32 for n in self.entry_counts) else None

    def __len__(self) -> int:
        return len(self.masks)

    @property
    def device(self) -> torch.device:
        """Where the masks live (that of the first mask)."""
        return self.aux[0].device if self.aux else torch.device("cpu")

    def to(self, device: torch.device) -> None:
        """Move the per-layer size tensors to ``device`` (the masks themselves move with the model)."""
        self.entries = self.entries.to(device)
        self.fan_in = self.fan_in.to(device)
        self.weights = self.weights.to(device)

    def hard_gates(self) -> list[torch.Tensor]:
        """``h(M) = 1[M > 0]`` per layer, float32 (see [`hard_gates`][lightning_auxprune.mask_set.hard_gates])."""
        return hard_gates(self.aux)

    def nonfinite_layers(self) -> torch.Tensor:
        """1.0 for each layer whose M holds a NaN or an infinity, else 0.0 (``[L]`` on the device; one pass)."""
        if not self.aux:
            return torch.zeros(0, dtype=COUNT_DTYPE)
        with torch.no_grad():
            peaks = torch.stack(torch._foreach_norm(list[torch.Tensor](self.aux), float("inf")))
        return (~torch.isfinite(peaks)).to(COUNT_DTYPE)

    def open_entries(self, gates: list[torch.Tensor]) -> torch.Tensor:
        """Open entries per layer, ``[L]`` float64 on the masks' device (no host sync)."""
        return count_open(gates, self._sum_dtype)

    def open_weights(self, open_entries: torch.Tensor) -> torch.Tensor:
        """Open weights per layer from open entries (a closed unit closes its whole fan-in)."""
        return open_entries * self.fan_in
