import copy
import warnings

import pytest
import torch
from torch import nn

from examples.models.mobilenet import SmallMobileNetV2
from examples.models.resnet import ResNet20
from examples.models.vgg import VGGLike
from lightning_auxprune.export.shrink import UnsafeShrinkError, load_shrunk, save_shrunk, shrink
from lightning_auxprune.layer_selection import select_layers
from lightning_auxprune.options import MaskOptions
from lightning_auxprune.patch import patch_model

NEURON = MaskOptions(granularity="neuron")


def randomize_bn(model):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def prune_randomly(model, include, fraction=0.5, seed=0):
    """Patch the matching layers and close ``fraction`` of each one's units (keeping at least one)."""
    names = select_layers(model, include=include)
    masks = patch_model(model, names, NEURON)
    model.eval()(torch.zeros(1, 1, 28, 28))  # first forward pairs BatchNorms with masked layers
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mask in masks.values():
            n = mask.aux.numel()
            closed = torch.randperm(n, generator=g)[: min(int(n * fraction), n - 1)]
            mask.aux[closed] = -1.0
    return masks


def build(factory):
    torch.manual_seed(0)
    model = factory()
    randomize_bn(model)
    return model


CASES = {
    "vgg": (VGGLike, [r"features\.\d+", r"classifier\.1"]),
    "resnet20": (ResNet20, [r"stages\.\d+\.conv1"]),
    "mobilenetv2": (SmallMobileNetV2, [r"blocks\.\d+\.depthwise"]),
}


@pytest.mark.parametrize("arch", list(CASES))
def test_shrunk_model_computes_the_same_function(arch, tmp_path):
    factory, include = CASES[arch]
    model = build(factory)
    masks = prune_randomly(model, include)
    x = torch.randn(8, 1, 28, 28)
    result = shrink(model, x[:2])
    shrunk = result.model
    with torch.no_grad():
        torch.testing.assert_close(shrunk(x), model(x), rtol=1e-4, atol=1e-5)
    for name, mask in masks.items():
        assert result.removed[name] == int((mask.aux <= 0).sum()), name
    assert result.shrunk_macs < result.dense_macs
    assert not result.skipped
    # whole-module pickling and state_dict + widths both round-trip
    torch.save(shrunk, tmp_path / "whole.pt")
    again = torch.load(tmp_path / "whole.pt", weights_only=False)
    save_shrunk(shrunk, str(tmp_path / "compact.pt"))
    fresh = load_shrunk(factory(), str(tmp_path / "compact.pt")).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x), shrunk(x), rtol=0, atol=0)
        torch.testing.assert_close(fresh(x), shrunk(x), rtol=0, atol=0)
    # a loaded model fine-tunes: its parameters require grad as the architecture's do
    assert all(p.requires_grad for p in fresh.parameters())


def test_residual_coupling_is_refused_or_skipped():
    model = build(ResNet20)
    prune_randomly(model, [r"stages\.1\.conv2"])  # feeds the residual stream shared with unmasked layers
    x = torch.randn(2, 1, 28, 28)
    with pytest.raises(UnsafeShrinkError, match=r"layer 'stages\.1\.conv2'.*coupled"):
        shrink(model, x)
    with pytest.warns(UserWarning, match="Skipped"):
        result = shrink(model, x, on_unsafe="skip")
    assert "stages.1.conv2" in result.skipped
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), model(x), rtol=1e-4, atol=1e-5)


def test_bad_input():
    with pytest.raises(ValueError, match="carries no auxiliary masks"):
        shrink(VGGLike(), torch.zeros(1, 1, 28, 28))
    model = VGGLike()
    patch_model(model, ["classifier.1"], MaskOptions())
    with pytest.raises(ValueError, match="weight-granularity masks"):
        shrink(model, torch.zeros(1, 1, 28, 28))
    with pytest.raises(ValueError, match="Unknown on_unsafe"):
        shrink(model, torch.zeros(1, 1, 28, 28), on_unsafe="ignore")  # type: ignore[arg-type]


def test_loading_into_the_wrong_architecture(tmp_path):
    model = build(VGGLike)
    prune_randomly(model, [r"features\.\d+"])
    save_shrunk(shrink(model, torch.randn(2, 1, 28, 28)).model, str(tmp_path / "vgg.pt"))
    with pytest.raises(ValueError, match="does not fit ResNet20"):
        load_shrunk(ResNet20(), str(tmp_path / "vgg.pt"))


class TwoBranches(nn.Module):
    """Two conv branches concatenated along channels, then a (grouped) conv and a classifier."""

    def __init__(self, groups=1):
        super().__init__()
        self.a = nn.Conv2d(1, 6, 3, padding=1)
        self.bn_a = nn.BatchNorm2d(6)
        self.b = nn.Conv2d(1, 4, 3, padding=1)
        self.mix = nn.Conv2d(10, 10, 3, padding=1, groups=groups)
        self.fc = nn.Linear(10, 3)

    def forward(self, x):
        y = torch.cat([torch.relu(self.bn_a(self.a(x))), torch.relu(self.b(x))], dim=1)
        y = torch.relu(self.mix(y))
        return self.fc(y.mean(dim=(2, 3)))


def two_branches(groups):
    model = build(lambda: TwoBranches(groups))
    masks = patch_model(model, ["a", "b"], NEURON)
    model.eval()(torch.zeros(1, 1, 8, 8))
    with torch.no_grad():
        masks["a"].aux[[0, 4]] = -1.0
        masks["b"].aux[[1]] = -1.0
    return model


def test_concatenation():
    model = two_branches(groups=1)
    x = torch.randn(3, 1, 8, 8)
    result = shrink(model, x)
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), model(x), rtol=1e-4, atol=1e-5)
    assert (result.model.a.out_channels, result.model.b.out_channels, result.model.mix.in_channels) == (4, 3, 7)


def test_grouped_conv_that_cannot_be_split_is_reported():
    model = two_branches(groups=2)
    x = torch.randn(3, 1, 8, 8)
    with pytest.raises(UnsafeShrinkError, match=r"layer 'a'.*Torch-Pruning cannot remove them"):
        shrink(model, x)
    with pytest.warns(UserWarning, match="Skipped"):
        result = shrink(model, x, on_unsafe="skip")
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), model(x), rtol=1e-4, atol=1e-5)


class WithAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(6, 8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        y = self.embed(x)
        return self.head(self.attn(y, y, y, need_weights=False)[0].mean(dim=1))


def test_attention_out_proj_is_refused_by_name_or_skipped():
    import warnings

    from lightning_auxprune import AuxPruner

    torch.manual_seed(0)
    model = WithAttention().eval()
    x = torch.randn(2, 4, 6)
    with pytest.warns(
        UserWarning, match=r"\['embed'\] \(its channels cannot be removed exactly: they pass through an attention"
    ):
        masks = AuxPruner(granularity="neuron").attach(copy.deepcopy(model), x)
    assert "attn" in masks and "attn.out_proj" not in masks  # head masks cover out_proj's inputs
    masks = patch_model(model, ["attn.out_proj"], NEURON)  # masked by hand, shrink refuses it by name:
    with torch.no_grad():
        masks["attn.out_proj"].aux[:3] = -1.0
    with pytest.raises(UnsafeShrinkError, match=r"'attn\.out_proj'.*dependency graph does not cover it"):
        shrink(model, x, on_unsafe="error")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        result = shrink(model, x, on_unsafe="skip")
    assert "attn.out_proj" in result.skipped
    torch.testing.assert_close(result.model(x), model(x), rtol=0, atol=1e-5)


class Untraceable(nn.Module):
    """Its output is not a tensor Torch-Pruning can trace back through autograd."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        return {"logits": self.out(torch.relu(self.fc(x))).detach()}


def test_a_model_torch_pruning_cannot_trace_is_refused_or_skipped_cleanly():
    model = Untraceable()
    masks = patch_model(model, ["fc"], NEURON)
    with torch.no_grad():
        masks["fc"].aux[:2] = -1.0
    x = torch.randn(3, 4)
    try:
        shrink(model, x, on_unsafe="error")
    except UnsafeShrinkError as err:
        assert "could not trace" in str(err) or "'fc'" in str(err)
    else:
        pytest.fail("shrink removed units of a model it cannot check")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        result = shrink(model, x, on_unsafe="skip")
    assert "fc" in result.skipped


def test_round_to_keeps_widths_a_multiple_and_outputs_equal():
    torch.manual_seed(0)
    model = VGGLike().eval()
    x = torch.randn(2, 1, 28, 28)
    masks = patch_model(model, select_layers(model, include=[r"features\.\d+"]), NEURON)
    with torch.no_grad():
        for mask in masks.values():
            mask.aux[: mask.aux.numel() // 3 + 1] = -1.0  # an awkward number of closed units
    result = shrink(model, x, round_to=8)
    widths = [m.out_channels for m in result.model.modules() if isinstance(m, nn.Conv2d)]
    assert all(w % 8 == 0 for w in widths), widths
    exact = shrink(model, x)
    assert result.shrunk_macs > exact.shrunk_macs  # some zero channels stay
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), model(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="round_to=0"):
        shrink(model, x, round_to=0)
