"""Run one method under several named AuxMaskPruning overrides (shared by ablations and switches).

Each seed gets one dense run (for the accuracy drop) and one run per variant; every record is
appended to a JSONL file as soon as it exists, with ``variant`` set to its name.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

from benchmarks.commands import add_accelerator, add_outputs, add_training_data, command_line, write_output
from benchmarks.compare import budget, run
from benchmarks.harness import Record, append_record, load_records


def run_variants(
    model: str,
    method: str,
    setting: float,
    variants: dict[str, dict[str, Any]],
    args: argparse.Namespace,
    out: Path,
) -> tuple[list[Record], dict[int, float]]:
    """Train ``variants`` for every seed in ``args.seeds``; return the records and dense accuracies.

    Runs already in ``out`` (same model, method, setting, seed, epochs and variant name) are kept,
    not repeated, so an interrupted run, or one with more seeds, resumes; a seed whose variants
    are all there also skips its dense run (its accuracy is in their records).
    """
    done = load_records(out)
    records: list[Record] = []
    dense: dict[int, float] = {}
    for seed in args.seeds:
        epochs = budget(model, args)
        previous = {name: done.get((model, method, setting, seed, epochs, name)) for name in variants}
        found = [r for r in previous.values() if r is not None]
        if len(found) == len(variants):
            dense[seed] = cast(float, found[0].dense_accuracy)
        else:
            dense[seed] = run(model, "dense", 0.0, seed, args).accuracy
        for name, overrides in variants.items():
            record = previous[name]
            if record is None:
                record = run(model, method, setting, seed, args, overrides)
                record.variant, record.dense_accuracy = name, dense[seed]
                append_record(out, record)
            records.append(record)
    return records, dense


def run_and_write(
    script: str,
    model: str,
    method: str,
    setting: float,
    variants: dict[str, dict[str, Any]],
    args: argparse.Namespace,
    argv: list[str] | None,
    page: Callable[[list[dict[str, Any]], dict[int, float], str], str],
) -> list[Record]:
    """:func:`run_variants`, then write ``page(records, dense accuracies, command)`` to ``args.markdown``."""
    records, dense = run_variants(model, method, setting, variants, args, Path(args.out))
    write_output(args.markdown, page([asdict(r) for r in records], dense, command_line(script, argv)))
    return records


def common_arguments(description: str | None, out: str, markdown: str, seeds: list[int]) -> argparse.ArgumentParser:
    """The command-line arguments every variant script takes."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=seeds)
    add_training_data(parser)
    add_outputs(parser, out, markdown)
    parser.add_argument("--quick", action="store_true", help="2 epochs on 400 images, two variants")
    add_accelerator(parser)
    return parser


def variant_means(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per variant name, the mean over seeds of accuracy, val_accuracy, compression, flops_ratio.

    ``accuracy_std`` is the standard deviation of the test accuracy over seeds (0 for one seed).

    Example:
        >>> rows = [{"variant": "a", "accuracy": 0.8, "val_accuracy": 0.8, "compression": 10.0, "flops_ratio": 0.1},
        ...         {"variant": "a", "accuracy": 0.9, "val_accuracy": 0.7, "compression": 30.0, "flops_ratio": 0.3}]
        >>> variant_means(rows)["a"]["compression"]
        20.0

    """
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[r["variant"]].append(r)
    keys = ("accuracy", "val_accuracy", "compression", "flops_ratio")
    means = {name: {k: statistics.mean(r[k] for r in runs) for k in keys} for name, runs in groups.items()}
    for name, runs in groups.items():
        means[name]["accuracy_std"] = statistics.stdev(r["accuracy"] for r in runs) if len(runs) > 1 else 0.0
    return means
