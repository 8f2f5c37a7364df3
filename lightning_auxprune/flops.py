"""FLOP accounting, counted by ``torch.utils.flop_counter.FlopCounterMode``.

The same functions serve the callback's logging, the export and the benchmarks:

* [`count_flops`][lightning_auxprune.flops.count_flops] counts a whole model's forward FLOPs on an example input;
* [`LayerFlops`][lightning_auxprune.flops.LayerFlops] records each Linear/Conv layer's input shapes during real
  forward passes and counts that layer's dense FLOPs (batch size 1), when no example input is known
  (with one, [`layer_flops`][lightning_auxprune.kept_flops.layer_flops] counts them);
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

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lightning_auxprune.layer_selection import WEIGHT_LAYERS, prunable_layers


@contextmanager
def counted_attention() -> Iterator[None]:
    """Turn off ``nn.MultiheadAttention``'s inference fast path, whose fused kernel FlopCounterMode does not count.

    Examples:
        >>> with counted_attention():
        ...     torch.backends.mha.get_fastpath_enabled()
        False

    """
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


def count_flops(model: nn.Module, *inputs: Any) -> int:
    """Forward FLOPs of ``model(*inputs)`` as counted by torch.

    Runs in eval mode without gradients (BatchNorm statistics are left untouched), then
    restores the model's training flag. Attention is counted on its unfused path (see
    [`counted_attention`][lightning_auxprune.flops.counted_attention]).

    Examples:
        >>> count_flops(torch.nn.Conv2d(1, 1, 3, bias=False), torch.zeros(1, 1, 5, 5))
        162

    """
    counter = FlopCounterMode(display=False)
    was_training = model.training
    model.eval()
    try:
        with counter, torch.no_grad(), counted_attention():
            model(*inputs)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def nonzero_flops(dense_flops: float, density: float) -> float:
    """FLOPs whose weight operand is non-zero, for a layer with the given weight density.

    Examples:
        >>> nonzero_flops(100, 0.25)
        25.0

    """
    return dense_flops * density


class LayerFlops:
    """Per-layer dense FLOPs of every Linear/Conv layer, from the calls seen in real forward passes.

    The fallback when no example input is known. Call
    [`attach`][lightning_auxprune.flops.LayerFlops.attach] before a forward pass: hooks record the
    input shape of every call of every layer until [`detach`][lightning_auxprune.flops.LayerFlops.detach]
    (the pruner detaches at the first optimizer step, so a layer called several times per forward
    counts every call, and later steps run without hooks; a compiled model recompiles once).
    [`dense`][lightning_auxprune.flops.LayerFlops.dense] then counts each call on a zero input of
    batch 1.

    Examples:
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
        >>> flops = LayerFlops()
        >>> flops.attach(net)
        >>> _ = net(torch.zeros(8, 4)); _ = net[1](torch.zeros(8, 3))
        >>> flops.dense(net)
        {'0': 24, '1': 24}

    """

    def __init__(self) -> None:
        self.calls: dict[str, list[tuple[int, ...]]] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._cache: dict[str, int] | None = None

    def attach(self, model: nn.Module) -> None:
        """Register forward pre-hooks on all Linear/Conv layers of ``model``."""
        self.detach()
        self.calls, self._cache = {}, None
        for name, module in prunable_layers(model, tuple(WEIGHT_LAYERS.values())).items():
            self._handles.append(module.register_forward_pre_hook(self._recorder(name)))

    def _recorder(self, name: str) -> Any:
        def record(_module: nn.Module, args: tuple[Any, ...]) -> None:
            if args and isinstance(args[0], torch.Tensor):
                self.calls.setdefault(name, []).append((1, *args[0].shape[1:]))

        return record

    def detach(self) -> None:
        """Remove the hooks: the calls recorded so far are what is counted."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @property
    def ready(self) -> bool:
        """Whether at least one layer call has been recorded."""
        return bool(self.calls)

    def dense(self, model: nn.Module) -> dict[str, int]:
        """Dense FLOPs per recorded layer, all recorded calls (counted once, then cached)."""
        if self._cache is None:
            self.detach()
            modules = dict(model.named_modules())
            self._cache = {}
            for name, shapes in self.calls.items():
                module = modules[name]
                weight = cast(torch.Tensor, module.weight)  # the weight's dtype: a layer runs outside autocast here
                self._cache[name] = sum(
                    count_flops(module, torch.zeros(shape, dtype=weight.dtype, device=weight.device))
                    for shape in shapes
                )
        return self._cache
