"""Layer widths of the structured grid's networks: read, averaged and tabled against dense."""

from benchmarks import structured
from benchmarks.widths import mean_widths, output_widths, widths_table


def _run(method, setting, seed, conv, fc=256, accuracy=0.9):
    widths = {
        "features.0": {"in_channels": 1, "out_channels": conv, "groups": 1},
        "features.1": {"num_features": conv},
        "classifier.1": {"in_features": conv * 9, "out_features": fc},
        "classifier.3": {"in_features": fc, "out_features": 10},
    }
    return {
        "model": "vgg",
        "method": method,
        "setting": setting,
        "seed": seed,
        "epochs": 8,
        "train_images": 100,
        "accuracy": accuracy,
        "flops_ratio": 1.0 if method == "dense" else setting,
        "widths": widths,
    }


def test_output_widths_skip_normalisation_and_read_heads():
    widths = {"bn": {"num_features": 4}, "attn": {"pruned_heads": 3}, "fc": {"in_features": 4, "out_features": 2}}
    assert output_widths(widths) == {"attn": 3, "fc": 2}
    assert output_widths(None) == {}


def test_mean_widths_averages_the_runs_that_recorded_widths():
    assert mean_widths([_run("a", 0.5, 0, 8), _run("a", 0.5, 1, 11)])["features.0"] == 9.5
    assert mean_widths([_run("a", 0.5, 0, 8), {"widths": None}])["features.0"] == 8  # an older record
    assert mean_widths([{"widths": None}]) == {}


def test_the_table_leaves_out_layers_no_column_narrows():
    rows = widths_table({"a": 32, "b": 10, "c": 5}, {"x": {"a": 8.5, "b": 10}, "y": {"a": 16, "c": 5}})
    assert rows[2:] == ["| a | 32 | 8.5 | 16 |"]
    assert widths_table({"a": 32}, {"x": {}})[2:] == []  # a column without the layer narrows nothing


def test_the_structured_page_shows_where_each_method_kept_its_units():
    rows = [_run("dense", 0.0, s, 32) for s in (0, 1)]
    rows += [_run("autoprune", 0.25, 0, 8), _run("autoprune", 0.25, 1, 9)]
    rows += [_run("tp_l1", 0.25, s, 15, fc=127) for s in (0, 1)]
    summary = structured.aggregate(rows)
    page = structured.markdown(summary, "cmd", "runs.jsonl", {})
    assert "| layer | dense | autoprune 0.25 | tp_l1 0.25 |" in page
    assert "| features.0 | 32 | 8.5 | 15 |" in page
    assert "| classifier.1 | 256 | 256 | 127 |" in page
    assert "classifier.3" not in page  # the output layer: no run narrows it
