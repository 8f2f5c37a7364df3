"""Baking: multiply the hard masks into the weights and remove the parametrizations.

The baked model has exactly the original model's ``state_dict`` keys and loads into a fresh,
never-patched instance of the same architecture.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> from lightning_auxprune.patch import patch_model
    >>> from lightning_auxprune.options import MaskOptions
    >>> net = nn.Sequential(nn.Linear(2, 2))
    >>> masks = patch_model(net, ["0"], MaskOptions())
    >>> with torch.no_grad():
    ...     masks["0"].aux[0, 0] = -1.0
    >>> plain = bake(net)
    >>> list(plain.state_dict()), plain[0].weight[0, 0].item() == 0
    (['0.weight', '0.bias'], True)

"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import cast

import torch
from torch import nn
from torch.nn.utils import parametrize

from lightning_auxprune.attention import head_rows
from lightning_auxprune.follower import fold_followers
from lightning_auxprune.masked_weight import expand_gate
from lightning_auxprune.patch import find_masks, is_wrapper, mask_of

_PARAM_KEY = re.compile(
    r"^(?:(?P<layer>.+)\.)?parametrizations\.(?P<tensor>(?P<packed>in_proj_)?(?:weight|bias))\.original$"
)
_AUX_SUFFIXES = ("parametrizations.weight.0.aux", "parametrizations.in_proj_weight.0.aux")


def _strip(name: str, module: nn.Module, order: list[str]) -> None:
    """Replace ``module``'s parametrized tensors by plain parameters holding their current values.

    ``remove_parametrizations`` deletes the property from the module's class, which a deep
    copy shares with the source model; this rebuilds the plain module without touching it.
    """
    stacks = cast(nn.ModuleDict, module.parametrizations)
    for tensor_name, stack in stacks.items():
        if len(cast(nn.ModuleList, stack)) != 1 or mask_of(module) is None:
            raise ValueError(
                f"Layer {name!r}.{tensor_name} has parametrizations other than AuxMask; remove them before baking."
            )
    with torch.no_grad():
        values = {t: (getattr(module, t).detach().clone(), bool(stacks[t].original.requires_grad)) for t in stacks}
    plain = dict(module._parameters)
    original_class = parametrize.type_before_parametrizations(module)
    del module._modules["parametrizations"]
    module.__class__ = original_class
    module._parameters.clear()
    for tensor_name in [*order, *(t for t in [*plain, *values] if t not in order)]:
        if tensor_name in values:
            value, requires_grad = values[tensor_name]
            module._parameters[tensor_name] = nn.Parameter(value, requires_grad=requires_grad)
        elif tensor_name in plain:
            module._parameters[tensor_name] = plain[tensor_name]


def _deepcopy(model: nn.Module) -> nn.Module:
    """``copy.deepcopy`` that keeps ``torch.compile`` wrappers of masked submodules.

    A wrapper forwards ``__deepcopy__`` to the parametrized module it wraps, so a plain deep copy
    returns the bare module in its place (and its keys lose ``_orig_mod``); each such copy is
    wrapped again here with the original wrapper's compile settings.
    """
    wrappers = {name: module for name, module in model.named_modules() if is_wrapper(module)}
    copied = copy.deepcopy(model)
    for name, wrapper in wrappers.items():
        inner = copied.get_submodule(name)
        if not is_wrapper(inner):
            parent_name, _, child = name.rpartition(".")
            parent = copied.get_submodule(parent_name) if parent_name else copied
            rewrapped: nn.Module = type(wrapper)(inner, wrapper.dynamo_ctx)
            if not name:  # the model itself was compiled
                return rewrapped
            parent._modules[child] = rewrapped
    return copied


def bake(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Return ``model`` with ``W * h(M)`` written into each masked weight (and gated bias).

    Args:
        model: A model patched by [`patch_model`][lightning_auxprune.patch.patch_model] (or the callback).
        inplace: Modify ``model`` itself instead of a deep copy.

    Raises:
        ValueError: If ``model`` carries no auxiliary masks, or a masked layer has other
            parametrizations (bake those yourself first).

    """
    if not find_masks(model):
        raise ValueError(
            f"{type(model).__name__} carries no auxiliary masks: nothing to bake. "
            "Patch it with AuxMaskPruning (or lightning_auxprune.patch_model) and train first."
        )
    target = model if inplace else _deepcopy(model)
    fold_followers(target)
    for name, module in list(target.named_modules()):
        mask = mask_of(module)
        if mask is not None:
            _strip(name, module, mask.param_order)
    return target


def bake_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Turn a patched model's ``state_dict`` (e.g. from a Lightning checkpoint) into baked form.

    ``<layer>.parametrizations.weight.original`` and ``<layer>.parametrizations.weight.0.aux``
    become ``<layer>.weight = W * h(M)``; a gated bias likewise. Other keys pass through.
    A state_dict does not say which BatchNorm follows which neuron-masked layer: for neuron
    granularity with BatchNorm, bake the model with [`bake`][lightning_auxprune.export.bake.bake] instead.

    Examples:
        >>> sd = {"fc.parametrizations.weight.original": torch.ones(1, 2),
        ...       "fc.parametrizations.weight.0.aux": torch.tensor([[1.0, -1.0]]),
        ...       "fc.bias": torch.zeros(1)}
        >>> {k: v.tolist() for k, v in bake_state_dict(sd).items()}
        {'fc.weight': [[1.0, 0.0]], 'fc.bias': [0.0]}

    """
    neuron = [
        key
        for key, value in state_dict.items()
        if key.endswith(_AUX_SUFFIXES) and value.dim() == 1 and state_dict[key.replace(".0.aux", ".original")].dim() > 1
    ]
    if neuron and any(key.endswith("running_mean") for key in state_dict):
        raise ValueError(
            "This state_dict has neuron masks and BatchNorm layers: a BatchNorm after a closed unit must be gated "
            "too, and a state_dict does not say which BatchNorm follows which layer. Load it into the patched "
            "model (the callback's setup, or AuxPruner.attach) and use bake(model) instead."
        )
    baked: dict[str, torch.Tensor] = {}
    held: dict[str, tuple[str, torch.Tensor]] = {}  # plain biases listed before their layer's weight
    for key, value in state_dict.items():
        if key.endswith(_AUX_SUFFIXES):
            continue
        match = _PARAM_KEY.match(key)
        if match is None:
            prefix = key[: -len("bias")]
            weight_pending = f"{prefix}weight" not in baked
            if key.endswith("bias") and weight_pending and f"{prefix}parametrizations.weight.original" in state_dict:
                held[prefix] = (key, value)  # emitted after the weight, as in the unpatched module
            else:
                baked[key] = value
            continue
        layer, tensor = match["layer"], match["tensor"]
        prefix = f"{layer}." if layer else ""
        aux_key = f"{prefix}parametrizations.{match['packed'] or ''}weight.0.aux"
        if aux_key not in state_dict:
            raise ValueError(f"{key!r} has no auxiliary mask {aux_key!r}; this state_dict was not made by AuxMask.")
        scores = state_dict[aux_key]
        if scores.dim() == 1 and match["packed"] and scores.numel() != value.shape[0]:  # one m per attention head
            scores = head_rows(scores, value.shape[0] // (3 * scores.numel()))
        baked[f"{prefix}{tensor}"] = value * expand_gate(scores, value)
        if tensor == "weight" and prefix in held:
            bias_key, bias = held.pop(prefix)
            baked[bias_key] = bias
    return baked
