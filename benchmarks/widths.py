"""Layer widths of the structured grid's deployed networks: where each method spends its FLOPs budget.

Every record of :mod:`benchmarks.structured` stores the widths of the network it deployed
(``lightning_auxprune.export.shrink.layer_widths``). :func:`output_widths` reads each layer's
output width from them, :func:`mean_widths` averages those over a point's runs, and
:func:`widths_table` sets the methods' widths beside the dense network's, one row per layer.

Examples:
    >>> run = {"widths": {"conv": {"in_channels": 1, "out_channels": 8}, "bn": {"num_features": 8}}}
    >>> output_widths(run["widths"])
    {'conv': 8}
    >>> mean_widths([run, {"widths": {"conv": {"in_channels": 1, "out_channels": 11}}}])
    {'conv': 9.5}

"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

OUTPUT_ATTRS = ("out_channels", "out_features", "pruned_heads")
"""What counts as a layer's output width: a convolution's channels, a linear layer's features, an
attention block's heads (normalisation layers follow their producer and are left out)."""


def output_widths(widths: Mapping[str, Mapping[str, int]] | None) -> dict[str, int]:
    """``{layer: output width}`` of one record's ``widths`` (empty for records without them)."""
    found = {}
    for name, attrs in (widths or {}).items():
        attr = next((a for a in OUTPUT_ATTRS if a in attrs), None)
        if attr is not None:
            found[name] = attrs[attr]
    return found


def mean_widths(runs: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Each layer's output width averaged over the ``runs`` that recorded widths (older records did
    not): the layers all of them record, in network order; empty if none did."""
    per_run = [w for w in (output_widths(r.get("widths")) for r in runs) if w]
    if not per_run:
        return {}
    return {name: statistics.mean(w[name] for w in per_run) for name in per_run[0] if all(name in w for w in per_run)}


def widths_table(dense: Mapping[str, float], columns: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Markdown rows: one per layer that some column narrows, the dense width and each column's.

    Args:
        dense: The dense network's widths (:func:`mean_widths` of its runs).
        columns: ``{heading: widths}``, e.g. ``{"autoprune 0.25": ...}``; a column without a layer
            shows a dash there.

    Examples:
        >>> print("\\n".join(widths_table({"a": 32, "b": 10}, {"x 0.5": {"a": 8.0, "b": 10.0}})))
        | layer | dense | x 0.5 |
        |---|---|---|
        | a | 32 | 8 |

    """
    heads = list(columns)
    rows = ["| layer | dense | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(heads)]
    for name, width in dense.items():
        kept = [columns[h].get(name) for h in heads]
        if all(k is None or k == width for k in kept):
            continue
        cells = ["—" if k is None else f"{k:.0f}" if float(k).is_integer() else f"{k:.1f}" for k in kept]
        rows.append(f"| {name} | {width:.0f} | " + " | ".join(cells) + " |")
    return rows
