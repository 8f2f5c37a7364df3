"""The per-layer table printed at the end of training.

Examples:
    >>> from lightning_auxprune.statistics import LayerStats
    >>> print(layer_table([LayerStats("fc", (2, 4), 8, 2, 2, 1)], {"fc": 16}))  # doctest: +NORMALIZE_WHITESPACE
    layer   shape      weights  kept  density  units kept/all  FLOPs dense  FLOPs kept
    fc      (2, 4)     8        2     25.00%   1/2             16           4
    total              8        2     25.00%                   16           4
    compression 4.0x, FLOPs kept 25.00%

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lightning_auxprune.flops import nonzero_flops
from lightning_auxprune.statistics import LayerStats, summarize


def layer_table(stats: Sequence[LayerStats], dense_flops: Mapping[str, int] | None = None) -> str:
    """Format per-layer counts, densities and (if known) FLOPs as a plain-text table.

    Args:
        stats: Per-layer statistics of the masked layers.
        dense_flops: Dense FLOPs per layer name (layers absent from ``stats`` count as dense).

    """
    flops = dict(dense_flops or {})
    header = ["layer", "shape", "weights", "kept", "density", "units kept/all", "FLOPs dense", "FLOPs kept"]
    rows = []
    for s in stats:
        dense = flops.get(s.name)
        kept = "" if dense is None else f"{nonzero_flops(dense, s.density):.0f}"
        rows.append(
            [
                s.name,
                str(s.shape),
                str(s.total),
                str(s.open),
                f"{s.density:.2%}",
                f"{s.open_units}/{s.units}",
                "" if dense is None else str(dense),
                kept,
            ]
        )
    summary = summarize(stats)
    densities = {s.name: s.density for s in stats}
    total_dense = sum(flops.values())
    total_kept = sum(nonzero_flops(f, densities.get(n, 1.0)) for n, f in flops.items())
    rows.append(
        [
            "total",
            "",
            str(summary.total),
            str(summary.open),
            f"{summary.density:.2%}",
            "",
            str(total_dense) if flops else "",
            f"{total_kept:.0f}" if flops else "",
        ]
    )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    tail = f"compression {summary.compression:.1f}x"
    if total_dense:
        tail += f", FLOPs kept {total_kept / total_dense:.2%}"
    return "\n".join([*lines, tail])
