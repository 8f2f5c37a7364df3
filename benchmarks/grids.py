"""The two training grids a per-run script (:mod:`benchmarks.trace`, :mod:`benchmarks.spread`) can draw from.

``--structured`` picks :mod:`benchmarks.structured` (neuron masks and Torch-Pruning at a FLOPs
budget); without it, :mod:`benchmarks.compare` (weight and neuron pruning at a sparsity target).
"""

from __future__ import annotations

import argparse
from types import ModuleType

from benchmarks import compare, structured


def add_grid(parser: argparse.ArgumentParser, model: str, methods: list[str], dense: bool = False) -> None:
    """``--structured``, ``--model`` and ``--methods`` (or ``--method`` when ``methods`` has one entry).

    ``dense``: offer ``"dense"`` (no pruning) among the methods, as a control.
    """
    parser.add_argument("--structured", action="store_true", help="a method of benchmarks.structured (a FLOPs budget)")
    parser.add_argument("--model", default=model, choices=sorted({*compare.GRID, *structured.MODELS}))
    names = sorted({*(m for m in compare.METHODS if m != "dense"), *structured.METHODS, *(["dense"] if dense else [])})
    if len(methods) == 1:
        parser.add_argument("--method", default=methods[0], choices=names)
    else:
        parser.add_argument("--methods", nargs="+", default=methods, choices=names)


def chosen_grid(parser: argparse.ArgumentParser, args: argparse.Namespace) -> ModuleType:
    """The grid module of ``args`` (its ``run`` trains one run); a model or method it lacks is a usage error."""
    grid = structured if args.structured else compare
    models, methods = (structured.MODELS, structured.METHODS) if args.structured else (compare.GRID, compare.METHODS)
    asked = getattr(args, "methods", None) or [args.method]
    if args.model not in models or any(m not in methods and m != "dense" for m in asked):
        parser.error(f"--model {args.model} with {asked} is not in {grid.__name__}")
    return grid
