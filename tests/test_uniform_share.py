"""The uniform cut's unit fraction for a target, and the moving floor that keeps each layer near it."""

import math
import warnings

import pytest
import torch

from examples.models.vgg import VGGLike
from examples.models.vit import SmallViT
from lightning_auxprune import AuxPruner, layer_stats
from lightning_auxprune.floor import UnitFloor
from tests.test_pruner import Net, train

EXAMPLE = torch.zeros(1, 1, 8, 8)


def uniform_gates(units, fraction):
    return torch.cat([torch.arange(n) < math.ceil(fraction * n) for n in units]).float().unsqueeze(0)


@pytest.mark.parametrize(("model", "flops"), [("vgg", 0.25), ("vgg", 0.35), ("vgg", 0.8), ("vit", 0.35), ("vit", 0.5)])
def test_the_uniform_cut_found_keeps_at_most_the_flops_asked(model, flops):
    """The floor it sets never holds more than the target, even where 4 heads make the FLOPs jump."""
    net = VGGLike() if model == "vgg" else SmallViT()
    pruner = AuxPruner(granularity="neuron", target_flops=flops, ramp=1, min_uniform_share=1.0, min_unit_fraction=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the ViT's layers left dense are named in a warning
        pruner.attach(net, torch.zeros(1, 1, 28, 28))
    kept, units = pruner.kept_flops(), pruner._set.entry_counts
    u = pruner._share.fraction_for(flops)
    assert float(kept.batch(uniform_gates(units, u))[0]) <= flops
    assert float(kept.batch(uniform_gates(units, u + 1 / 128))[0]) > flops  # the table's next step
    assert 0.0 < u < 1.0 and pruner._share.fraction_for(1.0) == 1.0


def test_the_moving_floor_keeps_that_fraction_of_every_layer_open():
    aux = [torch.tensor([0.5, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0]), torch.tensor([1.0, 2.0, -3.0, -0.5])]
    UnitFloor([8, 4], min_units=1, min_fraction=0.0, lift=0.01).apply(aux, fraction=0.5)
    assert [int((a > 0).sum()) for a in aux] == [4, 2]  # ceil(0.5 * 8), and the second had two already
    assert aux[1].tolist() == [1.0, 2.0, -3.0, -0.5]  # nothing lifted where the floor holds
    UnitFloor([8, 4], min_units=0, min_fraction=0.0, lift=0.01).apply(aux, fraction=0.9)
    assert [int((a > 0).sum()) for a in aux] == [8, 4]


def widths(share):
    torch.manual_seed(0)
    model = Net()
    pruner = AuxPruner(
        granularity="neuron",
        strength=1e-2,
        aux_optimizer="normalized_sgd",
        aux_lr=0.2,
        target_flops=0.6,
        ramp=8,
        min_unit_fraction=0.0,
        min_uniform_share=share,
    )
    pruner.attach(model, EXAMPLE)
    train(pruner, model, steps=12)
    return {s.name: s.open_units for s in layer_stats(pruner.masks)}, pruner


def test_a_layer_keeps_its_uniform_share_along_the_ramp():
    free, _ = widths(0.0)
    held, pruner = widths(1.0)
    u = pruner._share.fraction_for(0.6)
    least = {"conv": math.ceil(u * 6), "fc1": math.ceil(u * 32)}
    assert free["conv"] < least["conv"]  # left alone, the push takes the costly convolution below its share
    assert all(held[name] >= least[name] for name in least), (held, least)
    half, _ = widths(0.5)
    assert half["conv"] >= math.ceil(0.5 * u * 6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_uniform_share": 1.5, "granularity": "neuron", "target_flops": 0.5, "ramp": 1}, r"in \[0, 1\]"),
        ({"min_uniform_share": float("nan")}, "min_uniform_share=nan must be a finite number"),
        ({"min_uniform_share": 0.5, "target_sparsity": 0.5, "ramp": 1}, "needs granularity='neuron'"),
        ({"min_uniform_share": 0.5, "granularity": "neuron"}, "and a target"),
    ],
)
def test_bad_shares_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AuxPruner(**kwargs)


def test_a_sparsity_target_shares_the_open_weights():
    pruner = AuxPruner(granularity="neuron", target_sparsity=0.5, ramp=1, min_uniform_share=1.0)
    pruner.attach(Net(), EXAMPLE)
    units = pruner._set.entry_counts
    u = pruner._share.fraction_for(0.5)
    open_weights = sum(math.ceil(u * n) * f for n, f in zip(units, pruner._set.fan_ins, strict=True))
    assert abs(open_weights / pruner._set.total_weights - 0.5) < 0.05
