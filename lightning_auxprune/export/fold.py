"""Folding BatchNorm into the convolution or Linear layer before it, for inference.

In eval mode a BatchNorm is an affine map per channel, so when it reads nothing but the output of
a Conv/Linear layer it can be multiplied into that layer's weight and bias
(``torch.nn.utils.fusion``) and replaced by ``nn.Identity``: one pass over the activations less per
pair, the same function. Which BatchNorm reads which layer comes from Torch-Pruning's dependency
graph (the same trace [`shrink`][lightning_auxprune.export.shrink.shrink] uses); each fold is
checked numerically on ``example_inputs`` and undone, with the reason, if the output moved.

Fold the model you deploy, after [`shrink`][lightning_auxprune.export.shrink.shrink] or
[`bake`][lightning_auxprune.export.bake.bake]: the folded model no longer has the BatchNorm layers,
so save it with ``torch.save(model)`` (or ``torch.export``), not into the original architecture.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    >>> result = fold_batchnorm(net, torch.randn(2, 1, 8, 8))
    >>> result.folded, type(result.model[1]).__name__
    ({'1': '0'}, 'Identity')
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from lightning_auxprune.export.shrink import _as_tuple, _outputs_match, _put
from lightning_auxprune.patch import find_masks

FOLDABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass
class FoldResult:
    """What [`fold_batchnorm`][lightning_auxprune.export.fold.fold_batchnorm] produced.

    Attributes:
        model: A copy of the model (eval mode) with the folded BatchNorms replaced by ``nn.Identity``.
        folded: Folded BatchNorm name -> the layer it was folded into.
        skipped: Every BatchNorm that stays, with the reason.
    """

    model: nn.Module
    folded: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _pairs(model: nn.Module, inputs: tuple[Any, ...]) -> list[tuple[str, str]]:
    """(layer, BatchNorm) pairs where the BatchNorm reads the layer's output and nothing else."""
    import torch_pruning as tp

    try:
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=inputs)
    except Exception as err:  # Torch-Pruning's tracer fails in many ways on models it cannot read
        raise ValueError(
            f"Torch-Pruning could not trace {type(model).__name__} ({type(err).__name__}: {err}), so the "
            "BatchNorm layers' inputs are unknown. Check that example_inputs is what forward takes."
        ) from err
    names = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}
    pairs = []
    for module, node in graph.module2node.items():
        if not isinstance(module, FOLDABLE) or len(node.outputs) != 1:
            continue
        after = node.outputs[0]
        if isinstance(after.module, _BatchNorm) and [n.module for n in after.inputs] == [module]:
            pairs.append((names[id(module)], names[id(after.module)]))
    return sorted(pairs)


def _fused(layer: nn.Module, norm: _BatchNorm) -> nn.Module:
    if isinstance(layer, nn.Linear):
        return fuse_linear_bn_eval(layer, norm)
    return fuse_conv_bn_eval(layer, norm)  # type: ignore[type-var]


def fold_batchnorm(model: nn.Module, example_inputs: Any, atol: float = 1e-5) -> FoldResult:
    """Fold every BatchNorm that reads only a Conv/Linear layer's output into that layer.

    Args:
        model: A plain model (baked or shrunk; it is left unchanged).
        example_inputs: A tensor (or tuple of positional inputs) for tracing and checking.
        atol: Absolute tolerance (plus 1e-4 relative) of the output check after each fold.

    Returns:
        The folded copy, what was folded and what was not, with the reason.

    Raises:
        ValueError: If the model still carries auxiliary masks, or cannot be traced.
    """
    if find_masks(model):
        raise ValueError(
            f"{type(model).__name__} still carries auxiliary masks: fold the deployed model, from "
            "shrink(...).model or bake(model)."
        )
    inputs = _as_tuple(example_inputs)
    folded_model = copy.deepcopy(model).eval()
    result = FoldResult(model=folded_model)
    with torch.no_grad():
        reference = folded_model(*inputs)
    modules = dict(folded_model.named_modules(remove_duplicate=False))
    uses = Counter(id(m) for m in modules.values())
    shared = {n for n, m in modules.items() if uses[id(m)] > 1}
    for layer_name, norm_name in _pairs(folded_model, inputs):
        layer, norm = modules[layer_name], modules[norm_name]
        assert isinstance(norm, _BatchNorm)
        if layer_name in shared or norm_name in shared:
            result.skipped[norm_name] = "the layer or the BatchNorm is used under more than one name"
            continue
        if norm.running_mean is None or norm.running_var is None:
            result.skipped[norm_name] = "it has no running statistics (track_running_stats=False)"
            continue
        _put(folded_model, layer_name, _fused(layer, norm))
        _put(folded_model, norm_name, nn.Identity())
        if _outputs_match(folded_model, inputs, reference, atol):
            result.folded[norm_name] = layer_name
            continue
        _put(folded_model, layer_name, layer)
        _put(folded_model, norm_name, norm)
        result.skipped[norm_name] = "the output changes when it is folded (the layer's output is also used elsewhere)"
    for name, module in modules.items():
        if isinstance(module, _BatchNorm) and name not in result.folded and name not in result.skipped:
            result.skipped[name] = "it does not read the output of one Conv/Linear layer that nothing else reads"
    return result
