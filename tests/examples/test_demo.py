import json
import warnings

import pytest

from examples.demo import main


@pytest.mark.slow
def test_demo_quick_run_prints_and_writes_everything(tmp_path, fake_data_dir, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "demo"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_demo(out, fake_data_dir)
    captured = capsys.readouterr()
    printed = captured.out
    assert printed.count("units kept/all") == 1  # the per-layer table, printed once
    assert "wandb sync" in printed and "tensorboard --logdir" in printed
    assert "Tip: For seamless" not in captured.out + captured.err
    assert not [w for w in caught if "CSR tensor support is in beta" in str(w.message)]
    assert not [w for w in caught if "invariant checks are implicitly disabled" in str(w.message)]
    assert_demo_outputs(out, result, printed)


def run_demo(out, data_dir):
    return main(
        [
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
            "--dense-epochs",
            "2",
            "--prune-epochs",
            "4",
            "--freeze-at",
            "3",
            "--strength",
            "5e-3",
            "--aux-lr",
            "0.1",
            "--batch-size",
            "64",
            "--val-size",
            "100",
        ]
    )


def assert_demo_outputs(out, result, printed):
    assert "test accuracy: dense" in printed and "compression" in printed and "FLOPs kept" in printed
    assert "conv1" in printed and "fc2" in printed  # the per-layer table
    assert json.loads((out / "summary.json").read_text()) == result
    assert result["compression"] > 1.0
    assert 0.0 < result["flops_ratio"] < 1.0
    assert (out / "training.png").stat().st_size > 10_000
    assert (out / "lenet5_pruned_state_dict.pt").exists()
    assert result["sparse_file_bytes"] < result["dense_file_bytes"]
    assert "CSR export" in printed
    # TensorBoard event files and an offline W&B run holding our metric names
    assert list((out / "tb" / "pruned").rglob("events.out.tfevents.*"))
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 2
    wandb_files = [p for run in runs for p in run.glob("*.wandb")]
    pruned_run = [p.read_bytes() for p in wandb_files if b"auxprune/sparsity" in p.read_bytes()]
    assert len(pruned_run) == 1
    for layer in ("conv1", "conv2", "fc1", "fc2"):
        assert f"auxprune/density/net.{layer}".encode() in pruned_run[0]
