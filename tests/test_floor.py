"""Neuron pruning cannot silently close a layer, and leaves the classifier alone by default."""

import pytest
import torch

from examples.models.vit import SmallViT
from lightning_auxprune import AuxMaskPruning, AuxPruner, layer_stats
from lightning_auxprune.floor import UnitFloor, floor_units
from lightning_auxprune.pruner import UnreachableTargetError
from tests.conftest import TinyNet, tiny_trainer, toy_loader


def collapse_run(tmp_path, **kwargs):
    """lambda far too strong for the data: without a floor every unit closes within a few steps."""
    torch.manual_seed(0)
    cb = AuxMaskPruning(
        granularity="neuron",
        strength=1.0,
        aux_lr=1.0,
        aux_optimizer="sgd",
        log_every_n_steps=4,
        print_table=False,
        **kwargs,
    )
    tiny_trainer(tmp_path, 2, [cb]).fit(TinyNet(), toy_loader())
    return cb


def test_a_model_built_to_collapse_keeps_its_floor(tmp_path):
    cb = collapse_run(tmp_path)
    units = {s.name: (s.open_units, s.units) for s in layer_stats(cb.masks)}
    assert set(units) == {"conv", "fc1"}  # fc2 is the output layer: left dense
    assert units["conv"] == (1, 4)  # max(1, ceil(0.05 * 4)) = 1 unit stays open
    assert units["fc1"] == (2, 32)  # ceil(0.05 * 32) = 2
    assert cb.pruner.metrics(2.0)["auxprune/closed_layers"] == 0.0


def test_without_a_floor_a_collapse_is_reported(tmp_path):
    with pytest.warns(UserWarning, match=r"closed every mask of \['conv', 'fc1'\]"):
        cb = collapse_run(tmp_path, min_units=0, min_unit_fraction=0.0)
    assert all(s.open_units == 0 for s in layer_stats(cb.masks))
    assert cb.pruner.collapsed == ["conv", "fc1"]


def test_the_output_layer_is_left_dense_unless_asked():
    assert list(AuxPruner(granularity="neuron").attach(TinyNet(), torch.zeros(1, 16))) == ["conv", "fc1"]
    assert list(AuxPruner(granularity="neuron", keep_output_layer=False).attach(TinyNet(), torch.zeros(1, 16))) == [
        "conv",
        "fc1",
        "fc2",
    ]
    assert list(AuxPruner(granularity="weight").attach(TinyNet(), torch.zeros(1, 16))) == [
        "conv",
        "fc1",
        "fc2",
    ]  # weight masks: all
    with pytest.raises(ValueError, match="keep_output_layer=False"):
        AuxPruner(granularity="neuron", include=["fc2"]).attach(TinyNet(), torch.zeros(1, 16))
    with pytest.warns(UserWarning, match="matches 'fc2', the model's output layer"):
        assert list(AuxPruner(granularity="neuron", include=["fc.*"]).attach(TinyNet(), torch.zeros(1, 16))) == ["fc1"]


def test_floor_sizes_and_bad_settings():
    assert [floor_units(n, 1, 0.05) for n in (1, 4, 32, 100)] == [1, 1, 2, 5]
    assert not UnitFloor([4, 8], 0, 0.0, 1e-3).enabled
    with pytest.raises(ValueError, match="min_unit_fraction"):
        AuxPruner(min_unit_fraction=1.0)


def test_the_floor_lifts_only_the_best_units_of_layers_below_it():
    aux = [torch.tensor([-0.3, -0.1, -0.2, -0.4]), torch.tensor([0.5, -1.0, 0.2]), torch.tensor([-1.0, -1.0])]
    UnitFloor([4, 3, 2], min_units=2, min_fraction=0.0, lift=0.01).apply(aux)
    assert aux[0].tolist() == pytest.approx([-0.3, 0.01, 0.01, -0.4])  # the two largest m reopened
    assert aux[1].tolist() == pytest.approx([0.5, -1.0, 0.2])  # two open already: untouched
    assert aux[2].tolist() == pytest.approx([0.01, 0.01])


def test_a_flops_target_below_the_floor_is_refused_at_attach():
    example = torch.zeros(1, 1, 28, 28)
    # every layer at a quarter of its heads / hidden units keeps 26.1% of this ViT's FLOPs
    with pytest.raises(UnreachableTargetError, match=r"with every layer at its floor .* 26\.1% of the FLOPs stay"):
        AuxPruner(granularity="neuron", target_flops=0.25, ramp=1, min_unit_fraction=0.25).attach(SmallViT(), example)
    AuxPruner(granularity="neuron", target_flops=0.25, ramp=1, min_unit_fraction=0.05).attach(SmallViT(), example)


def test_floor_gates_hold_each_layer_at_its_floor():
    floor = UnitFloor([4, 32], min_units=1, min_fraction=0.05, lift=1e-3)
    gates = floor.floor_gates()
    assert gates[:4].tolist() == [1.0, 0.0, 0.0, 0.0] and gates[4:].sum() == 2
