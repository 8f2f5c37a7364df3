r"""Choosing which layers get auxiliary masks: by type and by module-name regex.

Patterns are matched with ``re.fullmatch`` against names from ``model.named_modules()``
(e.g. ``"features.0"``, ``"classifier\\..*"``). Every pattern must match at least one prunable
layer, so a typo is an error rather than a silently dense layer.

Examples:
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> select_layers(net, exclude=["2"])
    ['0']

"""

from __future__ import annotations

import re
from collections.abc import Sequence

from torch import nn
from torch.nn.utils import parametrize

from lightning_auxprune.attention import masked_tensors

WEIGHT_LAYERS: dict[str, type[nn.Module]] = {
    "Linear": nn.Linear,
    "Conv1d": nn.Conv1d,
    "Conv2d": nn.Conv2d,
    "Conv3d": nn.Conv3d,
}
"""Layers computing with their ``weight`` (FLOPs count per call, channels removable by shrink)."""
SUPPORTED_TYPES: dict[str, type[nn.Module]] = {**WEIGHT_LAYERS, "MultiheadAttention": nn.MultiheadAttention}
"""Everything that can carry masks; attention is masked on its packed ``in_proj_weight``."""


def layer_types(names: Sequence[str] | None) -> tuple[type[nn.Module], ...]:
    """Resolve type names (``"Linear"``, ``"Conv2d"``, ...) to classes; ``None`` means all.

    Examples:
        >>> layer_types(["Linear"])
        (<class 'torch.nn.modules.linear.Linear'>,)

    """
    if names is None:
        return tuple(SUPPORTED_TYPES.values())
    unknown = [n for n in names if n not in SUPPORTED_TYPES]
    if unknown:
        raise ValueError(f"Unsupported layer type(s) {unknown}. Prunable types are: {', '.join(SUPPORTED_TYPES)}.")
    if not names:
        raise ValueError("layer_types is empty: give at least one of " + ", ".join(SUPPORTED_TYPES) + ", or None.")
    return tuple(SUPPORTED_TYPES[n] for n in names)


def compile_patterns(patterns: Sequence[str] | None, what: str) -> list[re.Pattern[str]]:
    """Compile ``include``/``exclude`` regexes, with errors that say what to pass instead.

    Raises:
        TypeError: For a single string instead of a list.
        ValueError: For an invalid regex.

    Examples:
        >>> [p.pattern for p in compile_patterns(["fc.*", "conv1"], "include")]
        ['fc.*', 'conv1']

    """
    if patterns is None:
        return []
    if isinstance(patterns, str):
        raise TypeError(f"{what} must be a list of regexes, got the string {patterns!r}; wrap it: [{patterns!r}].")
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as err:
            raise ValueError(f"{what} pattern {pattern!r} is not a valid regex: {err}.") from err
    return compiled


def prunable_layers(model: nn.Module, types: tuple[type[nn.Module], ...]) -> dict[str, nn.Module]:
    """All modules of ``types`` (looked up before any parametrization), by qualified name.

    Examples:
        >>> list(prunable_layers(nn.Sequential(nn.Linear(2, 2)), (nn.Linear,)))
        ['0']

    """
    return {
        name: module
        for name, module in model.named_modules()
        if issubclass(parametrize.type_before_parametrizations(module), types)
    }


def output_layer(model: nn.Module) -> str | None:
    """The model's output layer as the neuron masks see it: its last Linear/Conv layer, in registration order.

    Examples:
        >>> output_layer(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2)))
        '2'

    """
    names = list(prunable_layers(model, tuple(WEIGHT_LAYERS.values())))
    return names[-1] if names else None


def _owner(model: nn.Module, key: str) -> nn.Module:
    path = key.rpartition(".")[0]
    return model.get_submodule(path) if path else model


def check_untied(model: nn.Module, names: Sequence[str]) -> None:
    """Refuse layers whose weight is shared with another parameter name (tied weights).

    ``torch.nn.utils.parametrize`` would give each user of a tied weight its own mask, so the
    users would compute with different weights and a baked model would hold different tensors
    under the tied keys.

    Raises:
        ValueError: Naming each tied layer and what it shares its weight with.

    Examples:
        >>> net = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
        >>> net[1].weight = net[0].weight
        >>> check_untied(net, ["0", "1"])
        Traceback (most recent call last):
        ...
        ValueError: Tied weights: '0.weight' is also ['1.weight']; ...

    """
    users: dict[int, list[str]] = {}
    for key, param in model.named_parameters(remove_duplicate=False):
        users.setdefault(id(param), []).append(key)
    modules = dict(model.named_modules())
    tied = {}
    for name in names:
        module = modules[name]
        tensor = masked_tensors(module)[0]
        if parametrize.is_parametrized(module, tensor):
            continue  # masked already (a second attach): checked then
        key = f"{name}.{tensor}" if name else tensor
        # the same module reachable under two names shares one mask: only other modules count
        others = [k for k in users.get(id(getattr(module, tensor)), []) if _owner(model, k) is not module]
        if others:
            tied[key] = others
    if tied:
        listed = "; ".join(f"{key!r} is also {others}" for key, others in tied.items())
        layers = sorted({key.rpartition(".")[0] for key in tied})
        raise ValueError(
            f"Tied weights: {listed}. One mask per user would prune them differently and bake different tensors "
            f"under the tied keys. Leave them dense with exclude={layers}, or untie them."
        )


def select_layers(
    model: nn.Module,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
) -> list[str]:
    """Names of the layers to prune, in ``named_modules`` order.

    Args:
        model: The model to search.
        include: Regexes; if given, only layers whose full name matches one are kept.
        exclude: Regexes; layers whose full name matches one are dropped.
        types: Layer type names (see ``SUPPORTED_TYPES``); default all.

    Raises:
        ValueError: If the model has no prunable layer, a pattern matches no prunable layer,
            or nothing is left after filtering.

    Examples:
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))
        >>> select_layers(net, types=["Conv2d"])
        ['0']

    """
    classes = layer_types(types)
    candidates = prunable_layers(model, classes)
    if not candidates:
        kinds = ", ".join(c.__name__ for c in classes)
        raise ValueError(f"{type(model).__name__} has no prunable layer of type {kinds}; nothing to prune.")
    inc, exc = compile_patterns(include, "include"), compile_patterns(exclude, "exclude")
    for pattern in inc + exc:
        if not any(pattern.fullmatch(name) for name in candidates):
            raise ValueError(
                f"Pattern {pattern.pattern!r} matches no prunable layer (full-name match). "
                f"Prunable layers are: {', '.join(candidates)}."
            )
    chosen = [
        name
        for name in candidates
        if (not inc or any(p.fullmatch(name) for p in inc)) and not any(p.fullmatch(name) for p in exc)
    ]
    if not chosen:
        raise ValueError("include/exclude leave no layer to prune; loosen the patterns.")
    return chosen
