import pytest
import torch
from torch import nn

from lightning_auxprune.export.bake import bake, bake_state_dict
from lightning_auxprune.options import MaskOptions
from lightning_auxprune.patch import find_masks, patch_model


def make_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


@pytest.mark.parametrize("granularity", ["weight", "neuron"])
def test_bake_matches_masked_model_and_original_keys(granularity):
    net = make_net()
    keys = list(net.state_dict())
    masks = patch_model(net, ["0", "3"], MaskOptions(granularity=granularity))
    with torch.no_grad():
        for mask in masks.values():
            mask.aux.copy_(torch.randn_like(mask.aux))
    x = torch.randn(3, 1, 8, 8)
    baked = bake(net)
    assert list(baked.state_dict()) == keys
    assert [type(m) for m in baked] == [type(m) for m in make_net()]  # plain classes again
    torch.save(baked, "/dev/null")  # picklable, unlike a parametrized module
    torch.testing.assert_close(baked(x), net(x), rtol=0, atol=0)
    fresh = make_net()
    fresh.load_state_dict(baked.state_dict())  # strict
    torch.testing.assert_close(fresh(x), net(x), rtol=0, atol=0)
    assert find_masks(net), "bake() must not modify the source model"
    from_checkpoint = bake_state_dict(net.state_dict())
    assert list(from_checkpoint) == keys
    fresh.load_state_dict(from_checkpoint)
    torch.testing.assert_close(fresh(x), net(x), rtol=0, atol=0)


def test_bake_inplace_and_unpatched_error():
    net = make_net()
    patch_model(net, ["3"], MaskOptions())
    assert bake(net, inplace=True) is net
    assert not find_masks(net)
    with pytest.raises(ValueError, match="carries no auxiliary masks"):
        bake(make_net())


def test_bake_state_dict_rejects_foreign_parametrizations():
    with pytest.raises(ValueError, match="was not made by AuxMask"):
        bake_state_dict({"fc.parametrizations.weight.original": torch.ones(1)})
