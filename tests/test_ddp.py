"""Two CPU processes with Lightning's own DDP (gloo): identical masks and weights, logged once;
ddp_spawn is refused; with ddp_fork and masks attached before fit, the trained masks and weights come
back to the main process."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).with_name("ddp_script.py")


def launch(tmp_path, *args):
    env = {**os.environ, "PYTHONPATH": str(SCRIPT.parents[1]), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), *args], capture_output=True, text=True, timeout=300, env=env
    )


def pruned_entries(state):
    return sum(int((v <= 0).sum()) for k, v in state.items() if k.endswith(".aux"))


@pytest.mark.slow
def test_ddp_two_processes_agree_and_log_once(tmp_path):
    proc = launch(tmp_path, "ddp")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    assert rank0["state"].keys() == rank1["state"].keys()
    for key, value in rank0["state"].items():
        torch.testing.assert_close(rank1["state"][key], value, rtol=0, atol=0, msg=key)
    assert pruned_entries(rank0["state"]) > 0, "the run should have pruned something"
    assert rank0["pruned_total"] == rank1["pruned_total"] > 0

    output = proc.stdout + proc.stderr
    assert output.count("AuxMaskPruning per-layer result") == 1
    with open(tmp_path / "ddp" / "version_0" / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("auxprune/sparsity")]
    # 512 samples / 2 ranks / batch 32 = 8 steps per epoch, 3 epochs: steps 2, 4, ..., 24 -> 12 rows, once each
    assert len(rows) == 12


@pytest.mark.slow
def test_ddp_fork_brings_masks_and_weights_back_when_attached_first(tmp_path):
    proc = launch(tmp_path, "ddp_fork", "--attach")
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = torch.load(tmp_path / "main.pt")
    state, initial = saved["state"], saved["initial"]
    assert state.keys() == initial.keys()
    assert pruned_entries(state) > 0  # the workers' masks came back ...
    for key in state:  # ... and so did every trained weight (before: only the biases did)
        assert not torch.equal(state[key], initial[key]), key


@pytest.mark.slow
def test_ddp_spawn_is_refused_and_ddp_fork_needs_attach(tmp_path):
    proc = launch(tmp_path, "ddp_spawn")
    assert proc.returncode != 0 and "Use strategy='ddp'" in proc.stderr
    proc = launch(tmp_path, "ddp_fork")
    assert proc.returncode != 0 and "Call `pruning.attach(model)` before `trainer.fit(model)`" in proc.stderr
    assert not (tmp_path / "main.pt").exists()
