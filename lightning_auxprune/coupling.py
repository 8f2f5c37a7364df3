"""Which output units of a model's layers are coupled, from Torch-Pruning's dependency graph.

Removing output channel ``c`` of a layer also removes channel ``c`` of every layer its output is
added to (a residual stream), of a depthwise convolution that reads it (with its producer), of
the BatchNorm after it, and input channel(s) ``c`` of every layer that consumes it (several input
features per channel after a ``Flatten``). Torch-Pruning's ``DependencyGraph`` traces a forward
pass and knows these couplings; [`channel_coupling`][lightning_auxprune.coupling.channel_coupling]
turns them into two plain lists:

* **groups**: layers whose output channels must close together, one entry per channel, for
  coupled neuron masks (one mask per group) and for the FLOPs count; each attention block's
  heads form a group of their own;
* **links**: per Linear/Conv layer, which group entries its output and input channels are.

From these, [`KeptFlops`][lightning_auxprune.kept_flops.KeptFlops] counts the FLOPs the model keeps
after [`shrink`][lightning_auxprune.export.shrink.shrink].

Examples:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> coupling = channel_coupling(net, (torch.zeros(1, 4),))
    >>> [g.layers for g in coupling.groups], coupling.links["2"].inputs[:2]
    ([('0',), ('2',)], [(0, 0, 1), (0, 1, 1)])

"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn

LINKED_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class ChannelGroup:
    """Layers whose output channels are removed together, channel ``i`` of each with the others'.

    Attributes:
        layers: The layers producing the coupled channels, in ``named_modules`` order.
        size: Channels in the group (every member has exactly this many outputs).
        blocker: Why the channels cannot be removed exactly (they pass through a LayerNorm, an
            attention block, a parameter such as a position embedding, ...), or ``None``.
    """

    layers: tuple[str, ...]
    size: int
    blocker: str | None = None


@dataclass
class LayerLinks:
    """How one Linear/Conv layer's channels map to group entries.

    Attributes:
        group: The group its output channels belong to (``None``: outside any group).
        outputs: Output channels (``out_features``/``out_channels``).
        inputs: ``(group, entry, count)``: ``count`` input channels of this layer are entry
            ``entry`` of group ``group`` (``count > 1`` after a ``Flatten``).
        input_width: Input channels per group of a grouped convolution (1 for depthwise), or all
            input features.
        depthwise: Whether its inputs are its outputs' channels (a depthwise convolution); its
            FLOPs then scale with its outputs alone.
    """

    group: int | None
    outputs: int
    input_width: int
    depthwise: bool
    inputs: list[tuple[int, int, int]] = field(default_factory=list)


@dataclass
class ChannelCoupling:
    """Groups of coupled layers and the links of every Linear/Conv layer (see the module doc)."""

    groups: list[ChannelGroup]
    links: dict[str, LayerLinks]

    def group_of(self, layer: str) -> int | None:
        """The group of ``layer``'s output channels (``None``: not in the graph)."""
        link = self.links.get(layer)
        return None if link is None else link.group


def _input_width(module: nn.Module) -> int:
    if isinstance(module, nn.Linear):
        return int(module.in_features)
    return int(cast(int, module.in_channels)) // int(cast(int, module.groups))


def _is_depthwise(module: nn.Module) -> bool:
    return not isinstance(module, nn.Linear) and 1 < int(cast(int, module.groups)) == int(cast(int, module.in_channels))


def _blocker(tp: Any, item: Any, name: str | None) -> str | None:
    """Why a group member stops its channels from being removed exactly, or ``None``.

    Normalisations over channels (LayerNorm, GroupNorm, InstanceNorm) change every channel when one
    is removed; attention, embeddings, recurrent layers, parameters (position embeddings, class
    tokens) and custom modules write the channel themselves.
    """
    kind = item.dep.target.type
    blocking = {
        tp.ops.OPTYPE.LN: "a LayerNorm",
        tp.ops.OPTYPE.GN: "a GroupNorm",
        tp.ops.OPTYPE.IN: "an InstanceNorm",
        tp.ops.OPTYPE.MHA: "an attention block",
        tp.ops.OPTYPE.EMBED: "an embedding",
        tp.ops.OPTYPE.LSTM: "a recurrent layer",
        tp.ops.OPTYPE.PARAMETER: "a parameter (e.g. a position embedding or class token)",
        tp.ops.OPTYPE.CUSTOMIZED: "a custom module",
    }
    if kind not in blocking:
        return None
    return f"they pass through {blocking[kind]}" + (f" ({name})" if name else "")


def _example_kwargs(example_inputs: Any) -> Any:
    return example_inputs if isinstance(example_inputs, (tuple, dict)) else (example_inputs,)


def channel_coupling(model: nn.Module, example_inputs: Any) -> ChannelCoupling:
    """Trace ``model`` once on ``example_inputs`` and return its channel groups and links.

    The model's training flag is restored; nothing else changes (Torch-Pruning traces with
    autograd, in eval mode, so BatchNorm statistics are untouched).

    Args:
        model: The model, unpatched or with masks.
        example_inputs: One input, a tuple of positional inputs, or a dict of keyword inputs.

    Raises:
        ImportError: If Torch-Pruning is missing.
        ValueError: If Torch-Pruning cannot trace the model.
    """
    import torch_pruning as tp

    was_training = model.training
    try:
        with torch.enable_grad(), warnings.catch_warnings():
            # parameters such as position embeddings: found below as blockers of their groups
            warnings.filterwarnings("ignore", message="Unwrapped parameters detected")
            graph = tp.DependencyGraph().build_dependency(model, example_inputs=_example_kwargs(example_inputs))
    except Exception as err:  # Torch-Pruning's tracer fails in many ways on models it cannot read
        raise ValueError(
            f"Torch-Pruning could not trace {type(model).__name__} on the example input ({type(err).__name__}: "
            f"{err}). Check that the example input is what forward takes, or use weight granularity."
        ) from err
    finally:
        model.train(was_training)
    names = {id(module): name for name, module in model.named_modules()}
    layers = {name: module for name, module in model.named_modules() if isinstance(module, LINKED_TYPES)}
    links = {
        name: LayerLinks(None, _output_count(module), _input_width(module), _is_depthwise(module))
        for name, module in layers.items()
        if module in graph.module2node
    }
    groups: list[ChannelGroup] = []
    for name, module in layers.items():
        if name not in links or links[name].group is not None:
            continue
        pruner = graph.get_pruner_of_module(module)
        size = pruner.get_out_channels(module)
        group = graph.get_pruning_group(module, pruner.prune_out_channels, list(range(size)))
        index = len(groups)
        members, consumers, blocker = [], [], None
        for item in group:
            target = names.get(id(item.dep.target.module))
            blocker = blocker or _blocker(tp, item, target)
            if target not in links:
                continue
            pairs = list(zip(item.idxs, item.root_idxs, strict=True))
            if graph.is_out_channel_pruning_fn(item.dep.handler):
                if sorted(pairs) == [(i, i) for i in range(size)] and links[target].outputs == size:
                    members.append(target)
            elif graph.is_in_channel_pruning_fn(item.dep.handler) and not links[target].depthwise:
                consumers.append((target, Counter(root for _, root in pairs)))
        for member in members:
            links[member].group = index
        for target, counts in consumers:
            links[target].inputs.extend((index, entry, count) for entry, count in sorted(counts.items()))
        order = [n for n in layers if n in members]
        groups.append(ChannelGroup(tuple(order), size, blocker))
    for name, module in model.named_modules():  # attention heads: a group of their own
        if isinstance(module, nn.MultiheadAttention):
            heads = int(module.num_heads)
            links[name] = LayerLinks(len(groups), heads, 1, depthwise=True)
            groups.append(ChannelGroup((name,), heads))
    return ChannelCoupling(groups, links)


def _output_count(module: nn.Module) -> int:
    return int(cast(int, module.out_features if isinstance(module, nn.Linear) else module.out_channels))
