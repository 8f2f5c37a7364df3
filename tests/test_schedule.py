import pytest

from lightning_auxprune.schedule import PruningSchedule, check_finite


def test_phases_and_ramp():
    s = PruningSchedule(warmup=2, ramp=4, freeze=10)
    assert [s.phase(t) for t in (0, 1.99, 2, 9.99, 10, 50)] == [
        "warmup",
        "warmup",
        "pruning",
        "pruning",
        "frozen",
        "frozen",
    ]
    assert [s.ramp_factor(t) for t in (1, 2, 3, 6, 8, 10)] == [0.0, 0.0, 0.25, 1.0, 1.0, 0.0]
    assert PruningSchedule().ramp_factor(0) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"warmup": 3, "freeze": 3}, "must come after warmup"),
        ({"ramp": -1}, "must be >= 0"),
        ({"warmup": float("nan")}, "warmup=nan must be a finite number"),
        ({"freeze": float("inf")}, "freeze=inf must be a finite number"),
    ],
)
def test_bad_schedules(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PruningSchedule(**kwargs)


def test_check_finite_names_the_value():
    with pytest.raises(ValueError, match="strength=nan"):
        check_finite(strength=float("nan"))
