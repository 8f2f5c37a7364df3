"""Sparsity statistics of masked layers: per-layer density, global sparsity, compression.

Counts are of *weights* in the masked layers (biases excluded), whatever the granularity: a
closed neuron mask closes its whole fan-in. ``compression = total / open``.

Examples:
    >>> import torch
    >>> from lightning_auxprune.parametrization import AuxMask
    >>> from lightning_auxprune.options import MaskOptions
    >>> mask = AuxMask(torch.ones(2, 4), MaskOptions(granularity="neuron"))
    >>> with torch.no_grad():
    ...     mask.aux[0] = -1.0
    >>> stats = layer_stats({"fc": mask})
    >>> stats[0].open, stats[0].total, summarize(stats).compression
    (4, 8, 2.0)

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lightning_auxprune.parametrization import AuxMask


@dataclass(frozen=True)
class LayerStats:
    """Open/total weights of one masked layer.

    Attributes:
        name: The layer's qualified name.
        shape: The weight's shape.
        total: Number of weights.
        open: Number of weights whose mask is open.
        units: Output units (neurons / filters).
        open_units: Units with at least one open weight.

    """

    name: str
    shape: tuple[int, ...]
    total: int
    open: int
    units: int
    open_units: int

    @property
    def density(self) -> float:
        """``open / total``."""
        return self.open / self.total


@dataclass(frozen=True)
class Summary:
    """Global figures over all masked layers."""

    total: int
    open: int

    @property
    def density(self) -> float:
        """Fraction of weights kept."""
        return self.open / self.total

    @property
    def sparsity(self) -> float:
        """Fraction of weights pruned."""
        return 1.0 - self.density

    @property
    def compression(self) -> float:
        """``total / open`` (``total`` when nothing is left, to stay finite)."""
        return self.total / max(self.open, 1)


def layer_stats(masks: Mapping[str, AuxMask]) -> list[LayerStats]:
    """One [`LayerStats`][lightning_auxprune.statistics.LayerStats] per masked layer, in ``masks`` order."""
    result = []
    for name, mask in masks.items():
        gate = mask.gate()
        fan_in = mask.fan_in()
        per_unit = gate.reshape(mask.weight_shape[0], -1).sum(dim=1) if fan_in == 1 else gate
        result.append(
            LayerStats(
                name=name,
                shape=mask.weight_shape,
                total=gate.numel() * fan_in,
                open=int(gate.sum()) * fan_in,
                units=mask.weight_shape[0],
                open_units=int((per_unit > 0).sum()),
            )
        )
    return result


def summarize(stats: Sequence[LayerStats]) -> Summary:
    """Add up per-layer counts.

    Examples:
        >>> summarize([LayerStats("a", (2,), 10, 5, 2, 1)]).sparsity
        0.5

    """
    return Summary(total=sum(s.total for s in stats), open=sum(s.open for s in stats))
