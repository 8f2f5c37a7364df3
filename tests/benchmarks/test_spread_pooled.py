"""Pooling the run-to-run spread over seeds, and the permutation test against the peer."""

import math
import statistics

import pytest

from benchmarks.spread_pooled import deviations, larger_spread_p, pooled_std, table


def _rows(method, seeds, variant="structured"):
    return [
        {"variant": variant, "model": "vgg", "setting": 0.35, "method": method, "seed": seed, "accuracy": a}
        for seed, accuracies in seeds.items()
        for a in accuracies
    ]


def test_each_seed_is_measured_from_its_own_mean():
    rows = _rows("a", {0: [0.80, 0.82, 0.84], 1: [0.60, 0.61], 2: [0.70]})  # a lone run adds nothing
    expected = math.sqrt((statistics.variance([0.80, 0.82, 0.84]) * 3 + statistics.variance([0.60, 0.61]) * 2) / 5)
    assert len(deviations(rows, "a")) == 5
    assert pooled_std(deviations(rows, "a")) == pytest.approx(expected)
    assert deviations(rows, "b") == []


def test_the_permutation_test_separates_a_wider_spread_and_repeats():
    wide = [0.03, -0.03, 0.025, -0.025, 0.02, -0.02, 0.03, -0.03]
    narrow = [0.002, -0.002, 0.001, -0.001, 0.003, -0.003, 0.002, -0.002]
    assert larger_spread_p(wide, narrow, permutations=2000) < 0.01
    assert larger_spread_p(narrow, wide, permutations=2000) > 0.99
    assert larger_spread_p(wide, narrow, permutations=500) == larger_spread_p(wide, narrow, permutations=500)
    assert larger_spread_p(wide, [0.0] * 8, permutations=500) < 0.01  # a peer without spread: no division by 0
    with pytest.raises(ValueError, match="at least two runs"):
        larger_spread_p([], narrow)


def test_the_table_compares_each_method_with_its_grids_peer():
    rows = _rows("tp_l1", {0: [0.80, 0.81], 1: [0.70, 0.71]}) + _rows("autoprune", {0: [0.78, 0.82], 1: [0.7, 0.74]})
    rows += _rows("gmp", {0: [0.9, 0.9]}, variant="")  # its own grid: compared with nothing of the other
    lines = table(rows)
    assert "| structured | vgg | 0.35 | tp_l1 | 2 | 4 | 0.71 pt | peer | - |" in lines
    mine = next(line for line in lines if "| autoprune |" in line)
    assert "| 2 | 4 | 2.83 pt | 4.00 |" in mine
    assert "| compare | vgg | 0.35 | gmp | 1 | 2 | 0.00 pt | peer | - |" in lines
