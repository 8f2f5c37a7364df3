"""Baking: multiply the hard masks into the weights and remove the parametrizations.

The baked model has exactly the original model's ``state_dict`` keys and loads into a fresh,
never-patched instance of the same architecture.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from lightning_auxprune.patch import patch_model
    >>> from lightning_auxprune.options import MaskOptions
    >>> net = nn.Sequential(nn.Linear(2, 2))
    >>> masks = patch_model(net, ["0"], MaskOptions())
    >>> with torch.no_grad():
    ...     masks["0"].aux[0, 0] = -1.0
    >>> plain = bake(net)
    >>> sorted(plain.state_dict()), float(plain[0].weight[0, 0])
    (['0.bias', '0.weight'], 0.0)
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from lightning_auxprune.masked_weight import expand_gate
from lightning_auxprune.patch import find_masks, mask_of

_PARAM_KEY = re.compile(r"^(?:(?P<layer>.+)\.)?parametrizations\.(?P<tensor>weight|bias)\.original$")


def bake(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Return ``model`` with ``W * h(M)`` written into each masked weight (and gated bias).

    Args:
        model: A model patched by :func:`~lightning_auxprune.patch.patch_model` (or the callback).
        inplace: Modify ``model`` itself instead of a deep copy.

    Raises:
        ValueError: If ``model`` carries no auxiliary masks, or a masked tensor has other
            parametrizations stacked on it (bake those yourself first).
    """
    if not find_masks(model):
        raise ValueError(
            f"{type(model).__name__} carries no auxiliary masks: nothing to bake. "
            "Patch it with AuxMaskPruning (or lightning_auxprune.patch_model) and train first."
        )
    target = model if inplace else copy.deepcopy(model)
    for name, module in list(target.named_modules()):
        if mask_of(module) is not None:
            for tensor_name in ("weight", "bias"):
                if not parametrize.is_parametrized(module, tensor_name):
                    continue
                stack = module.parametrizations[tensor_name]  # type: ignore[index]
                if len(stack) != 1:
                    raise ValueError(
                        f"Layer {name!r}.{tensor_name} has {len(stack)} stacked parametrizations; "
                        "remove the others before baking."
                    )
                parametrize.remove_parametrizations(module, tensor_name, leave_parametrized=True)
    return target


def bake_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Turn a patched model's ``state_dict`` (e.g. from a Lightning checkpoint) into baked form.

    ``<layer>.parametrizations.weight.original`` and ``<layer>.parametrizations.weight.0.aux``
    become ``<layer>.weight = W * h(M)``; a gated bias likewise. Other keys pass through.

    Example:
        >>> sd = {"fc.parametrizations.weight.original": torch.ones(1, 2),
        ...       "fc.parametrizations.weight.0.aux": torch.tensor([[1.0, -1.0]]),
        ...       "fc.bias": torch.zeros(1)}
        >>> {k: v.tolist() for k, v in bake_state_dict(sd).items()}
        {'fc.weight': [[1.0, 0.0]], 'fc.bias': [0.0]}
    """
    baked: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.endswith("parametrizations.weight.0.aux"):
            continue
        match = _PARAM_KEY.match(key)
        if match is None:
            baked[key] = value
            continue
        layer, tensor = match["layer"], match["tensor"]
        prefix = f"{layer}." if layer else ""
        aux_key = f"{prefix}parametrizations.weight.0.aux"
        if aux_key not in state_dict:
            raise ValueError(f"{key!r} has no auxiliary mask {aux_key!r}; this state_dict was not made by AuxMask.")
        baked[f"{prefix}{tensor}"] = value * expand_gate(state_dict[aux_key], value)
    return baked
