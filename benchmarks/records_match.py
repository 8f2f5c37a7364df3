"""Whether two record files hold the same results for the runs they share.

Compares every run present in both files (same model, method, setting, seed, epochs and
variant) on test and validation accuracy, compression and FLOPs ratio, digit for digit; step times
are left out (they are never equal). Exits 1 when a shared run differs or none is shared.

    python -m benchmarks.records_match benchmarks/results/rerun_engine.jsonl benchmarks/results/rerun_refactor.jsonl
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.harness import load_records

RESULTS = ("accuracy", "val_accuracy", "compression", "flops_ratio")


def differences(first: Path, second: Path) -> tuple[int, list[str]]:
    """(runs shared, one line per shared run whose results differ)."""
    a, b = load_records(first), load_records(second)
    shared = sorted(set(a) & set(b))
    lines = []
    for key in shared:
        changed = [
            f"{k} {getattr(a[key], k)!r} != {getattr(b[key], k)!r}"
            for k in RESULTS
            if getattr(a[key], k) != getattr(b[key], k)
        ]
        if changed:
            lines.append(f"{key}: " + ", ".join(changed))
    return len(shared), lines


def main(argv: list[str] | None = None) -> int:
    """Print the comparison; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    args = parser.parse_args(argv)
    shared, lines = differences(args.first, args.second)
    print("\n".join(lines) if lines else f"{shared} shared runs, identical results" if shared else "no shared runs")
    return 1 if lines or not shared else 0


if __name__ == "__main__":
    raise SystemExit(main())
