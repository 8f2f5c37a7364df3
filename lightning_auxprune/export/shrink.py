"""Physically removing closed neurons/filters: a smaller dense model computing the same function.

Uses Torch-Pruning's dependency graph (DepGraph) for the coupling between layers: a removed
filter also removes the matching BatchNorm channel, the next layer's input channels, the
channels of a depthwise convolution, the slices of a concatenation, and the channels of every
layer joined by a residual addition.

A unit is removed only if every *masked* layer that produces the coupled channels has it closed.
Layers without masks may be coupled too (a residual stream, a depthwise conv fed by a masked
expansion); whether removing the channel keeps the function is then checked numerically after
each group: the shrunk model's outputs must equal the masked model's on ``example_inputs``
(``atol``). A group that fails is an error naming the layer, or, with ``on_unsafe="skip"``,
is left in place (zeros included) with a warning.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> from lightning_auxprune.patch import patch_model
    >>> from lightning_auxprune.options import MaskOptions
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> masks = patch_model(net, ["0"], MaskOptions(granularity="neuron"))
    >>> with torch.no_grad():
    ...     masks["0"].aux[:5] = -1.0
    >>> result = shrink(net, torch.randn(3, 4))
    >>> result.model[0].out_features, result.model[2].in_features
    (3, 3)
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from lightning_auxprune.export.bake import bake
from lightning_auxprune.export.heads import PrunedMultiheadAttention, remove_heads
from lightning_auxprune.flops import count_flops
from lightning_auxprune.patch import find_masks

OnUnsafe = Literal["error", "skip"]
WIDTH_ATTRS = ("in_features", "out_features", "in_channels", "out_channels", "groups", "num_features")


class UnsafeShrinkError(ValueError):
    """Removing a layer's closed units would change the model's output."""


@dataclass
class ShrinkResult:
    """What [`shrink`][lightning_auxprune.export.shrink.shrink] produced.

    Attributes:
        model: The shrunk plain model (eval mode).
        removed: Units removed per masked layer.
        skipped: Masked layers whose closed units could not be removed (``on_unsafe="skip"``).
        dense_macs: Multiply-adds of the baked model on ``example_inputs``.
        shrunk_macs: Multiply-adds of the shrunk model on ``example_inputs``.
    """

    model: nn.Module
    removed: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    dense_macs: int = 0
    shrunk_macs: int = 0


def _as_tuple(example_inputs: Any) -> tuple[Any, ...]:
    return example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)


def _put(model: nn.Module, name: str, module: nn.Module) -> None:
    """Make ``module`` the submodule ``name`` of ``model``."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    parent._modules[child] = module


def _out_channel_fn(tp: Any, layer: nn.Module) -> Any:
    return tp.prune_linear_out_channels if isinstance(layer, nn.Linear) else tp.prune_conv_out_channels


def _outputs_match(model: nn.Module, inputs: tuple[Any, ...], reference: torch.Tensor, atol: float) -> bool:
    with torch.no_grad():
        out = model(*inputs)
    return bool(out.shape == reference.shape and torch.allclose(out, reference, rtol=1e-4, atol=atol))


def _removable_group(
    tp: Any, graph: Any, model: nn.Module, name: str, closed: dict[str, list[bool]], round_to: int = 1
) -> tuple[Any, set[int]]:
    """The DepGraph group removing ``name``'s closed units, or ``(None, ...)`` if there are none.

    A unit qualifies if every masked coupled producer has it closed; at least one channel per
    layer is kept, and with ``round_to`` the kept width is a multiple of it (or the full width).
    """
    candidates = {i for i, c in enumerate(closed[name]) if c}
    width = len(closed[name])
    kept = min(width, -(-(width - len(candidates)) // round_to) * round_to)
    candidates = set(sorted(candidates)[: width - kept])  # the rest stay as zero channels
    modules = dict(model.named_modules())
    names = {id(m): n for n, m in modules.items()}
    layer = modules[name]
    while candidates:
        group = graph.get_pruning_group(layer, _out_channel_fn(tp, layer), sorted(candidates))
        still_open = set()
        for item in group:
            target = names.get(id(item.dep.target.module))
            if target in closed and graph.is_out_channel_pruning_fn(item.dep.handler):
                pairs = zip(item.idxs, item.root_idxs, strict=True)
                still_open |= {root for i, root in pairs if not closed[target][i]}
        if still_open:
            candidates -= still_open
        elif not graph.check_pruning_group(group):
            candidates.discard(max(candidates))  # keep one (zero) channel so no layer becomes empty
        else:
            return group, candidates
    return None, candidates


def shrink(
    model: nn.Module, example_inputs: Any, on_unsafe: OnUnsafe = "error", atol: float = 1e-5, round_to: int = 1
) -> ShrinkResult:
    """Bake ``model`` and remove every closed unit that can be removed without changing outputs.

    Args:
        model: A model patched with neuron-granularity masks (left unchanged).
        example_inputs: A tensor (or tuple of positional inputs) for tracing and checking.
        on_unsafe: ``"error"`` (default) or ``"skip"`` for units whose removal would change the
            outputs.
        atol: Absolute tolerance of the output check.
        round_to: Keep each shrunk layer's width a multiple of this (8 suits most GPU and CPU
            kernels): up to ``round_to - 1`` closed (zero) units per layer stay. 1: remove all.

    Raises:
        ValueError: If ``model`` has no masks or has weight-granularity masks.
        UnsafeShrinkError: With ``on_unsafe="error"``, naming the layer and the reason (or saying
            that Torch-Pruning could not trace the model).
        ImportError: If Torch-Pruning is not installed.
    """
    try:
        import torch_pruning as tp
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("shrink needs Torch-Pruning: pip install torch-pruning.") from err
    if round_to < 1:
        raise ValueError(f"round_to={round_to} must be >= 1 (1: remove every closed unit).")
    if on_unsafe not in ("error", "skip"):
        raise ValueError(f"Unknown on_unsafe={on_unsafe!r}. Use 'error' or 'skip'.")
    masks = find_masks(model)
    if not masks:
        raise ValueError(
            f"{type(model).__name__} carries no auxiliary masks: nothing to shrink. Train it with "
            "AuxMaskPruning(granularity='neuron') first."
        )
    per_weight = [name for name, mask in masks.items() if mask.options.granularity != "neuron"]
    if per_weight:
        raise ValueError(
            f"Layers {per_weight} have weight-granularity masks; shrink removes whole units. Use "
            "granularity='neuron' (or export the unstructured model with save_sparse)."
        )
    inputs = _as_tuple(example_inputs)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        reference = model(*inputs)
    model.train(was_training)
    closed = {name: (mask.gate() <= 0).tolist() for name, mask in masks.items()}

    current = bake(model).eval()
    result = ShrinkResult(model=current, dense_macs=count_flops(current, *inputs) // 2)
    try:
        graph = tp.DependencyGraph().build_dependency(current, example_inputs=inputs)
    except Exception as err:  # Torch-Pruning's tracer fails in many ways on models it cannot read
        message = (
            f"Torch-Pruning could not trace {type(model).__name__} ({type(err).__name__}: {err}); nothing can be "
            "removed. Check that example_inputs is what forward takes."
        )
        if on_unsafe == "error":
            raise UnsafeShrinkError(message) from err
        warnings.warn(message + " Skipped.", stacklevel=2)
        result.skipped = {name: "the model could not be traced" for name in masks}
        result.shrunk_macs = result.dense_macs
        return result

    def refuse(name: str, count: int, reason: str) -> None:
        message = (
            f"Cannot remove the {count} closed units of layer {name!r}: {reason}. Exclude the coupled "
            "layers from neuron pruning (or mask them together), or pass on_unsafe='skip'."
        )
        if on_unsafe == "error":
            raise UnsafeShrinkError(message)
        warnings.warn(message + " Skipped.", stacklevel=3)
        result.skipped[name] = reason

    for name in masks:
        if masks[name].heads:
            continue  # attention heads: below, once the channels are done
        try:
            group, candidates = _removable_group(tp, graph, current, name, closed, round_to)
        except (ValueError, KeyError, RuntimeError, AttributeError) as err:  # e.g. attention's out_proj
            reason = (
                "Torch-Pruning's dependency graph does not cover it (a layer used through its weight, as "
                f"nn.MultiheadAttention uses out_proj: {type(err).__name__}: {err})"
            )
            refuse(name, sum(closed[name]), reason)
            continue
        if group is None:
            continue
        snapshot = copy.deepcopy(current)
        names = {id(m): n for n, m in current.named_modules()}
        touched = [
            (names[id(item.dep.target.module)], sorted(set(item.idxs)))
            for item in group
            if names.get(id(item.dep.target.module)) in closed and graph.is_out_channel_pruning_fn(item.dep.handler)
        ]
        reason = (
            "they are coupled (residual addition, concatenation or depthwise convolution) with channels "
            "that stay open or with a layer that has no mask, so removing them changes the output"
        )
        try:
            group.prune()
            same = _outputs_match(current, inputs, reference, atol)
        except (RuntimeError, ValueError, IndexError) as err:  # e.g. grouped convs Torch-Pruning cannot split
            reason = f"Torch-Pruning cannot remove them from this dependency group ({type(err).__name__}: {err})"
            same = False
        if same:
            for target, idxs in touched:
                for i in reversed(idxs):
                    del closed[target][i]
                result.removed[target] = result.removed.get(target, 0) + len(idxs)
            continue
        current = snapshot
        graph = tp.DependencyGraph().build_dependency(current, example_inputs=inputs)
        refuse(name, len(candidates), reason)
    for name, mask in masks.items():
        if mask.heads and any(closed[name]):
            current = _shrink_heads(current, name, closed[name], inputs, reference, atol, result, refuse)
    result.model = current
    result.shrunk_macs = count_flops(current, *inputs) // 2
    return result


def _shrink_heads(
    model: nn.Module,
    name: str,
    closed: list[bool],
    inputs: tuple[Any, ...],
    reference: torch.Tensor,
    atol: float,
    result: ShrinkResult,
    refuse: Any,
) -> nn.Module:
    """Replace attention block ``name`` by one without its closed heads, if the outputs stay the same."""
    attention = model.get_submodule(name)
    keep = [h for h, c in enumerate(closed) if not c] or [0]  # keep one (zero) head so the block stays valid
    try:
        smaller = remove_heads(attention, keep)  # type: ignore[arg-type]
    except ValueError as err:
        refuse(name, len(closed) - len(keep), f"the attention block cannot be rebuilt ({err})")
        return model
    _put(model, name, smaller)
    if _outputs_match(model, inputs, reference, atol):
        result.removed[name] = len(closed) - len(keep)
        return model
    _put(model, name, attention)
    refuse(name, len(closed) - len(keep), "the model's output changes without them")
    return model


def layer_widths(model: nn.Module) -> dict[str, dict[str, int]]:
    """The width attributes (``in_features``, ``out_channels``, ``groups``, ...) of every layer.

    Examples:
        >>> layer_widths(nn.Sequential(nn.Linear(3, 2)))
        {'0': {'in_features': 3, 'out_features': 2}}
    """
    widths = {}
    for name, module in model.named_modules():
        if isinstance(module, PrunedMultiheadAttention):
            widths[name] = {"pruned_heads": module.num_heads}
            continue
        attrs = {a: int(getattr(module, a)) for a in WIDTH_ATTRS if isinstance(getattr(module, a, None), int)}
        if attrs:
            widths[name] = attrs
    return widths


def _replace_attention(model: nn.Module, name: str, heads: int) -> None:
    """Put a ``heads``-head attention block in place of the attention block ``name`` of a fresh model.

    The new block is a [`PrunedMultiheadAttention`][lightning_auxprune.export.heads.PrunedMultiheadAttention].
    """
    attention = dict(model.named_modules()).get(name)
    if not isinstance(attention, nn.MultiheadAttention):
        raise ValueError(f"Layer {name!r} of the checkpoint is pruned attention, but {name!r} is not attention here.")
    _put(model, name, remove_heads(attention, list(range(heads))))


def save_shrunk(model: nn.Module, path: str) -> None:
    """Save a shrunk model as its ``state_dict`` plus the new layer widths.

    ``torch.save(model, path)`` also works (the shrunk model is a plain module); this form
    loads into a fresh instance of the original architecture with
    [`load_shrunk`][lightning_auxprune.export.shrink.load_shrunk].
    """
    torch.save({"state_dict": model.state_dict(), "widths": layer_widths(model)}, path)


def load_shrunk(model: nn.Module, path: str) -> nn.Module:
    """Resize a fresh instance of the original architecture to the saved widths and load it.

    Raises:
        ValueError: If the checkpoint does not belong to this architecture (names, layer types
            or tensor ranks differ).
    """
    saved = torch.load(path, weights_only=True)
    return resize_to(model, saved["state_dict"], saved["widths"])


def resize_to(model: nn.Module, state: dict[str, torch.Tensor], widths: dict[str, dict[str, int]]) -> nn.Module:
    """Resize a fresh instance of the original architecture to ``widths`` and load ``state`` into it.

    What [`load_shrunk`][lightning_auxprune.export.shrink.load_shrunk] does with a saved file, for
    a ``state_dict`` and [`layer_widths`][lightning_auxprune.export.shrink.layer_widths] at hand.

    Raises:
        ValueError: If they do not belong to this architecture (names, layer types or tensor ranks differ).
    """
    for name, attrs in widths.items():
        if "pruned_heads" in attrs:
            _replace_attention(model, name, attrs["pruned_heads"])
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"This shrunk checkpoint does not fit {type(model).__name__}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}. Load it into the architecture it was shrunk from."
        )
    modules = dict(model.named_modules())
    for name, attrs in widths.items():
        if "pruned_heads" in attrs:
            continue  # rebuilt above
        module = modules.get(name)
        if module is None or any(not hasattr(module, a) for a in attrs):
            raise ValueError(f"Layer {name!r} of the checkpoint has no counterpart of the same type in the model.")
        for attr, width in attrs.items():
            setattr(module, attr, width)
    for key, value in state.items():
        owner_name, _, tensor_name = key.rpartition(".")
        owner = modules[owner_name]
        old = expected[key]
        if old.dim() != value.dim():
            raise ValueError(f"{key}: rank {value.dim()} in the checkpoint, {old.dim()} in the model.")
        parameter = owner._parameters.get(tensor_name)
        if parameter is not None:  # the model's flag: state_dict tensors never require grad
            owner._parameters[tensor_name] = nn.Parameter(value.clone(), requires_grad=parameter.requires_grad)
        else:
            owner._buffers[tensor_name] = value.clone()
    return model
