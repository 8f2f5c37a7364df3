import json

from benchmarks import latency, sparse_linear


def test_latency_quick(tmp_path):
    out, md = tmp_path / "latency.json", tmp_path / "latency.md"
    results = latency.main(["--quick", "--out", str(out), "--markdown", str(md)])
    record = json.loads(out.read_text())["models"]["vgg"]
    assert record == results["models"]["vgg"]
    assert record["shrunk_macs"] < record["dense_macs"] and record["shrunk_bytes"] < record["dense_bytes"]
    for key in ("dense_ms", "shrunk_ms", "speedup"):
        assert record["settings"][0][key] > 0
    assert "| vgg |" in md.read_text()


def test_sparse_linear_quick(tmp_path):
    out, md = tmp_path / "s.json", tmp_path / "s.md"
    sparse_linear.main(["--quick", "--out", str(out), "--markdown", str(md)])
    rows = json.loads(out.read_text())["rows"]
    assert [r["sparsity"] for r in rows] == [0.9, 0.99]
    assert all(r["dense_ms"] > 0 and r["sparse_ms"] > 0 for r in rows)
