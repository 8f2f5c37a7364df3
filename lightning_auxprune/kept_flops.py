r"""The fraction of its dense FLOPs a model keeps, computed on the device from the masks.

One function of the masks serves the logged ``auxprune/flops_ratio``, the lambda controller of a
``target_flops`` run, the bound on overshooting it, and the benchmarks.

* **Weight masks** keep the FLOPs whose weight operand is non-zero: every weight of a Linear/Conv
  layer takes part in the same number of multiply-adds, so layer ``l`` keeps ``F_l * density_l``.
* **Neuron masks** keep what [`shrink`][lightning_auxprune.export.shrink.shrink] leaves. A channel
  of a coupled group (see [`lightning_auxprune.coupling`][lightning_auxprune.coupling]) is removed
  when every mask over it is closed and no unmasked layer produces it; layer ``l`` then keeps

  $$F_l \cdot \frac{o_l}{O_l} \cdot \frac{i_l}{I_l}$$

  with ``o_l``/``O_l`` its kept/dense output channels and ``i_l``/``I_l`` its kept/dense input
  features (a closed channel of the layer before removes its input features; a depthwise
  convolution's FLOPs follow its outputs alone).

``F_l`` is layer ``l``'s FLOPs over every call in one forward pass, and the ratio's denominator is
the model's whole forward (attention products and other layers included), both counted by
``torch.utils.flop_counter.FlopCounterMode``.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> from lightning_auxprune.coupling import channel_coupling
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> x = torch.zeros(1, 4)
    >>> total, per_layer = layer_flops(net, x)
    >>> kept = KeptFlops.units(total, per_layer, channel_coupling(net, x), {"0": 0}, [8])
    >>> gates = torch.tensor([1.0, 1, 1, 1, 0, 0, 0, 0])  # half of layer 0's units open
    >>> float(kept.batch(gates[None])[0])  # both layers lose half their FLOPs
    0.5

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lightning_auxprune.coupling import LINKED_TYPES, ChannelCoupling
from lightning_auxprune.flops import counted_attention

RATIO_DTYPE = torch.float64


def layer_flops(model: nn.Module, example_inputs: Any) -> tuple[float, dict[str, float]]:
    """FLOPs of one forward of ``model``, in total and per Linear/Conv layer (all its calls).

    An ``nn.MultiheadAttention`` block counts as one layer (projections and attention products),
    and ``"<block>.in_proj_weight"`` holds the part its packed input projection computes (what
    weight masks on it scale). Runs in eval mode without gradients; the training flag is restored.

    Examples:
        >>> net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
        >>> layer_flops(net, torch.zeros(2, 4))
        (72.0, {'0': 48.0, '1': 24.0})

    """
    counter = FlopCounterMode(display=False)
    per_layer: dict[str, float] = {}
    started: dict[str, list[int]] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            handles.append(module.register_forward_pre_hook(_in_projection(per_layer, name), with_kwargs=True))
        if isinstance(module, (*LINKED_TYPES, nn.MultiheadAttention)) and "_orig_mod" not in module._modules:

            def before(_m: nn.Module, _a: Any, name: str = name) -> None:
                started.setdefault(name, []).append(counter.get_total_flops())

            def after(_m: nn.Module, _a: Any, _o: Any, name: str = name) -> None:
                per_layer[name] = per_layer.get(name, 0.0) + counter.get_total_flops() - started[name].pop()

            handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    inputs = example_inputs if isinstance(example_inputs, (tuple, dict)) else (example_inputs,)
    was_training = model.training
    model.eval()
    try:
        with counter, torch.no_grad(), counted_attention():
            model(**inputs) if isinstance(inputs, dict) else model(*inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return float(counter.get_total_flops()), per_layer


def _in_projection(per_layer: dict[str, float], name: str) -> Any:
    """A hook adding the FLOPs of an attention block's packed q/k/v projection for one call."""

    def record(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        given = [*args, *(kwargs[k] for k in ("query", "key", "value") if k in kwargs)][:3]
        embed = int(module.embed_dim)  # type: ignore[arg-type]
        tokens = sum(t.numel() // embed for t in given if isinstance(t, torch.Tensor))
        key = f"{name}.in_proj_weight"
        per_layer[key] = per_layer.get(key, 0.0) + 2.0 * embed * embed * tokens

    return record


class KeptFlops:
    """Kept FLOPs / dense FLOPs from the masks' 0/1 gates, for a batch of gate vectors at once.

    Gates are laid out flat: every mask's entries one after the other, in mask order. Build with
    [`weights`][lightning_auxprune.kept_flops.KeptFlops.weights] or
    [`units`][lightning_auxprune.kept_flops.KeptFlops.units]; evaluate with
    [`batch`][lightning_auxprune.kept_flops.KeptFlops.batch] (no host sync).

    Attributes:
        total: Dense FLOPs of one forward.
        per_layer: Dense FLOPs per Linear/Conv layer.
        savings: FLOPs one closed entry of each mask removes from the dense model, as a fraction of
            ``total`` (an entry shared by several per-layer masks counts a share for each).
    """

    def __init__(self, total: float, per_layer: Mapping[str, float], sizes: Sequence[int]) -> None:
        self.total = total or 1.0
        self.per_layer = {k: v for k, v in per_layer.items() if not k.endswith(".in_proj_weight")}
        self._masked: dict[str, float] = {}  # per layer, the FLOPs its mask scales (attention: the q/k/v part)
        self.sizes = list(sizes)
        self.savings: list[float] = []
        self._tensors: dict[str, torch.Tensor] = {}
        self._structured = False
        self.layer_names: list[str] = []
        self.base = 0.0
        """The share of the FLOPs no mask can change."""

    @classmethod
    def weights(
        cls, total: float, per_layer: Mapping[str, float], layers: Mapping[str, int], sizes: Sequence[int]
    ) -> KeptFlops:
        """For weight masks: ``layers`` maps each masked layer to its mask's index.

        Examples:
            >>> kept = KeptFlops.weights(10.0, {"a": 8.0}, {"a": 0}, [4])
            >>> round(float(kept.batch(torch.tensor([[1.0, 0, 0, 0]]))[0]), 6)
            0.4

        """
        self = cls(total, per_layer, sizes)
        coefficient = [0.0] * len(sizes)
        for layer, mask in layers.items():
            layer_total = per_layer.get(f"{layer}.in_proj_weight", per_layer.get(layer, 0.0))  # attention: q/k/v
            coefficient[mask] += layer_total / self.total
        self._tensors = {
            "coefficient": torch.tensor(coefficient, dtype=RATIO_DTYPE),
            "sizes": torch.tensor(sizes, dtype=RATIO_DTYPE),
        }
        self.base = 1.0 - sum(coefficient)
        self.layer_names = list(layers)
        self._tensors["layer_mask"] = torch.tensor([layers[n] for n in self.layer_names], dtype=torch.long)
        self._masked = {n: per_layer.get(f"{n}.in_proj_weight", per_layer.get(n, 0.0)) for n in self.layer_names}
        self._tensors["layer_flops"] = torch.tensor(list(self._masked.values()), dtype=RATIO_DTYPE)
        self.savings = [c / n for c, n in zip(coefficient, sizes, strict=True)]
        return self

    @classmethod
    def units(
        cls,
        total: float,
        per_layer: Mapping[str, float],
        coupling: ChannelCoupling,
        layers: Mapping[str, int],
        sizes: Sequence[int],
    ) -> KeptFlops:
        """For neuron masks: ``layers`` maps each masked layer to its mask's index.

        A mask covers its layers' output channels, which are their group's entries in order.

        Raises:
            ValueError: If a masked layer is not in ``coupling`` or its mask's size differs from its group's.
        """
        self = cls(total, per_layer, sizes)
        self._structured = True
        offsets, start = [], 0
        for channel_group in coupling.groups:
            offsets.append(start)
            start += channel_group.size
        masked_groups: dict[int, list[int]] = {}
        for layer, mask in layers.items():
            group = coupling.group_of(layer)
            if group is None or coupling.groups[group].size != sizes[mask]:
                raise ValueError(f"Layer {layer!r} has no channel group of {sizes[mask]} outputs to count FLOPs by.")
            masked_groups.setdefault(group, [])
            if mask not in masked_groups[group]:
                masked_groups[group].append(mask)
        mask_offsets = [sum(sizes[:k]) for k in range(len(sizes))]
        entry_of = torch.zeros(sum(sizes), dtype=torch.long)
        constant = torch.ones(start, dtype=RATIO_DTYPE)
        for group in masked_groups:
            producers = set(coupling.groups[group].layers)
            if not producers <= set(layers) or coupling.groups[group].blocker is not None:
                continue  # an unmasked layer produces these channels, or they cannot be removed: they stay
            constant[offsets[group] : offsets[group] + coupling.groups[group].size] = 0.0
        for group, masks in masked_groups.items():
            for mask in masks:
                span = torch.arange(sizes[mask])
                entry_of[mask_offsets[mask] + span] = offsets[group] + span
        out_layer: list[int] = []
        out_entry: list[int] = []
        in_layer: list[int] = []
        in_entry: list[int] = []
        in_count: list[float] = []
        flops: list[float] = []
        out_total: list[float] = []
        in_total: list[float] = []
        out_fixed: list[float] = []
        in_fixed: list[float] = []
        for index, (name, link) in enumerate(
            (n, link) for n, link in coupling.links.items() if per_layer.get(n, 0.0) > 0
        ):
            self.layer_names.append(name)
            flops.append(per_layer[name])
            out_total.append(float(link.outputs))
            if link.group is None:
                out_fixed.append(float(link.outputs))
            else:
                out_fixed.append(0.0)
                size = coupling.groups[link.group].size
                out_layer += [index] * size
                out_entry += range(offsets[link.group], offsets[link.group] + size)
            tied = sum(count for _, _, count in link.inputs)
            in_total.append(float(link.input_width))
            in_fixed.append(float(link.input_width - tied))
            for group, entry, count in link.inputs:
                in_layer.append(index)
                in_entry.append(offsets[group] + entry)
                in_count.append(float(count))
        self._tensors = {
            "entry_of": entry_of,
            "constant": constant,
            "flops": torch.tensor(flops, dtype=RATIO_DTYPE),
            "out_total": torch.tensor(out_total, dtype=RATIO_DTYPE),
            "in_total": torch.tensor(in_total, dtype=RATIO_DTYPE),
            "out_fixed": torch.tensor(out_fixed, dtype=RATIO_DTYPE),
            "in_fixed": torch.tensor(in_fixed, dtype=RATIO_DTYPE),
            "out_layer": torch.tensor(out_layer, dtype=torch.long),
            "out_entry": torch.tensor(out_entry, dtype=torch.long),
            "in_layer": torch.tensor(in_layer, dtype=torch.long),
            "in_entry": torch.tensor(in_entry, dtype=torch.long),
            "in_count": torch.tensor(in_count, dtype=RATIO_DTYPE),
        }
        self.base = float(self._tensors["flops"].sum()) / self.total  # share of Linear/Conv FLOPs
        self.base = 1.0 - self.base
        self.savings = self._entry_savings(masked_groups)
        return self

    def _entry_savings(self, masked_groups: Mapping[int, list[int]]) -> list[float]:
        """FLOPs (fraction of ``total``) one closed entry of each mask removes from the dense model.

        Each mask's group is closed in turn (all its masks: a channel closes only when all do), in
        one batch; the saving is shared evenly among the group's masks and entries.
        """
        starts = [sum(self.sizes[:k]) for k in range(len(self.sizes))]
        probes = torch.ones(len(self.sizes) + 1, sum(self.sizes), dtype=RATIO_DTYPE)
        sharing = [1] * len(self.sizes)
        for masks in masked_groups.values():
            for mask in masks:
                sharing[mask] = len(masks)
                for other in masks:
                    probes[mask, starts[other] : starts[other] + self.sizes[other]] = 0.0
        kept = self.batch(probes).tolist()
        return [(kept[-1] - kept[k]) / (sharing[k] * self.sizes[k]) for k in range(len(self.sizes))]

    def to(self, device: torch.device) -> None:
        """Move the index tensors to ``device``."""
        self._tensors = {k: v.to(device) for k, v in self._tensors.items()}

    def batch(self, gates: torch.Tensor) -> torch.Tensor:
        """Kept FLOPs ratio for each row of ``gates`` (``[J, entries]``, 0/1) as ``[J]`` float64."""
        return self.base + self._layers_kept(gates).sum(dim=1) / self.total

    def _layers_kept(self, gates: torch.Tensor, open_entries: torch.Tensor | None = None) -> torch.Tensor:
        """Kept FLOPs of each layer in ``layer_names`` for each row of ``gates``, ``[J, layers]``.

        Weight masks need only the open entries per mask (``open_entries``, ``[J, masks]``).
        """
        device = gates.device if open_entries is None else open_entries.device
        if next(iter(self._tensors.values())).device != device:
            self.to(device)
        t = self._tensors  # after the move: it replaces the dict
        if not self._structured:
            if open_entries is None:  # no index per weight: a model's weight count of them would be large
                parts = torch.split(gates.to(RATIO_DTYPE), self.sizes, dim=1)
                open_entries = torch.stack([part.sum(dim=1) for part in parts], dim=1)
            return (open_entries.to(RATIO_DTYPE) / t["sizes"])[:, t["layer_mask"]] * t["layer_flops"]
        gates = gates.to(RATIO_DTYPE)
        rows = gates.shape[0]
        entries = t["constant"].expand(rows, -1).clone()
        entries.scatter_reduce_(1, t["entry_of"].expand(rows, -1), gates, reduce="amax")
        layers = t["flops"].numel()
        out_open = gates.new_zeros(rows, layers).index_add_(1, t["out_layer"], entries[:, t["out_entry"]])
        in_open = gates.new_zeros(rows, layers).index_add_(1, t["in_layer"], entries[:, t["in_entry"]] * t["in_count"])
        kept = (out_open + t["out_fixed"]) / t["out_total"] * (in_open + t["in_fixed"]) / t["in_total"]
        return kept * t["flops"]

    def _rows(self, gates: Sequence[torch.Tensor], open_entries: torch.Tensor) -> torch.Tensor:
        """``[1, layers]`` kept FLOPs: weight masks from ``open_entries``, neuron masks from the flat gates."""
        if not self._structured:
            return self._layers_kept(open_entries, open_entries.unsqueeze(0))
        return self._layers_kept(torch.cat([g.reshape(-1) for g in gates]).unsqueeze(0))

    def ratio(self, gates: Sequence[torch.Tensor], open_entries: torch.Tensor) -> torch.Tensor:
        """Kept FLOPs ratio of the masks' gates (one per mask; ``open_entries``: their sums), 0-d, no sync."""
        return self.base + self._rows(gates, open_entries)[0].sum() / self.total

    def layers_kept(self, gates: Sequence[torch.Tensor], open_entries: torch.Tensor) -> dict[str, float]:
        """Kept FLOPs per Linear/Conv layer for the masks' gates (reads the device once)."""
        kept = self._rows(gates, open_entries)[0].tolist()
        fixed = {
            n: self.per_layer.get(n, 0.0) - self._masked.get(n, self.per_layer.get(n, 0.0)) for n in self.layer_names
        }
        return {**self.per_layer, **{n: fixed[n] + k for n, k in zip(self.layer_names, kept, strict=True)}}
