import pytest
from torch import nn

from lightning_auxprune.layer_selection import select_layers


def net():
    return nn.Sequential(
        nn.Conv2d(1, 2, 3),
        nn.BatchNorm2d(2),
        nn.Flatten(),
        nn.Linear(8, 4),
        nn.Sequential(nn.Linear(4, 2)),
    )


def test_defaults_take_all_linear_and_conv():
    assert select_layers(net()) == ["0", "3", "4.0"]


def test_include_exclude_and_types():
    assert select_layers(net(), include=[r"4\..*"]) == ["4.0"]
    assert select_layers(net(), exclude=["0"]) == ["3", "4.0"]
    assert select_layers(net(), types=["Linear"]) == ["3", "4.0"]


def test_pattern_matching_nothing_is_an_error():
    with pytest.raises(ValueError, match=r"Pattern 'fc1' matches no prunable layer.*Prunable layers are: 0, 3, 4.0"):
        select_layers(net(), include=["fc1"])
    with pytest.raises(ValueError, match="matches no prunable layer"):
        select_layers(net(), exclude=["classifier"])


def test_no_prunable_layer():
    with pytest.raises(ValueError, match="has no prunable layer"):
        select_layers(nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3)))


def test_bad_types_and_regex_and_empty_result():
    with pytest.raises(ValueError, match="Unsupported layer type"):
        select_layers(net(), types=["ConvTranspose2d"])
    with pytest.raises(ValueError, match="not a valid regex"):
        select_layers(net(), include=["("])
    with pytest.raises(ValueError, match="leave no layer"):
        select_layers(net(), include=["0"], exclude=["0"])
    with pytest.raises(TypeError, match="must be a list"):
        select_layers(net(), include="0")  # type: ignore[arg-type]
