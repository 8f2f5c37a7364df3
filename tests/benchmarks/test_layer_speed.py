import json

import pytest
import torch
from torch import nn

from benchmarks import layer_speed
from benchmarks.latency import closing_pair


def test_layer_speed_times_every_convolution_of_each_network(tmp_path, closing_records):
    records = closing_records("resnet20", (0.5, 0.75))
    out, md = tmp_path / "layers.json", tmp_path / "layers.md"
    argv = ["--quick", "--records", str(records), "--out", str(out), "--markdown", str(md)]
    results = layer_speed.main([*argv, "--budgets", "0.25"])
    assert json.loads(out.read_text()) == results
    dense = closing_pair("resnet20", 0.75).dense
    convs = [name for name, m in dense.named_modules() if isinstance(m, nn.Conv2d)]
    assert [row["layer"] for row in results["rows"]] == [name.removeprefix("net.") for name in convs]
    for row in results["rows"]:
        assert list(row["networks"]) == ["dense", "tp_l1 @ 0.25 (seed 0)"]  # the 0.5 record is filtered out
        full, narrow = row["networks"].values()
        assert narrow["out_channels"] <= full["out_channels"] and narrow["macs"] <= full["macs"]
        assert narrow["resolution"] == full["resolution"] and full["ms"] > 0
        assert full["gmacs_per_s"] == pytest.approx(full["macs"] / full["ms"] / 1e6)
    assert sum(r["networks"]["dense"]["macs"] for r in results["rows"]) > 3 * sum(
        r["networks"]["tp_l1 @ 0.25 (seed 0)"]["macs"] for r in results["rows"]
    )
    assert "| stages.0.conv1 | 28x28 | 16→16: " in md.read_text()
    with pytest.raises(SystemExit):
        layer_speed.main([*argv, "--budgets", "0.9"])
    with pytest.raises(SystemExit):
        layer_speed.main([*argv[1:], "--rounds", "0"])  # not --quick: it sets the rounds


def test_conv_macs_counts_strided_and_grouped_convolutions():
    shape = torch.Size([2, 8, 10, 10])
    assert layer_speed.conv_macs(nn.Conv2d(8, 4, 3, stride=2, padding=1), shape) == 2 * 4 * 5 * 5 * 8 * 9
    assert layer_speed.conv_macs(nn.Conv2d(8, 8, 3, padding=1, groups=8), shape) == 2 * 8 * 10 * 10 * 9
