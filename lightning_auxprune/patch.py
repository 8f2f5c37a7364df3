"""Attaching auxiliary masks to a model's layers and finding them again.

Examples:
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> masks = patch_model(net, ["0", "2"], MaskOptions())
    >>> sorted(masks), sorted(find_masks(net)) == sorted(masks)
    (['0', '2'], True)

"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn
from torch.nn.utils import parametrize

from lightning_auxprune.attention import is_attention, masked_tensors
from lightning_auxprune.follower import attach_followers
from lightning_auxprune.options import MaskOptions
from lightning_auxprune.parametrization import AuxMask, BiasGate


def is_wrapper(module: nn.Module) -> bool:
    """Whether ``module`` only wraps another (``torch.compile``'s ``OptimizedModule``, holding ``_orig_mod``).

    A wrapper forwards attribute reads to the module it wraps, so it would look like a second copy
    of a masked layer; the layer itself is the wrapped module.

    Examples:
        >>> is_wrapper(nn.Linear(2, 2))
        False

    """
    return "_orig_mod" in module._modules


def mask_of(module: nn.Module) -> AuxMask | None:
    """The [`AuxMask`][lightning_auxprune.parametrization.AuxMask] parametrizing ``module.weight``, or ``None``.

    Examples:
        >>> mask_of(nn.Linear(2, 2)) is None
        True

    """
    name = "in_proj_weight" if is_attention(module) else "weight"
    if is_wrapper(module) or not parametrize.is_parametrized(module, name):
        return None
    for item in cast(nn.ModuleList, cast(nn.ModuleDict, module.parametrizations)[name]):
        if isinstance(item, AuxMask):
            return item
    return None


def find_masks(model: nn.Module) -> dict[str, AuxMask]:
    """All auxiliary masks in ``model``, keyed by layer name, in ``named_modules`` order.

    Examples:
        >>> find_masks(nn.Linear(2, 2))
        {}

    """
    found = {}
    for name, module in model.named_modules():
        mask = mask_of(module)
        if mask is not None:
            found[name] = mask
    return found


def patch_layer(module: nn.Module, options: MaskOptions, shared: AuxMask | None = None) -> AuxMask:
    """Register an ``AuxMask`` on ``module.weight`` (and a ``BiasGate`` on its bias).

    On ``nn.MultiheadAttention`` the mask sits on ``in_proj_weight`` (one m per head for neuron
    granularity; see [`lightning_auxprune.attention`][lightning_auxprune.attention]).
    The bias is gated for neuron granularity only. A layer that already has a mask keeps it,
    if the options agree. A frozen layer (``weight.requires_grad`` False) gets a frozen mask.
    With ``shared``, the layer's units use that mask's M (coupled layers).

    Raises:
        ValueError: If the layer is already masked with different options, or not with ``shared``'s M.

    Examples:
        >>> layer = nn.Linear(2, 3)
        >>> patch_layer(layer, MaskOptions(granularity="neuron")).aux.shape
        torch.Size([3])

    """
    existing = mask_of(module)
    if existing is not None:
        if existing.options != options:
            raise ValueError(
                f"Layer already carries auxiliary masks with {existing.options}, not {options}. "
                "Bake it first (lightning_auxprune.bake) or use the same options."
            )
        if shared is not None and existing.aux is not shared.aux:
            raise ValueError(
                "Layer already carries its own neuron masks, but is coupled with another layer now. Bake it first "
                "(lightning_auxprune.bake), or keep per-layer masks (coupled=False)."
            )
        return existing
    weight_name, bias_name = masked_tensors(module)
    weight = cast(torch.Tensor, getattr(module, weight_name))
    if isinstance(weight, nn.parameter.UninitializedParameter):
        raise ValueError(
            f"{type(module).__name__} has no weight yet (a lazy layer): run one forward pass of the model on an "
            "example batch before pruning it (with Lightning: before trainer.fit), or exclude it."
        )
    heads = int(cast(int, module.num_heads)) if is_attention(module) and options.granularity == "neuron" else None
    mask = AuxMask(weight, options, shared, heads)
    if shared is None:
        mask.aux.requires_grad_(weight.requires_grad)  # a frozen layer gets a frozen mask: it stays dense
    mask.param_order = list(module._parameters)
    parametrize.register_parametrization(module, weight_name, mask)
    if options.granularity == "neuron" and getattr(module, bias_name, None) is not None:
        parametrize.register_parametrization(module, bias_name, BiasGate(mask))
    return mask


def patch_model(
    model: nn.Module,
    layer_names: Sequence[str],
    options: MaskOptions,
    groups: Sequence[Sequence[str]] = (),
) -> dict[str, AuxMask]:
    """Attach masks to the named layers; returns ``{layer_name: AuxMask}``.

    For neuron granularity, a BatchNorm directly fed by a masked layer is gated with the same
    mask (see [`lightning_auxprune.follower`][lightning_auxprune.follower]). Layers listed
    together in ``groups`` share one M (the first's): their units open and close together.

    Examples:
        >>> net = nn.Sequential(nn.Linear(2, 2))
        >>> list(patch_model(net, ["0"], MaskOptions()))
        ['0']

    """
    modules = dict(model.named_modules())
    missing = [n for n in layer_names if n not in modules]
    if missing:
        raise ValueError(f"No layer named {missing} in {type(model).__name__}.")
    order = {name: i for i, name in enumerate(layer_names)}
    outside = sorted({m for group in groups for m in group} - set(order))
    if outside:
        raise ValueError(f"Coupled layers {outside} are not among the layers to mask.")
    leader = {member: min(group, key=order.__getitem__) for group in groups for member in group}
    masks: dict[str, AuxMask] = {}
    for name in layer_names:
        first = leader.get(name, name)
        masks[name] = patch_layer(modules[name], options, masks[first] if first != name else None)
    attach_followers(model, masks)
    return masks
