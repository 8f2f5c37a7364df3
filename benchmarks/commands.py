"""What every benchmark script shares on its command line: the quick-mode budget and the command
line it writes next to the numbers it generates.

Example:
    >>> command_line("benchmarks.overhead", ["--quick"])
    'python -m benchmarks.overhead --quick'

"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch


def add_outputs(parser: argparse.ArgumentParser, out: str, markdown: str | None = None) -> None:
    """``--out`` (the results file) and, when the script writes one, ``--markdown`` (its generated docs page)."""
    parser.add_argument("--out", default=out, help="results file")
    if markdown is not None:
        parser.add_argument("--markdown", default=markdown, help="generated docs page")


def write_output(path: str | Path, text: str) -> None:
    """Write a generated file (results or docs page), creating its folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)


def publish(out: str | Path, markdown_path: str | Path, results: dict[str, Any], page: str) -> None:
    """Write a script's results as JSON to ``out`` and its generated docs page to ``markdown_path``; print the page."""
    write_output(out, json.dumps(results, indent=2))
    write_output(markdown_path, page)
    print(page)


def add_accelerator(parser: argparse.ArgumentParser) -> None:
    """``--accelerator cpu|gpu``, accepted by every benchmark script."""
    parser.add_argument(
        "--accelerator", default="cpu", choices=["cpu", "gpu"], help="where to train or time (gpu: CUDA device 0)"
    )


def device_of(accelerator: str) -> torch.device:
    """The torch device of ``--accelerator``, with a clear error when no GPU is there.

    Example:
        >>> device_of("cpu")
        device(type='cpu')

    """
    if accelerator == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise SystemExit("--accelerator gpu: torch sees no CUDA device here (torch.cuda.is_available() is False).")
    return torch.device("cuda", 0)


def add_training_data(parser: argparse.ArgumentParser) -> None:
    """``--epochs``, ``--data-dir``, ``--val-size``, ``--train-subset``: what every training benchmark takes."""
    parser.add_argument("--epochs", type=int, default=None, help="override the per-model budget")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--val-size", type=int, default=5000, help="training images held out for validation")
    parser.add_argument("--train-subset", type=int, default=None, help="train on the first N images only")


def apply_quick(args: argparse.Namespace) -> None:
    """The ``--quick`` training budget: 2 epochs on 400 training and 100 validation images."""
    args.epochs, args.train_subset, args.val_size = 2, 400, 100


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The command that reproduces this run (``argv`` as given, or the process's arguments)."""
    return " ".join(["python -m " + module, *(argv if argv is not None else sys.argv[1:])])
