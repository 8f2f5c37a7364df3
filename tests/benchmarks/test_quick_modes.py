import json

import pytest
import torch

from benchmarks import latency, sparse_linear
from benchmarks.harness import Record, append_record, architecture, load_records
from lightning_auxprune.export.shrink import layer_widths, shrink
from lightning_auxprune.options import MaskOptions
from lightning_auxprune.patch import patch_model


def test_latency_quick_closing(tmp_path):
    out, md = tmp_path / "latency.json", tmp_path / "latency.md"
    results = latency.main(["--quick", "--closing", "0.5", "--out", str(out), "--markdown", str(md)])
    [pair] = json.loads(out.read_text())["pairs"]
    assert pair == results["pairs"][0] and pair["arch"] == "vgg"
    assert pair["shrunk_macs"] < pair["dense_macs"] and pair["shrunk_bytes"] < pair["dense_bytes"]
    [setting] = pair["settings"]
    assert set(setting["dense_ms"]) == set(setting["shrunk_ms"]) == {"contiguous", "channels_last"}
    assert setting["speedup"] > 0
    assert "| vgg | 50% lowest-L1 units closed |" in md.read_text()


def test_latency_in_bfloat16_at_the_batches_asked(tmp_path):
    out, md = tmp_path / "latency.json", tmp_path / "latency.md"
    argv = ["--closing", "0.5", "--models", "vgg", "--batches", "3", "--threads", "1", "--repeats", "1"]
    results = latency.main([*argv, "--dtype", "bfloat16", "--out", str(out), "--markdown", str(md)])
    [pair] = results["pairs"]
    assert [(s["batch"], s["threads"]) for s in pair["settings"]] == [(3, 1)]
    assert results["dtype"] == "bfloat16" and ", bfloat16, 1 interleaved repeats" in md.read_text()
    assert pair["dense_bytes"] < 3 * pair["dense_params"]  # saved in two bytes a parameter (float32: four)
    with pytest.raises(SystemExit):
        latency.main([*argv, "--batches", "0", "--out", str(out), "--markdown", str(md)])


def test_latency_of_grid_records_rebuilds_their_deployed_networks(tmp_path):
    deployed = latency.closing_pair("vgg", 0.5).deployed
    fields = {"epochs": 1, "dense_accuracy": None, "accuracy": 0.9, "val_accuracy": 0.9, "compression": 4.0}
    fields |= {
        "flops_ratio": 0.25,
        "step_time_ratio": None,
        "step_ms": 1.0,
        "train_images": 10,
        "variant": "structured",
    }
    records = tmp_path / "runs.jsonl"
    append_record(records, Record("vgg", "tp_l1", 0.25, 0, **fields, **architecture(deployed)))
    append_record(records, Record("vgg", "tp_l2", 0.25, 0, **fields))  # an older record without its network
    rebuilt = latency.rebuild(load_records(records)[("vgg", "tp_l1", 0.25, 0, 1, "structured")])
    assert layer_widths(rebuilt) == layer_widths(deployed)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in deployed.state_dict().items()
    }
    out, md = tmp_path / "latency.json", tmp_path / "latency.md"
    results = latency.main(["--quick", "--records", str(records), "--out", str(out), "--markdown", str(md)])
    [pair] = results["pairs"]
    assert pair["label"] == "tp_l1 @ 0.25 (seed 0)"
    assert pair["dense_params"] > 3 * pair["shrunk_params"]  # both folded: no BatchNorm parameters left
    assert "| vgg | tp_l1 @ 0.25 (seed 0) |" in md.read_text()


@pytest.mark.parametrize("arch", ["vgg", "resnet20"])
def test_rounded_networks_come_from_shrink_with_round_to(arch):
    deployed = latency.closing_pair(arch, 0.6).deployed
    fields = {"epochs": 1, "dense_accuracy": None, "accuracy": 0.9, "val_accuracy": 0.9, "compression": 4.0}
    fields |= {"flops_ratio": 0.3, "step_time_ratio": None, "step_ms": 1.0, "train_images": 10}
    record = Record(arch, "tp_l1", 0.25, 0, **fields, variant="structured", **architecture(deployed))
    assert layer_widths(latency.rounded(record, 1)) == layer_widths(deployed)  # the same closed units
    dense = layer_widths(latency.Wrapped(arch).net)
    rounded, exact = layer_widths(latency.rounded(record, 8)), layer_widths(deployed)
    narrowed = [(n, a) for n, attrs in exact.items() for a in attrs if exact[n][a] < dense[n][a]]
    assert narrowed
    for name, attr in narrowed:
        width = rounded[name][attr]
        assert width >= exact[name][attr] and (width % 8 == 0 or width == dense[name][attr])
    with pytest.raises(SystemExit):
        latency.main(["--quick", "--round-to", "0"])


def test_latency_pairs_of_one_model_share_one_dense_time():
    half, most = latency.closing_pair("vgg", 0.5), latency.closing_pair("vgg", 0.75)
    records = latency.measure([half, most], batches=[2], threads=[1], repeats=2, device=torch.device("cpu"))
    assert [r["label"] for r in records] == [half.label, most.label]
    [first], [second] = (r["settings"] for r in records)
    assert first["dense_ms"] == second["dense_ms"]  # one timing, not two
    assert first["shrunk_ms"] != second["shrunk_ms"] and records[1]["mac_ratio"] > records[0]["mac_ratio"]
    with pytest.raises(ValueError, match="one architecture"):
        latency.measure([half, latency.closing_pair("resnet20", 0.5)], [2], [1], 1, torch.device("cpu"))


def test_latency_without_stored_networks_says_what_to_run(tmp_path):
    with pytest.raises(SystemExit, match=r"run benchmarks\.structured"):
        latency.main(["--quick", "--records", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "l.json")])


def test_sparse_linear_quick(tmp_path):
    out, md = tmp_path / "s.json", tmp_path / "s.md"
    sparse_linear.main(["--quick", "--out", str(out), "--markdown", str(md)])
    rows = json.loads(out.read_text())["rows"]
    assert [r["sparsity"] for r in rows] == [0.9, 0.99]
    assert all(r["dense_ms"] > 0 and r["sparse_ms"] > 0 for r in rows)


def test_overhead_quick(tmp_path):
    from benchmarks import overhead

    out, md, png = tmp_path / "overhead.json", tmp_path / "overhead.md", tmp_path / "overhead.png"
    out.write_text(json.dumps({"rows": [{**row, "accelerator": "gpu"} for row in FAKE_GPU_ROWS]}))
    argv = ["--quick", "--models", "lenet300100", "--out", str(out), "--markdown", str(md), "--plot", str(png)]
    rows = overhead.main(argv)
    assert [r["method"] for r in rows] == overhead.METHODS
    assert all(r["median_ms"] > 0 for r in rows) and rows[0]["ratio"] == 1.0
    saved = json.loads(out.read_text())["rows"]
    assert {r["accelerator"] for r in saved} == {"cpu", "gpu"}  # rows of another machine are kept
    assert len(saved) == len(rows) + len(FAKE_GPU_ROWS)
    page = md.read_text()
    assert "## cpu, 32-true, batch 16" in page and "## gpu, bf16-mixed, batch 128" in page
    assert png.stat().st_size > 0


FAKE_GPU_ROWS = [
    {"model": "vit", "method": m, "precision": "bf16-mixed", "threads": 0, "batch_size": 128, "median_ms": 30.0}
    | {"ratio": 1.0, "steps": 80, "rounds": 3}
    for m in ("dense", "auxprune_weight")
]


def test_trace_quick(tmp_path, fake_data_dir, capsys):
    from benchmarks import trace

    argv = ["--quick", "--method", "autoprune_target", "--data-dir", str(fake_data_dir), "--out", str(tmp_path)]
    record, rows = trace.main([*argv, "--every", "1"])
    assert record.method == "autoprune_target" and record.compression >= 1.0
    assert len(rows) >= 2 and all({"step", "lambda", "pruned", "target"} <= set(row) for row in rows)
    steps = [row["step"] for row in rows]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert rows[0]["lambda"] == 0.0 and rows[-1]["lambda"] > 0.0  # dense warm-up, then the controller's lambda
    assert rows[-1]["target"] > 0.5
    out = capsys.readouterr().out
    assert "lambda" in out and "compression" in out


def test_trace_of_a_structured_run_shows_the_kept_flops(tmp_path, fake_data_dir):
    from benchmarks import trace

    argv = ["--quick", "--structured", "--model", "vgg", "--method", "autoprune", "--setting", "0.5"]
    record, rows = trace.main([*argv, "--data-dir", str(fake_data_dir), "--out", str(tmp_path), "--every", "1"])
    assert record.variant == "structured" and record.widths is not None
    assert all(0.0 < row["flops"] <= 1.0 for row in rows)
    assert 0.0 < rows[-1]["target"] <= 0.5  # removed FLOPs wanted, ramping to 1 - budget


def test_trace_refuses_a_method_of_the_other_grid(tmp_path, fake_data_dir):
    from benchmarks import trace

    with pytest.raises(SystemExit):
        trace.main(["--quick", "--structured", "--model", "lenet5", "--method", "autoprune", "--out", str(tmp_path)])


def test_trace_refuses_methods_without_a_lambda(tmp_path, fake_data_dir):
    from benchmarks import trace

    argv = ["--quick", "--method", "gmp", "--data-dir", str(fake_data_dir), "--out", str(tmp_path)]
    with pytest.raises(SystemExit, match="only AutoPrune methods have a trace"):
        trace.main(argv)


def test_spread_quick_resumes(tmp_path, fake_data_dir):
    from benchmarks import spread

    out, md = tmp_path / "spread.jsonl", tmp_path / "spread.md"
    argv = [
        "--quick",
        "--model",
        "lenet300100",
        "--methods",
        "gmp",
        "dense",
        "--setting",
        "0.9",
        "--data-dir",
        str(fake_data_dir),
    ]
    argv += ["--out", str(out), "--markdown", str(md), "--threads", "1", "2"]
    rows = spread.main(argv)
    assert sorted((r["method"], r["threads"]) for r in rows) == [("dense", 1), ("dense", 2), ("gmp", 1), ("gmp", 2)]
    assert len(spread.main(argv)) == 4  # resumed: nothing run twice
    assert "| compare | lenet300100 | gmp | 0.9 | 0 |" in md.read_text()
    assert "| compare | lenet300100 | dense |" in md.read_text()  # the unpruned control
    assert "| compare | lenet300100 | 0.9 | gmp | 1 | 2 |" in md.read_text()  # pooled over seeds, gmp the peer


def test_records_match_compares_shared_runs_digit_for_digit(tmp_path, capsys):
    from dataclasses import replace

    from benchmarks import records_match

    base = Record("lenet5", "gmp", 0.9, 0, 8, None, 0.9, 0.91, 10.0, 0.2, None, 3.0, 100)
    first, second, third = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    append_record(first, base)
    append_record(second, replace(base, step_ms=5.0))  # timing differs: not a result
    append_record(third, replace(base, accuracy=0.9000001))
    assert records_match.main([str(first), str(second)]) == 0
    assert records_match.main([str(first), str(third)]) == 1
    assert "accuracy 0.9 != 0.9000001" in capsys.readouterr().out
    assert records_match.main([str(first), str(tmp_path / "none.jsonl")]) == 1  # nothing shared proves nothing


def test_a_vit_record_with_closed_heads_rebuilds():
    torch.manual_seed(0)
    model = latency.Wrapped("vit")
    masks = patch_model(model, ["net.blocks.0.attn", "net.blocks.1.fc1"], MaskOptions(granularity="neuron"))
    with torch.no_grad():
        masks["net.blocks.0.attn"].aux[:3] = -1.0  # 1 of 4 heads left
        masks["net.blocks.1.fc1"].aux[:100] = -1.0
    deployed = shrink(model, torch.randn(2, 1, 28, 28)).model.net
    fields = {"epochs": 1, "dense_accuracy": None, "accuracy": 0.9, "val_accuracy": 0.9, "compression": 2.0}
    fields |= {"flops_ratio": 0.5, "step_time_ratio": None, "step_ms": 1.0, "train_images": 10}
    record = Record("vit", "autoprune", 0.5, 0, **fields, variant="structured", **architecture(deployed))
    rebuilt = latency.rebuild(record)
    assert rebuilt.blocks[0].attn.num_heads == 1 and rebuilt.blocks[1].fc1.out_features == 92
    assert layer_widths(rebuilt) == layer_widths(deployed)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in deployed.state_dict().items()
    }
