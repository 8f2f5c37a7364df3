import json

import pytest

from benchmarks import op_share


def test_op_share_splits_each_network_s_time_by_op_kind(tmp_path, closing_records):
    records = closing_records("resnet20", (0.5, 0.75))
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


def test_relu6_counts_as_elementwise():
    """MobileNetV2's ReLU6 runs as hardtanh -> clamp; counted as 'other' it hid half the network's time."""
    assert {op_share.kind_of(op) for op in ("aten::hardtanh", "aten::hardtanh_", "aten::clamp")} == {"elementwise"}
