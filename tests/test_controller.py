import math

import pytest

from lightning_auxprune.controller import TargetController


def make(**kwargs):
    defaults = dict(final=0.9, start=1.0, end=11.0, strength=1e-4)
    defaults.update(kwargs)
    return TargetController(**defaults)


def test_target_is_a_cubic_ramp_from_zero_to_final():
    c = make()
    assert c.target_at(0.0) == 0.0
    assert c.target_at(1.0) == 0.0
    assert c.target_at(6.0) == pytest.approx(0.9 * (1 - 0.5**3))
    assert c.target_at(11.0) == pytest.approx(0.9)
    assert c.target_at(50.0) == pytest.approx(0.9)
    values = [c.target_at(1.0 + i / 10) for i in range(101)]
    assert values == sorted(values)
    # cubic: front-loaded, more than half of the final value at a third of the ramp
    assert c.target_at(1.0 + 10 / 3) > 0.9 / 2


def test_lambda_is_a_proportional_integral_law_in_log_space():
    c = make(gain=2.0, p_gain=5.0)
    error = math.log(0.5 / (1 - c.target_at(6.0)))
    assert float(c.update(6.0, achieved=0.5)) == pytest.approx(1e-4 * math.exp(2.0 * error) * math.exp(5.0 * error))
    assert c.strength == pytest.approx(1e-4 * math.exp(2.0 * error))  # the integral part keeps the push
    before = c.output
    assert float(c.update(11.0, achieved=0.95)) < before  # ahead of the target: lambda shrinks
    base = c.strength
    assert float(c.update(11.0, achieved=0.9)) == pytest.approx(base)  # on target: lambda is its integral part
    assert c.strength == pytest.approx(base)


def test_integral_only_controller():
    c = make(gain=1.0, p_gain=0.0)
    c.update(6.0, achieved=0.0)
    assert c.output == c.strength > 1e-4


def test_lambda_stays_within_its_bounds():
    c = make(gain=100.0, p_gain=100.0, min_strength=1e-6, max_strength=1e-2)
    for _ in range(10):
        c.update(11.0, achieved=0.0)
    assert c.strength == c.output == 1e-2
    for _ in range(20):
        c.update(11.0, achieved=1.0)
    assert c.strength == c.output == 1e-6


def test_state_dict_round_trip():
    c = make()
    c.update(8.0, achieved=0.1)
    other = make()
    other.load_state_dict(c.state_dict())
    assert (other.strength, other.output) == (c.strength, c.output)
    assert c.output != 1e-4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"final": 1.0}, r"must be a fraction in \(0, 1\)"),
        ({"final": 0.0}, r"must be a fraction in \(0, 1\)"),
        ({"end": 1.0}, "give a ramp > 0"),
        ({"gain": 0.0}, r"Need target_gain=0.0 > 0"),
        ({"p_gain": -1.0}, r"target_p_gain=-1.0 >= 0"),
        ({"min_strength": 0.0}, "min_strength"),
        ({"strength": 2.0}, "must lie in"),
    ],
)
def test_bad_settings_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


def test_a_higher_floor_lets_lambda_climb_back_sooner():
    """Ahead of the target lambda falls to its floor; behind it again, it climbs back from there."""

    def steps_to_recover(floor: float) -> int:
        c = make(gain=0.05, p_gain=0.0, min_strength=floor, strength=1e-3)
        for _ in range(2000):
            c.update(5.0, achieved=0.95)  # far ahead of target_at(5.0)
        assert c.strength == floor
        steps = 0
        while float(c.update(10.0, achieved=0.5)) < 1e-3:  # now behind the final 0.9
            steps += 1
        return steps

    assert steps_to_recover(1e-5) < steps_to_recover(1e-9) / 2


def test_a_run_above_its_budget_by_more_than_5_percent_missed_it():
    from lightning_auxprune.controller import target_miss

    assert target_miss(0.35 * 1.04, 0.35) is None
    assert target_miss(0.35 * 1.06, 0.35) == "6% above the target"
    assert target_miss(1.0, 0.1) == "900% above the target"
    assert target_miss(0.35 * 0.81, 0.35) is None  # more pruning than asked: from 20% below
    assert target_miss(0.35 * 0.7, 0.35) == "30% below the target"
