"""Sparsity statistics of masked layers: per-layer density, global sparsity, compression, the table.

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

from lightning_auxprune.flops import nonzero_flops
from lightning_auxprune.parametrization import AuxMask


@dataclass(frozen=True)
class LayerStats:
    """Open/total weights of one masked layer.

    Attributes:
        name: The layer's qualified name.
        shape: The weight's shape.
        total: Number of weights.
        open: Number of weights whose mask is open.
        units: Output units (neurons / filters; attention heads for a head mask).
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
                units=mask.heads or mask.weight_shape[0],
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


def layer_table(
    stats: Sequence[LayerStats],
    dense_flops: Mapping[str, float] | None = None,
    kept_flops: Mapping[str, float] | None = None,
    ratio: float | None = None,
) -> str:
    """Format per-layer counts, densities and (if known) FLOPs as a plain-text table.

    Args:
        stats: Per-layer statistics of the masked layers.
        dense_flops: Dense FLOPs per layer name (layers absent from ``stats`` count as dense).
        kept_flops: Kept FLOPs per layer name (default: dense FLOPs times the layer's density).
        ratio: The model's kept FLOPs ratio for the last line (default: the layers' kept / dense).

    Examples:
        >>> print(layer_table([LayerStats("fc", (2, 4), 8, 2, 2, 1)], {"fc": 16}))  # doctest: +NORMALIZE_WHITESPACE
        layer   shape      weights  kept  density  units kept/all  FLOPs dense  FLOPs kept
        fc      (2, 4)     8        2     25.00%   1/2             16           4
        total              8        2     25.00%                   16           4
        compression 4.0x, FLOPs kept 25.00%

    """
    flops = dict(dense_flops or {})
    densities = {s.name: s.density for s in stats}
    kept_of = (
        dict(kept_flops)
        if kept_flops is not None
        else {n: nonzero_flops(f, densities.get(n, 1.0)) for n, f in flops.items()}
    )
    header = ["layer", "shape", "weights", "kept", "density", "units kept/all", "FLOPs dense", "FLOPs kept"]
    rows = []
    for s in stats:
        dense = flops.get(s.name)
        kept = "" if dense is None else f"{kept_of.get(s.name, dense):.0f}"
        rows.append(
            [
                s.name,
                str(s.shape),
                str(s.total),
                str(s.open),
                f"{s.density:.2%}",
                f"{s.open_units}/{s.units}",
                "" if dense is None else f"{dense:.0f}",
                kept,
            ]
        )
    summary = summarize(stats)
    total_dense = sum(flops.values())
    total_kept = sum(kept_of.get(n, f) for n, f in flops.items())
    rows.append(
        [
            "total",
            "",
            str(summary.total),
            str(summary.open),
            f"{summary.density:.2%}",
            "",
            f"{total_dense:.0f}" if flops else "",
            f"{total_kept:.0f}" if flops else "",
        ]
    )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    tail = f"compression {summary.compression:.1f}x"
    if ratio is not None or total_dense:
        tail += f", FLOPs kept {ratio if ratio is not None else total_kept / total_dense:.2%}"
    return "\n".join([*lines, tail])
