"""Two CPU processes with Lightning's own DDP (gloo): identical masks and weights, logged once."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).with_name("ddp_script.py")


def test_ddp_two_processes_agree_and_log_once(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(SCRIPT.parents[1]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    assert rank0["state"].keys() == rank1["state"].keys()
    for key, value in rank0["state"].items():
        torch.testing.assert_close(rank1["state"][key], value, rtol=0, atol=0, msg=key)
    masks = [v for k, v in rank0["state"].items() if k.endswith(".aux")]
    assert sum(int((m <= 0).sum()) for m in masks) > 0, "the run should have pruned something"
    assert rank0["pruned_total"] == rank1["pruned_total"] > 0

    output = proc.stdout + proc.stderr
    assert output.count("AuxMaskPruning per-layer result") == 1
    with open(tmp_path / "ddp" / "version_0" / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("auxprune/sparsity")]
    # 512 samples / 2 ranks / batch 32 = 8 steps per epoch, 3 epochs: steps 2, 4, ..., 24 -> 12 rows, once each
    assert len(rows) == 12
