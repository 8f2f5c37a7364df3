"""How lambda, the sparsity and the target move during one benchmark run.

Trains one configuration of :mod:`benchmarks.compare` with a CSV logger and prints, every
``--every`` steps, what the callback logged: lambda, the pruned fraction, the target of the
ramp, and the masks closed and reopened since the previous log. Use it to see why a run missed
its target. The CSV stays in ``--out``.

    OMP_NUM_THREADS=1 python -m benchmarks.trace --model lenet300100 --method autoprune_target_sgd --setting 0.95
    python -m benchmarks.trace --structured --model vgg --method autoprune --setting 0.35 --train-subset 10000
    python -m benchmarks.trace --quick --data-dir <dir>

A run repeats exactly at the same number of CPU threads (which sets the order of floating-point
sums): ``OMP_NUM_THREADS=1`` repeats the recorded ``autoprune_target`` and ``autoprune_target_sgd``
runs, which ran on one thread each.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger

from benchmarks.commands import add_accelerator, add_training_data, apply_quick, command_line
from benchmarks.grids import add_grid, chosen_grid
from benchmarks.harness import Record

COLUMNS = {
    "step": "step",
    "auxprune/lambda": "lambda",
    "auxprune/sparsity": "pruned",
    "auxprune/flops_ratio": "flops",
    "auxprune/target": "target",
    "auxprune/pruned": "closed",
    "auxprune/recovered": "reopened",
}


def read_trace(metrics_csv: Path, every: int) -> list[dict[str, float]]:
    """The callback's rows of a Lightning ``metrics.csv`` (those with lambda), one per ``every`` steps.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "metrics.csv"
        >>> _ = path.write_text("step,auxprune/lambda,val/acc\\n49,0.001,\\n99,,0.8\\n99,0.002,\\n")
        >>> [row["lambda"] for row in read_trace(path, every=1)]
        [0.001, 0.002]

    """
    rows = []
    last = None
    with metrics_csv.open() as handle:
        for raw in csv.DictReader(handle):
            if not raw.get("auxprune/lambda"):
                continue
            step = int(raw["step"])
            if last is not None and step - last < every:
                continue
            last = step
            rows.append({name: float(raw[key]) for key, name in COLUMNS.items() if raw.get(key)})
    return rows


def format_trace(rows: list[dict[str, float]]) -> str:
    """A fixed-width table of :func:`read_trace` rows."""
    lines = [f"{'step':>6} {'lambda':>10} {'pruned':>8} {'FLOPs':>8} {'target':>8} {'closed':>9} {'reopened':>9}"]
    for row in rows:
        lines.append(
            f"{row['step']:>6.0f} {row['lambda']:>10.3g} {row['pruned']:>8.4f} {row.get('flops', float('nan')):>8.4f} "
            f"{row.get('target', float('nan')):>8.4f} {row.get('closed', 0.0):>9.0f} {row.get('reopened', 0.0):>9.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> tuple[Record, list[dict[str, float]]]:
    """Train one run with a CSV logger, print its trace."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_grid(parser, "lenet300100", ["autoprune_target"])
    parser.add_argument("--setting", type=float, default=0.99)
    parser.add_argument("--seed", type=int, default=0)
    add_training_data(parser)
    parser.add_argument("--every", type=int, default=400, help="print one logged row per this many steps")
    parser.add_argument("--out", default="runs/trace", help="folder of the CSV logs")
    parser.add_argument("--quick", action="store_true", help="2 epochs on 400 images")
    add_accelerator(parser)
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error(f"--every {args.every}: must be >= 1")
    if args.quick:
        apply_quick(args)
    logger = CSVLogger(args.out, name=f"{args.model}_{args.method}_{args.setting:g}_seed{args.seed}")
    grid = chosen_grid(parser, args)
    record = grid.run(args.model, args.method, args.setting, args.seed, args, logger=logger)
    rows = read_trace(Path(logger.log_dir) / "metrics.csv", args.every)
    if not rows:
        raise SystemExit(f"{args.method} logged no lambda: only AutoPrune methods have a trace.")
    print(f"# {command_line('benchmarks.trace', argv)}")
    print(format_trace(rows))
    print(
        f"# test accuracy {100 * record.accuracy:.2f}%, compression {record.compression:.1f}x, "
        f"FLOPs ratio {record.flops_ratio:.4f}; CSV: {Path(logger.log_dir) / 'metrics.csv'}"
    )
    return record, rows


if __name__ == "__main__":
    main()
