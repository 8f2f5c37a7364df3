"""AuxMaskPruning's arguments: validated at construction, presets, what a preset resolves (no training)."""

import pytest

from lightning_auxprune import AuxMaskPruning
from tests.conftest import TinyNet


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strength": -1.0}, "must be >= 0"),
        ({"ste": "sigmoid"}, "Unknown ste='sigmoid'"),
        ({"rule": "grad"}, "Unknown rule='grad'"),
        ({"alpha": 1.5}, r"outside \[0, 1\)"),
        ({"regularizer": "l2"}, "Unknown regularizer='l2'"),
        ({"aux_lr": 0.0}, "aux_lr=0.0 must be > 0"),
        ({"aux_lr_mode": "cosine"}, "Unknown aux_lr_mode"),
        ({"log_every_n_steps": 0}, "must be >= 1"),
        ({"layer_types": ["LSTM"]}, "Unsupported layer type"),
        ({"aux_optimizer": "adam"}, "Unknown aux_optimizer='adam'"),
        ({"target_sparsity": 0.5, "target_flops": 0.5, "freeze": 2}, "not both"),
        ({"target_sparsity": 1.0, "freeze": 2}, r"target_sparsity=1.0 is the fraction of weights to prune"),
        ({"target_flops": 0.0, "freeze": 2}, r"target_flops=0.0 is the fraction of FLOPs to keep"),
        ({"target_sparsity": 0.5}, "set ramp > 0 or freeze"),
        ({"target_sparsity": 0.5, "freeze": 2, "strength": 0.0}, "initial value and must be > 0"),
        ({"target_sparsity": 0.5, "freeze": 2, "target_gain": 0.0}, "Need target_gain=0.0 > 0"),
        ({"target_gain": 0.05, "target_min_strength": 1e-6}, r"\['target_gain', 'target_min_strength'\] tune"),
        ({"target_p_gain": 0.0}, "set target_sparsity or target_flops too"),
        ({"target_sparsity": 0.5, "freeze": 2, "target_min_strength": 1e-3}, "lower target_min_strength"),
        ({"target_sparsity": 0.5, "freeze": 2, "target_min_strength": 0.0}, r"0 < min_strength=0.0 \(target_min"),
    ],
)
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cb = AuxMaskPruning(**kwargs)
        cb.setup(None, TinyNet(), "fit")  # type: ignore[arg-type]  # some settings are checked against the model


def test_include_given_as_string_is_rejected():
    with pytest.raises(TypeError, match="must be a list of regexes"):
        AuxMaskPruning(include="fc1")  # type: ignore[arg-type]


def test_paper_preset_spells_out_the_papers_choices():
    cb = AuxMaskPruning.paper(strength=3e-4, exclude=["fc2"])
    assert (cb.options.ste, cb.options.rule, cb.options.weight_grad, cb.options.init) == (
        "leaky_relu",
        "sign",
        "masked",
        "constant",
    )
    assert (cb.pruner.regularizer, cb.pruner.aux_optimizer, cb.controller) == ("count", "shared", None)
    assert (cb.pruner.strength, cb.schedule.warmup, cb.schedule.freeze) == (3e-4, 0.0, None)
    assert cb.pruner.exclude == ["fc2"]
    with pytest.raises(ValueError, match=r"\['rule'\] are fixed by the paper preset"):
        AuxMaskPruning.paper(rule="chain")


def test_callback_passes_the_floor_to_its_controller():
    cb = AuxMaskPruning(target_sparsity=0.5, freeze=2, strength=1e-3, target_min_strength=1e-5)
    assert cb.controller is not None and cb.controller.min_strength == 1e-5
