import torch
from torch import nn

from lightning_auxprune.flops import LayerFlops, count_flops, nonzero_flops


def test_count_flops_matches_torch_convention_and_keeps_bn_stats():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    before = net[1].running_mean.clone()
    flops = count_flops(net, torch.randn(2, 3, 8, 8))
    conv = 2 * 2 * 8 * 6 * 6 * 3 * 3 * 3
    linear = 2 * 2 * 288 * 10
    assert flops == conv + linear
    assert torch.equal(net[1].running_mean, before)
    assert net.training


def test_layer_flops_counts_every_call_until_detached():
    net = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    tracker = LayerFlops()
    tracker.attach(net)
    net(torch.zeros(7, 10))
    net[2](torch.zeros(3, 20))  # a second call of one layer counts too
    tracker.detach()
    net(torch.zeros(7, 10))  # after detach: not recorded
    assert tracker.dense(net) == {"0": 400, "2": 400}
    assert nonzero_flops(400, 0.0) == 0.0
    assert not tracker._handles
