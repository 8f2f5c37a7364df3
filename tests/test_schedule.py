import pytest

from lightning_auxprune.schedule import PruningSchedule


def test_phases_and_ramp():
    s = PruningSchedule(strength=1.0, warmup=2, ramp=4, freeze=10)
    assert [s.phase(t) for t in (0, 1.99, 2, 9.99, 10, 50)] == [
        "warmup",
        "warmup",
        "pruning",
        "pruning",
        "frozen",
        "frozen",
    ]
    assert [s.lambda_at(t) for t in (1, 2, 3, 6, 8, 10)] == [0.0, 0.0, 0.25, 1.0, 1.0, 0.0]
    assert PruningSchedule(strength=0.5).lambda_at(0) == 0.5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strength": -1e-4}, "must be >= 0"),
        ({"unit": "batch"}, "Unknown unit='batch'"),
        ({"warmup": 3, "freeze": 3}, "must come after warmup"),
        ({"ramp": -1}, "must be >= 0"),
    ],
)
def test_bad_schedules(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PruningSchedule(**kwargs)
