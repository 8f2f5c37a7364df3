"""What every benchmark script shares on its command line: the quick-mode budget and the command
line it writes next to the numbers it generates.

Example:
    >>> command_line("benchmarks.cost", ["--quick"])
    'python -m benchmarks.cost --quick'

"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def apply_quick(args: argparse.Namespace) -> None:
    """The ``--quick`` training budget: 2 epochs on 400 training and 100 validation images."""
    args.epochs, args.train_subset, args.val_size = 2, 400, 100


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The command that reproduces this run (``argv`` as given, or the process's arguments)."""
    return " ".join(["python -m " + module, *(argv if argv is not None else sys.argv[1:])])
