import pytest

from benchmarks.report import knob, sensitivity


def row(accuracy, compression, std=0.0):
    return {"accuracy": (accuracy, std), "compression": (compression, 0.0)}


def test_knob_is_lambda_or_asked_for_compression():
    assert knob("autoprune", 4e-4) == 4e-4
    assert knob("gmp", 0.99) == pytest.approx(100.0)
    assert knob("autoprune_target", 0.98) == pytest.approx(50.0)


def test_sensitivity_rows_give_elasticity_and_accuracy_change():
    rows = {
        ("dense", 0.0): row(0.90, 1.0),
        ("gmp", 0.95): row(0.89, 20.0),
        ("gmp", 0.98): row(0.88, 50.0),
        ("autoprune", 1e-4): row(0.885, 10.0, std=0.002),
        ("autoprune", 2e-4): row(0.87, 40.0, std=0.004),
    }
    lines = sensitivity(rows)
    assert len(lines) == 4  # header, separator, one pair per method, dense skipped
    autoprune, gmp = lines[2].split(" | "), lines[3].split(" | ")
    # lambda x2 -> compression x4: elasticity 2; accuracy -1.5 pt
    assert autoprune[3:6] == ["2.00", "4.00", "2.00"] and autoprune[6] == "-1.50"
    assert autoprune[7].startswith("0.20, 0.40")
    # GMP gets exactly the compression asked for: elasticity 1
    assert gmp[3:6] == ["2.50", "2.50", "1.00"] and gmp[6] == "-1.00"
