"""FLOP accounting, counted by ``torch.utils.flop_counter.FlopCounterMode``.

The same functions serve the callback's logging, the export and the benchmarks:

* [`count_flops`][lightning_auxprune.flops.count_flops] counts a whole model's forward FLOPs on an example input;
* [`LayerFlops`][lightning_auxprune.flops.LayerFlops] records each Linear/Conv layer's input shape during a real
  forward pass
  and counts that layer's dense FLOPs (batch size 1);
* [`nonzero_flops`][lightning_auxprune.flops.nonzero_flops] scales a layer's dense FLOPs by its weight density. Every
  weight of a
  Linear/Conv layer takes part in the same number of multiply-adds per sample, so this is the
  exact number of FLOPs whose weight operand is non-zero.

FLOPs follow torch's convention: one multiply-add = 2 FLOPs.

Examples:
    >>> import torch
    >>> count_flops(torch.nn.Linear(10, 5), torch.zeros(1, 10))
    100

"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lightning_auxprune.layer_selection import SUPPORTED_TYPES, prunable_layers


def count_flops(model: nn.Module, *inputs: Any) -> int:
    """Forward FLOPs of ``model(*inputs)`` as counted by torch.

    Runs in eval mode without gradients (BatchNorm statistics are left untouched), then
    restores the model's training flag.

    Examples:
        >>> count_flops(torch.nn.Conv2d(1, 1, 3, bias=False), torch.zeros(1, 1, 5, 5))
        162

    """
    counter = FlopCounterMode(display=False)
    was_training = model.training
    model.eval()
    try:
        with counter, torch.no_grad():
            model(*inputs)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def nonzero_flops(dense_flops: int, density: float) -> float:
    """FLOPs whose weight operand is non-zero, for a layer with the given weight density.

    Examples:
        >>> nonzero_flops(100, 0.25)
        25.0

    """
    return dense_flops * density


class LayerFlops:
    """Per-layer dense FLOPs of every Linear/Conv layer, from shapes seen in a real forward.

    Call [`attach`][lightning_auxprune.flops.LayerFlops.attach] before a forward pass; each hook records its layer's
    input shape on the
    layer's first call and removes itself, so later steps run without hooks (a compiled model
    recompiles at most once). [`dense`][lightning_auxprune.flops.LayerFlops.dense] then counts each layer on a zero
    input of batch 1.

    Examples:
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
        >>> flops = LayerFlops()
        >>> flops.attach(net)
        >>> _ = net(torch.zeros(8, 4))
        >>> flops.dense(net)
        {'0': 24, '1': 12}

    """

    def __init__(self) -> None:
        self.shapes: dict[str, tuple[int, ...]] = {}
        self._handles: dict[str, torch.utils.hooks.RemovableHandle] = {}
        self._cache: dict[str, int] | None = None

    def attach(self, model: nn.Module) -> None:
        """Register one-shot forward pre-hooks on all Linear/Conv layers of ``model``."""
        self.detach()
        self._cache = None
        for name, module in prunable_layers(model, tuple(SUPPORTED_TYPES.values())).items():
            self._handles[name] = module.register_forward_pre_hook(self._recorder(name))

    def _recorder(self, name: str) -> Any:
        def record(_module: nn.Module, args: tuple[Any, ...]) -> None:
            if name not in self.shapes and args and isinstance(args[0], torch.Tensor):
                self.shapes[name] = (1, *args[0].shape[1:])
            handle = self._handles.pop(name, None)
            if handle is not None:
                handle.remove()

        return record

    def detach(self) -> None:
        """Remove any hooks still registered."""
        for handle in self._handles.values():
            handle.remove()
        self._handles.clear()

    @property
    def ready(self) -> bool:
        """Whether at least one layer's input shape has been recorded."""
        return bool(self.shapes)

    def dense(self, model: nn.Module) -> dict[str, int]:
        """Dense FLOPs per recorded layer (counted once, then cached)."""
        if self._cache is None:
            self.detach()
            modules = dict(model.named_modules())
            self._cache = {}
            for name, shape in self.shapes.items():
                module = modules[name]
                weight = cast(torch.Tensor, module.weight)  # the weight's dtype: a layer runs outside autocast here
                example = torch.zeros(shape, dtype=weight.dtype, device=weight.device)
                self._cache[name] = count_flops(module, example)
        return self._cache

    def ratio(self, model: nn.Module, densities: dict[str, float]) -> float:
        """Non-zero FLOPs / dense FLOPs over all recorded layers; unmasked layers count dense.

        Examples:
            >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
            >>> flops = LayerFlops(); flops.attach(net); _ = net(torch.zeros(1, 4))
            >>> flops.ratio(net, {"0": 0.5})
            0.6666666666666666

        """
        dense = self.dense(model)
        total = sum(dense.values())
        kept = sum(nonzero_flops(f, densities.get(name, 1.0)) for name, f in dense.items())
        return kept / total if total else 1.0

    def linear_ratio(self, model: nn.Module, masked: list[str]) -> tuple[float, list[float]]:
        """``ratio`` as ``base + sum(coefficient[i] * density[i])`` over the ``masked`` layers.

        ``base`` is the share of the FLOPs in layers left dense; the coefficients are the masked
        layers' shares. A training step evaluates this on the device from the masks' densities.

        Examples:
            >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
            >>> flops = LayerFlops(); flops.attach(net); _ = net(torch.zeros(1, 4))
            >>> flops.linear_ratio(net, ["0"])
            (0.3333333333333333, [0.6666666666666666])

        """
        dense = self.dense(model)
        total = sum(dense.values()) or 1
        base = sum(f for name, f in dense.items() if name not in masked) / total
        return base, [dense.get(name, 0) / total for name in masked]
