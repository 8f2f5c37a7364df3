import pytest

from lightning_auxprune.options import MaskOptions


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ste": "tanh"}, "Unknown ste='tanh'. Use one of: 'identity', 'relu', 'leaky_relu', 'softplus'"),
        ({"rule": "magnitude"}, "Unknown rule='magnitude'. Use one of: 'sign', 'chain'"),
        ({"granularity": "channel"}, "Unknown granularity='channel'"),
        ({"weight_grad": "none"}, "Unknown weight_grad='none'"),
        ({"init": "random"}, "Unknown init='random'"),
        ({"alpha": 1.0}, "alpha=1.0 is outside [0, 1)"),
        ({"alpha": -0.1}, "alpha=-0.1 is outside [0, 1)"),
        ({"beta": 0.0}, "beta=0.0 must be > 0"),
        ({"init_scale": 0.0}, "init_scale=0.0 must be > 0"),
    ],
)
def test_bad_options_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        MaskOptions(**kwargs)


def test_defaults_follow_method():
    opts = MaskOptions()
    assert (opts.granularity, opts.rule, opts.weight_grad, opts.init) == ("weight", "sign", "masked", "constant")
    assert MaskOptions(alpha=0.0).alpha == 0.0
