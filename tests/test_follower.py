import pytest
import torch
from torch import nn

from lightning_auxprune.export.bake import bake
from lightning_auxprune.follower import followers
from lightning_auxprune.options import MaskOptions
from lightning_auxprune.patch import patch_model


def net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.BatchNorm2d(4),  # BN not fed by a masked layer directly
        nn.Flatten(),
        nn.Linear(4 * 25, 3),
        nn.BatchNorm1d(3),
    )


def randomize_bn(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-1, 1)
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)


def test_closed_units_are_zero_after_batchnorm_and_bake_folds_the_gate():
    model = net()
    randomize_bn(model)
    masks = patch_model(model, ["0", "7"], MaskOptions(granularity="neuron"))
    with torch.no_grad():
        masks["0"].aux[[1, 3]] = -1.0
        masks["7"].aux[0] = -1.0
    model.eval()
    x = torch.randn(5, 1, 5, 5)
    hidden = model[:3](x)
    assert torch.equal(hidden[:, [1, 3]], torch.zeros_like(hidden[:, [1, 3]]))
    out = model(x)
    assert torch.equal(out[:, 0], torch.zeros(5))
    assert set(followers(model)) == {"1", "8"}  # "5" follows a ReLU, not a masked layer
    baked = bake(model)
    assert followers(baked) == {}
    assert not any(baked[i]._forward_hooks for i in (0, 1, 8))
    torch.testing.assert_close(baked(x), out, rtol=0, atol=0)
    assert torch.equal(baked[1].weight[[1, 3]], torch.zeros(2))
    assert followers(model), "bake must leave the source model gated"


def test_follower_pairing_survives_deepcopy_independently():
    import copy

    model = net()
    masks = patch_model(model, ["0"], MaskOptions(granularity="neuron"))
    model.eval()(torch.randn(2, 1, 5, 5))
    clone = copy.deepcopy(model)
    with torch.no_grad():
        masks["0"].aux[0] = -1.0  # closing a unit in the original must not touch the clone
    x = torch.randn(2, 1, 5, 5)
    assert torch.equal(model[:2](x)[:, 0], torch.zeros(2, 5, 5))
    assert not torch.equal(clone[:2](x)[:, 0], torch.zeros(2, 5, 5))


def test_affine_false_batchnorm_cannot_carry_the_gate():
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2, affine=False))
    masks = patch_model(model, ["0"], MaskOptions(granularity="neuron"))
    model(torch.randn(2, 1, 3, 3))
    with torch.no_grad():
        masks["0"].aux[0] = -1.0
    with pytest.raises(ValueError, match="affine=False"):
        bake(model)
