"""With a FLOPs target, a unit is pushed in proportion to the FLOPs its closing saves."""

import pytest
import torch
from torch import nn

from lightning_auxprune import AuxPruner


def pushes(cost_aware):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    pruner = AuxPruner(
        granularity="neuron",
        target_flops=0.5,
        ramp=10,
        strength=1e-3,
        cost_aware=cost_aware,
        min_units=0,
        min_unit_fraction=0.0,
    )
    masks = pruner.attach(net, torch.zeros(1, 16))  # the output layer "4" stays dense
    (0.0 * net(torch.randn(4, 16)).sum()).backward()  # data gradients exist but are zero: only the push remains
    pruner.before_optimizer_step(position=5.0)
    return {name: float(mask.aux.grad.mean()) for name, mask in masks.items()}


def test_costlier_units_are_pushed_harder():
    grads = pushes(cost_aware=True)
    # closing a unit of layer "0" removes its 16 multiply-adds and one input of each of layer "2"'s
    # 8 units (24 in all); one of layer "2" removes 8, plus one input of each of the 2 outputs (10)
    assert grads["0"] / grads["2"] == pytest.approx(24 / 10)
    # normalised: the average push per unit is what it would be without cost weights
    plain = pushes(cost_aware=False)
    assert plain["0"] == pytest.approx(plain["2"])
    assert (8 * grads["0"] + 8 * grads["2"]) / 16 == pytest.approx(plain["0"])


def test_sparsity_targets_push_every_entry_alike():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))
    pruner = AuxPruner(target_sparsity=0.5, ramp=10, strength=1e-3)
    masks = pruner.attach(net)
    (0.0 * net(torch.randn(4, 16)).sum()).backward()
    pruner.before_optimizer_step(position=5.0)
    assert float(masks["0"].aux.grad.mean()) == pytest.approx(float(masks["2"].aux.grad.mean()))
