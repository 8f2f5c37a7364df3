import copy

import torch
from torch import nn

from lightning_auxprune.options import MaskOptions
from lightning_auxprune.parametrization import AuxMask, initial_scores
from lightning_auxprune.patch import patch_layer


def test_constant_init_is_dense():
    scores = initial_scores(torch.randn(5, 3), MaskOptions(init_scale=0.7))
    assert torch.equal(scores, torch.full((5, 3), 0.7))


def test_magnitude_init_weight_and_neuron():
    w = torch.tensor([[4.0, 0.0], [-2.0, 2.0]])
    weight = initial_scores(w, MaskOptions(init="magnitude", init_scale=2.0))
    # |w| / mean|w| = [2, 0, 1, 1] * 2, zero floored at 1e-3 * 2
    torch.testing.assert_close(weight, torch.tensor([[4.0, 2e-3], [2.0, 2.0]]))
    neuron = initial_scores(w, MaskOptions(init="magnitude", granularity="neuron"))
    torch.testing.assert_close(neuron, torch.tensor([1.0, 1.0]))
    assert bool((weight > 0).all())


def test_neuron_mask_gates_bias_and_zeroes_unit_output():
    layer = nn.Linear(3, 2)
    mask = patch_layer(layer, MaskOptions(granularity="neuron"))
    with torch.no_grad():
        mask.aux[1] = -1.0
    out = layer(torch.randn(4, 3))
    assert torch.equal(out[:, 1], torch.zeros(4))
    assert list(dict(layer.named_parameters())) == [
        "parametrizations.weight.original",
        "parametrizations.weight.0.aux",
        "parametrizations.bias.original",
    ]


def test_deepcopy_keeps_shared_mask():
    layer = nn.Conv2d(2, 3, 3)
    patch_layer(layer, MaskOptions(granularity="neuron"))
    clone = copy.deepcopy(layer)
    owner = clone.parametrizations.weight[0]
    assert clone.parametrizations.bias[0].owner is owner
    assert owner.aux is not layer.parametrizations.weight[0].aux


def test_fan_in_and_density():
    mask = AuxMask(torch.ones(4, 2, 3, 3), MaskOptions(granularity="neuron"))
    assert mask.fan_in() == 18
    with torch.no_grad():
        mask.aux[:1] = -1
    assert mask.density() == 0.75
