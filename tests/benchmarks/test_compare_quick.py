import json

import pytest

from benchmarks import compare, report


def refuse_to_train(*args, **kwargs):
    raise AssertionError("a run that is already in the results file was trained again")


@pytest.mark.slow
def test_compare_quick_and_report(tmp_path, fake_data_dir, monkeypatch):
    runs = tmp_path / "runs.jsonl"
    records = compare.main(
        ["--quick", "--models", "lenet300100", "--seeds", "0", "--data-dir", str(fake_data_dir), "--out", str(runs)]
    )
    lines = [json.loads(line) for line in runs.read_text().splitlines()]
    assert [r["method"] for r in lines] == compare.METHODS
    assert len(records) == len(lines)
    required = {
        "model",
        "method",
        "seed",
        "epochs",
        "dense_accuracy",
        "accuracy",
        "compression",
        "flops_ratio",
        "step_time_ratio",
    }
    for record in lines:
        assert required <= set(record)
        assert record["dense_accuracy"] == lines[0]["accuracy"]
        assert 0.0 <= record["accuracy"] <= 1.0 and record["step_time_ratio"] > 0
    by_method = {r["method"]: r for r in lines}
    assert by_method["dense"]["compression"] == 1.0 and by_method["dense"]["flops_ratio"] == 1.0
    assert by_method["gmp"]["compression"] > 1.5
    assert by_method["modelpruning"]["compression"] > 1.5
    assert by_method["torchpruning"]["flops_ratio"] < 0.9  # channels physically removed

    monkeypatch.setattr(compare, "run", refuse_to_train)  # a second call resumes: nothing is trained again
    again = compare.main(
        ["--quick", "--models", "lenet300100", "--seeds", "0", "--data-dir", str(fake_data_dir), "--out", str(runs)]
    )
    assert again == records and len(runs.read_text().splitlines()) == len(lines)

    summary_path, md, images = tmp_path / "summary.json", tmp_path / "results.md", tmp_path / "img"
    summary = report.main(
        ["--runs", str(runs), "--summary", str(summary_path), "--markdown", str(md), "--images", str(images)]
    )
    assert json.loads(summary_path.read_text()) == summary
    methods = summary["lenet300100"]["methods"]
    assert set(methods) == set(compare.METHODS)
    assert methods["dense"]["compression_at_0.5pt"] == 1.0
    assert (images / "pareto_lenet300100.png").stat().st_size > 10_000
    assert "| gmp |" in md.read_text()


def test_ablation_quick(tmp_path, fake_data_dir):
    from benchmarks import ablation

    out, md = tmp_path / "ablation.jsonl", tmp_path / "ablation.md"
    records = ablation.main(["--quick", "--data-dir", str(fake_data_dir), "--out", str(out), "--markdown", str(md)])
    assert [r.variant for r in records] == ["identity/sign/masked", "identity/sign/unmasked"]
    assert len(out.read_text().splitlines()) == 2
    assert "| identity | sign | masked |" in md.read_text()


def test_switches_quick(tmp_path, fake_data_dir, monkeypatch):
    from benchmarks import switches, variants

    out, md = tmp_path / "switches.jsonl", tmp_path / "switches.md"
    records = switches.main(["--quick", "--data-dir", str(fake_data_dir), "--out", str(out), "--markdown", str(md)])
    assert [r.variant for r in records] == list(switches.VARIANTS)[:2]
    assert all(r.method == "autoprune_target" and r.setting == 0.99 for r in records)
    assert len(out.read_text().splitlines()) == 2
    text = md.read_text()
    assert "| init=magnitude |" in text and "target sparsity 0.99" in text

    monkeypatch.setattr(variants, "run", refuse_to_train)  # resumes: neither the variants nor dense train again
    again = switches.main(["--quick", "--data-dir", str(fake_data_dir), "--out", str(out), "--markdown", str(md)])
    assert again == records and len(out.read_text().splitlines()) == 2
    assert md.read_text() == text
