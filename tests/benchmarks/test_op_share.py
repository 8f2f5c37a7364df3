import json

import pytest

from benchmarks import latency, op_share
from benchmarks.harness import Record, append_record, architecture


def _record(deployed, setting):
    fields = {"epochs": 1, "dense_accuracy": None, "accuracy": 0.9, "val_accuracy": 0.9, "compression": 2.0}
    fields |= {"flops_ratio": setting, "step_time_ratio": None, "step_ms": 1.0, "train_images": 10}
    return Record("resnet20", "tp_l1", setting, 0, **fields, variant="structured", **architecture(deployed))


def test_op_share_splits_each_network_s_time_by_op_kind(tmp_path):
    records = tmp_path / "runs.jsonl"
    for fraction in (0.5, 0.75):
        append_record(records, _record(latency.closing_pair("resnet20", fraction).deployed, 1 - fraction))
    out, md = tmp_path / "op.json", tmp_path / "op.md"
    results = op_share.main(["--quick", "--records", str(records), "--out", str(out), "--markdown", str(md)])
    assert json.loads(out.read_text()) == results
    dense, *deployed = results["rows"]
    assert dense["network"] == "dense" and dense["threads"] == 1
    assert [r["network"] for r in deployed] == ["tp_l1 @ 0.5 (seed 0)", "tp_l1 @ 0.25 (seed 0)"]
    for row in results["rows"]:
        kinds = {k: v for k, v in row["ms"].items() if k != "total"}
        assert kinds["convolution"] > 0 and kinds["elementwise"] > 0  # ResNet-20: convs, ReLUs, additions
        assert sum(kinds.values()) == pytest.approx(row["ms"]["total"])
    assert 1 < deployed[0]["mac_ratio"] < deployed[1]["mac_ratio"]
    assert "| resnet20 | tp_l1 @ 0.25 (seed 0) |" in md.read_text()


def test_op_share_refuses_impossible_settings(tmp_path):
    with pytest.raises(SystemExit):
        op_share.main(["--rounds", "0", "--out", str(tmp_path / "o.json"), "--markdown", str(tmp_path / "o.md")])
