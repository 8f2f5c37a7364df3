"""The kept-FLOPs ratio during training equals the shrunk model's FLOPs ratio (issue: exact structured FLOPs)."""

import pytest
import torch
from torch import nn

from examples.models.mobilenet import SmallMobileNetV2
from examples.models.resnet import ResNet20
from examples.models.vgg import VGGLike
from examples.models.vit import SmallViT
from lightning_auxprune import AuxPruner
from lightning_auxprune.export.shrink import shrink
from lightning_auxprune.flops import count_flops
from lightning_auxprune.kept_flops import layer_flops


class ResidualDepthwise(nn.Module):
    """Stem, a residual block, a depthwise-separable block, a concatenation, a Linear called twice."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.res1 = nn.Sequential(nn.Conv2d(8, 12, 3, padding=1, bias=False), nn.BatchNorm2d(12), nn.ReLU())
        self.res2 = nn.Sequential(nn.Conv2d(12, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.expand = nn.Sequential(nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.depthwise = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.BatchNorm2d(16))
        self.side = nn.Conv2d(8, 6, 1)
        self.project = nn.Conv2d(22, 10, 1)
        self.hidden = nn.Linear(10 * 4 * 4, 20)
        self.again = nn.Linear(20, 20)
        self.head = nn.Linear(20, 5)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.res2(self.res1(x)))
        x = torch.cat([torch.relu(self.depthwise(self.expand(x))), self.side(x)], dim=1)
        x = nn.functional.adaptive_avg_pool2d(torch.relu(self.project(x)), 4).flatten(1)
        h = torch.relu(self.hidden(x))
        h = torch.relu(self.again(h))
        h = torch.relu(self.again(h))  # one layer, two calls
        return self.head(h)


MODELS = {
    "vgg": (VGGLike, (1, 1, 28, 28)),
    "resnet20": (ResNet20, (1, 1, 28, 28)),
    "mobilenetv2": (SmallMobileNetV2, (1, 1, 28, 28)),
    "residual_depthwise": (ResidualDepthwise, (1, 1, 8, 8)),
    "vit": (SmallViT, (1, 1, 28, 28)),  # attention heads and MLP units; the residual stream stays dense
}


STREAM = {"vit": ["patch_embed", r"blocks\.\d+\.fc2"]}  # they share the stream with LayerNorms and tokens


def close_at_random(pruner, fraction, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for aux in pruner.aux_parameters():
            aux.copy_(torch.where(torch.rand(aux.shape, generator=g) < fraction, -1.0, 1.0))
    pruner.reset()


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize(("fraction", "seed"), [(0.3, 0), (0.6, 1)])
def test_training_time_ratio_is_the_shrunk_models(name, fraction, seed):
    factory, shape = MODELS[name]
    torch.manual_seed(seed)
    model = factory().eval()
    x = torch.randn(*shape)
    pruner = AuxPruner(granularity="neuron", min_units=1, min_unit_fraction=0.0, exclude=STREAM.get(name))
    pruner.attach(model, x)
    close_at_random(pruner, fraction, seed)
    ratio = pruner.metrics(0.0)["auxprune/flops_ratio"]
    result = shrink(model, x, on_unsafe="error")  # coupled masks: every closed unit can be removed
    shrunk = count_flops(result.model, x) / count_flops(model, x)
    assert ratio < 0.95
    assert abs(ratio - shrunk) <= 1e-6, (ratio, shrunk)  # the issue asks for 0.5 pp; they agree to rounding
    assert sum(result.removed.values()) > 0 and not result.skipped


def test_every_call_of_a_layer_counts():
    model = ResidualDepthwise()
    total, per_layer = layer_flops(model, torch.zeros(1, 1, 8, 8))
    assert per_layer["again"] == 2 * 2 * 20 * 20
    assert total == count_flops(model, torch.zeros(1, 1, 8, 8))


def test_a_linear_called_four_times_counts_four_times():
    class Repeat(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(8, 8)
            self.out = nn.Linear(8, 2)

        def forward(self, x):
            for _ in range(4):
                x = torch.relu(self.inner(x))
            return self.out(x)

    model = Repeat()
    pruner = AuxPruner(granularity="neuron", min_units=0, min_unit_fraction=0.0)
    pruner.attach(model, torch.zeros(1, 8))
    with torch.no_grad():
        pruner.masks["inner"].aux.fill_(-1.0)
    pruner.reset()
    ratio = pruner.metrics(0.0)["auxprune/flops_ratio"]
    # all 8 units closed: the four calls and the output layer's inputs all go; nothing is left
    assert ratio == pytest.approx(0.0)


@pytest.mark.parametrize("name", ["resnet20", "residual_depthwise"])
def test_per_layer_masks_count_what_shrink_can_remove(name):
    """With one mask per layer, a coupled channel goes only when every layer producing it closed it."""
    factory, shape = MODELS[name]
    torch.manual_seed(0)
    model = factory().eval()
    x = torch.randn(*shape)
    pruner = AuxPruner(granularity="neuron", coupled=False, min_units=1, min_unit_fraction=0.0)
    pruner.attach(model, x)
    close_at_random(pruner, 0.5, 0)
    ratio = pruner.metrics(0.0)["auxprune/flops_ratio"]
    result = shrink(model, x, on_unsafe="error")  # units still open in a coupled layer are simply kept
    shrunk = count_flops(result.model, x) / count_flops(model, x)
    assert abs(ratio - shrunk) <= 0.005, (ratio, shrunk)


def test_the_first_call_on_another_device_counts_there():
    """The tables follow the masks to their device on the first call (the meta device stands in for a GPU)."""
    from lightning_auxprune.coupling import channel_coupling
    from lightning_auxprune.kept_flops import KeptFlops

    net, x = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), torch.zeros(1, 4)
    total, per_layer = layer_flops(net, x)
    weights = KeptFlops.weights(total, per_layer, {"0": 0}, [32])
    units = KeptFlops.units(total, per_layer, channel_coupling(net, x), {"0": 0}, [8])
    gates = [torch.ones(8, device="meta")]
    open_entries = torch.ones(1, dtype=torch.float64, device="meta")
    assert weights.ratio(gates, open_entries).device.type == "meta"
    assert units.ratio(gates, open_entries).device.type == "meta"
