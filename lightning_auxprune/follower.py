"""Gating the BatchNorm that follows a neuron-masked layer, so a closed unit outputs exactly 0.

With neuron granularity a closed filter's convolution output is zero, but a BatchNorm right
after it would turn that zero into the constant ``beta - gamma * mean / sqrt(var + eps)``. The
unit would still feed the next layer, and removing it physically would change the function.
So the BatchNorm's output is multiplied by the same gate ``h(m)``.

Which BatchNorm follows which layer is found during the forward pass: a BatchNorm whose input
tensor *is* (by identity) the latest output of a masked layer is paired with it, once and for
all. [`fold_followers`][lightning_auxprune.follower.fold_followers] writes the gates into the BatchNorms' affine
parameters (``bake``
does this).

Examples:
    >>> import torch
    >>> from torch import nn
    >>> from lightning_auxprune.patch import patch_model
    >>> from lightning_auxprune.options import MaskOptions
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2)).eval()
    >>> masks = patch_model(net, ["0"], MaskOptions(granularity="neuron"))
    >>> with torch.no_grad():
    ...     masks["0"].aux[1] = -1.0
    ...     _ = net[1].bias.fill_(0.5)
    >>> net(torch.ones(1, 1, 2, 2))[0, 1].tolist()  # closed unit: 0, not BatchNorm's 0.5
    [[0.0, 0.0], [0.0, 0.0]]
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import nn

from lightning_auxprune.parametrization import AuxMask

BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_OWNER = "_auxprune_owner"
_PAIRING = "_auxprune_pairing"


class Pairing:
    """The latest output of each neuron-masked layer (weakly held), shared by one model's hooks."""

    def __init__(self) -> None:
        self.latest: dict[int, tuple[weakref.ref[torch.Tensor], AuxMask]] = {}


def _remember_output(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
    pairing: Pairing | None = module.__dict__.get(_PAIRING)
    mask: AuxMask | None = module.__dict__.get(_OWNER)
    if pairing is not None and mask is not None and isinstance(output, torch.Tensor):
        pairing.latest[id(module)] = (weakref.ref(output), mask)


def _pair_input(module: nn.Module, args: tuple[Any, ...]) -> None:
    pairing: Pairing | None = module.__dict__.get(_PAIRING)
    if pairing is None or _OWNER in module.__dict__ or not args:
        return
    for ref, mask in pairing.latest.values():
        if ref() is args[0]:
            module.__dict__[_OWNER] = mask
            return


def _gate_output(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
    owner: AuxMask | None = module.__dict__.get(_OWNER)
    if owner is None:
        return output
    gate = owner.gate().to(output.dtype)
    return output * gate.reshape(1, -1, *([1] * (output.dim() - 2)))


def attach_followers(model: nn.Module, masks: dict[str, AuxMask]) -> None:
    """Arm the pairing and gating hooks for the neuron-granularity ``masks`` of ``model``.

    Idempotent: layers and BatchNorms already armed are left as they are.
    """
    neuron = {name: m for name, m in masks.items() if m.options.granularity == "neuron"}
    if not neuron:
        return
    modules = dict(model.named_modules())
    pairing = next((m.__dict__[_PAIRING] for m in modules.values() if _PAIRING in m.__dict__), Pairing())
    for name, mask in neuron.items():
        layer = modules[name]
        if _PAIRING not in layer.__dict__:
            layer.__dict__[_OWNER] = mask
            layer.__dict__[_PAIRING] = pairing
            layer.register_forward_hook(_remember_output)
    for module in modules.values():
        if isinstance(module, BATCHNORMS) and _PAIRING not in module.__dict__:
            module.__dict__[_PAIRING] = pairing
            module.register_forward_pre_hook(_pair_input)
            module.register_forward_hook(_gate_output)


def followers(model: nn.Module) -> dict[str, AuxMask]:
    """BatchNorm layers gated so far, by name, with the mask that gates them.

    Examples:
        >>> followers(nn.Sequential(nn.BatchNorm1d(2)))
        {}
    """
    return {
        name: module.__dict__[_OWNER]
        for name, module in model.named_modules()
        if isinstance(module, BATCHNORMS) and _OWNER in module.__dict__
    }


def _drop_hooks(module: nn.Module) -> None:
    ours = (_remember_output, _pair_input, _gate_output)
    for hooks in (module._forward_hooks, module._forward_pre_hooks):
        for key, hook in list(hooks.items()):
            if hook in ours:
                del hooks[key]
    module.__dict__.pop(_PAIRING, None)


def fold_followers(model: nn.Module) -> None:
    """Write each gate into its BatchNorm's affine parameters and remove all follower hooks.

    ``BN(x) * g`` equals a BatchNorm with ``gamma * g`` and ``beta * g`` (g is 0 or 1).

    Raises:
        ValueError: If a gated BatchNorm has no affine parameters to carry the gate.
    """
    for name, module in model.named_modules():
        owner: AuxMask | None = module.__dict__.pop(_OWNER, None)
        _drop_hooks(module)
        if owner is None or not isinstance(module, BATCHNORMS):
            continue
        if module.weight is None or module.bias is None:
            raise ValueError(f"BatchNorm {name!r} follows a neuron-masked layer but has affine=False; use affine=True.")
        gate = owner.gate().to(module.weight.dtype)
        with torch.no_grad():
            module.weight.mul_(gate)
            module.bias.mul_(gate)
