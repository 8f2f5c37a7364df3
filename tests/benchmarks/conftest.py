"""Shared fixtures of the benchmark tests: a structured grid's records file made from closed networks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks import latency
from benchmarks.harness import Record, append_record, architecture


@pytest.fixture
def closing_records(tmp_path: Path) -> Callable[[str, tuple[float, ...]], Path]:
    """Write one ``tp_l1`` record per closed fraction of ``arch``'s units (setting ``1 - fraction``)."""

    def write(arch: str, fractions: tuple[float, ...]) -> Path:
        records = tmp_path / "runs.jsonl"
        for fraction in fractions:
            deployed = latency.closing_pair(arch, fraction).deployed
            fields = {"epochs": 1, "dense_accuracy": None, "accuracy": 0.9, "val_accuracy": 0.9, "compression": 2.0}
            fields |= {"flops_ratio": 1 - fraction, "step_time_ratio": None, "step_ms": 1.0, "train_images": 10}
            record = Record(arch, "tp_l1", 1 - fraction, 0, **fields, variant="structured", **architecture(deployed))
            append_record(records, record)
        return records

    return write
