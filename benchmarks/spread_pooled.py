"""Whether a method's run-to-run spread is larger than its peer's, pooled over seeds.

One seed's spread comes from four runs: its standard deviation has three degrees of freedom and
moves by about 40% from one seed to the next. Pooling every seed's deviations from its own mean
gives a firmer estimate, and a permutation test says how often the two methods' deviations,
relabelled at random, would make the method look at least as spread as it measured.

Example:
    >>> runs = [("a", 0.80), ("a", 0.84), ("b", 0.81), ("b", 0.82)]
    >>> rows = [{"method": m, "seed": 0, "accuracy": a} for m, a in runs]
    >>> round(pooled_std(deviations(rows, "a")), 4), round(pooled_std(deviations(rows, "b")), 4)
    (0.0283, 0.0071)

"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterable
from typing import Any

PEERS = {"structured": "tp_l1", "": "gmp"}
"""The peer each grid's methods are compared with: a criterion pruned along the same schedule
(Torch-Pruning L1 along the cubic ramp for neuron pruning, GMP for weight pruning)."""


def deviations(rows: Iterable[dict[str, Any]], method: str) -> list[float]:
    """Each run's accuracy minus the mean of its seed's runs, scaled so their mean square is unbiased.

    Every seed with at least two runs adds its deviations times ``sqrt(n / (n - 1))``: the mean
    square of one seed's scaled deviations is its sample variance.
    """
    by_seed: dict[int, list[float]] = {}
    for row in rows:
        if row["method"] == method:
            by_seed.setdefault(row["seed"], []).append(row["accuracy"])
    out: list[float] = []
    for accuracies in by_seed.values():
        if len(accuracies) > 1:
            mean, scale = statistics.fmean(accuracies), math.sqrt(len(accuracies) / (len(accuracies) - 1))
            out += [(a - mean) * scale for a in accuracies]
    return out


def pooled_std(values: list[float]) -> float:
    """Root mean square of :func:`deviations`: the standard deviation pooled over seeds."""
    return math.sqrt(statistics.fmean(v * v for v in values))


def larger_spread_p(method: list[float], peer: list[float], permutations: int = 10_000, seed: int = 0) -> float:
    """One-sided permutation p-value that ``method``'s deviations spread more than ``peer``'s.

    The statistic is the ratio of mean squares; the labels of the pooled deviations are shuffled
    ``permutations`` times (a fixed ``seed``, so the report regenerates the same number).
    Approximate: deviations from a seed's own mean are not quite exchangeable.
    """
    if not method or not peer:
        raise ValueError("both methods need a seed with at least two runs")
    own, other = pooled_std(method), pooled_std(peer)
    pool, n, rng, hits = [*method, *peer], len(method), random.Random(seed), 0
    for _ in range(permutations):
        rng.shuffle(pool)
        hits += pooled_std(pool[:n]) * other >= own * pooled_std(pool[n:])  # ratios, without dividing by 0
    return (hits + 1) / (permutations + 1)


def table(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown lines: per grid, model and setting, each method's pooled spread against its grid's peer."""
    lines = [
        "| grid | model | setting | method | seeds | runs | pooled accuracy std | std / peer's | "
        "p (spreads more than the peer) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, model, setting in sorted({(r["variant"], r["model"], r["setting"]) for r in rows}):
        group = [r for r in rows if (r["variant"], r["model"], r["setting"]) == (variant, model, setting)]
        peer_name = PEERS.get(variant)
        peer = deviations(group, peer_name) if peer_name else []
        for method in sorted({r["method"] for r in group}):
            own = deviations(group, method)
            if not own:
                continue
            seeds = len({r["seed"] for r in group if r["method"] == method})
            if method == peer_name:
                versus = "peer | -"
            elif peer:
                ratio = pooled_std(own) / pooled_std(peer) if any(peer) else math.inf
                versus = f"{ratio:.2f} | {larger_spread_p(own, peer):.2f}"
            else:
                versus = "- | -"
            lines.append(
                f"| {variant or 'compare'} | {model} | {setting:g} | {method} | {seeds} | {len(own)} "
                f"| {pooled_std(own) * 100:.2f} pt | {versus} |"
            )
    return lines
