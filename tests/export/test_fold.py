import pytest
import torch
from torch import nn

from examples.models.mobilenet import SmallMobileNetV2
from examples.models.resnet import ResNet20
from examples.models.vgg import VGGLike
from lightning_auxprune.export.fold import fold_batchnorm
from lightning_auxprune.export.shrink import shrink
from lightning_auxprune.options import MaskOptions
from lightning_auxprune.patch import patch_model
from tests.export.test_shrink import prune_randomly, randomize_bn

X = torch.randn(4, 1, 28, 28)


def count_bn(model):
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@pytest.mark.parametrize("arch", [VGGLike, ResNet20, SmallMobileNetV2])
def test_every_batchnorm_of_the_example_cnns_folds_and_the_outputs_stay(arch):
    torch.manual_seed(0)
    model = arch().eval()
    randomize_bn(model)
    bn_before = count_bn(model)
    result = fold_batchnorm(model, X)
    assert len(result.folded) == bn_before and not result.skipped
    assert count_bn(result.model) == 0
    assert count_bn(model) == bn_before  # the input model is left as it was
    torch.testing.assert_close(result.model(X), model(X), atol=1e-4, rtol=1e-4)


def test_a_shrunk_model_folds():
    torch.manual_seed(0)
    model = ResNet20()
    randomize_bn(model)
    prune_randomly(model, [r"stages\.\d+\.conv1"])
    shrunk = shrink(model, torch.zeros(1, 1, 28, 28)).model
    folded = fold_batchnorm(shrunk, X)
    assert count_bn(folded.model) == 0
    torch.testing.assert_close(folded.model(X), shrunk(X), atol=1e-4, rtol=1e-4)


class SharedOutput(nn.Module):
    """The conv's output feeds the BatchNorm and a residual addition: folding would change the sum."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.bn = nn.BatchNorm2d(1)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


def test_a_batchnorm_whose_input_is_also_used_elsewhere_stays_with_its_reason():
    model = SharedOutput().eval()
    randomize_bn(model)
    with torch.no_grad():
        model.bn.running_var.fill_(4.0)
    result = fold_batchnorm(model, X)
    assert result.folded == {}
    assert "bn" in result.skipped
    torch.testing.assert_close(result.model(X), model(X))


def test_a_batchnorm_without_running_statistics_stays():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, track_running_stats=False)).eval()
    result = fold_batchnorm(model, X)
    assert result.folded == {} and "running statistics" in result.skipped["1"]


def test_linear_then_batchnorm1d_folds():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 8), nn.BatchNorm1d(8)).eval()
    with torch.no_grad():
        model[2].running_mean.uniform_(-1, 1)
        model[2].running_var.uniform_(0.5, 2)
    result = fold_batchnorm(model, X)
    assert result.folded == {"2": "1"}
    torch.testing.assert_close(result.model(X), model(X), atol=1e-5, rtol=1e-4)


def test_a_model_with_masks_is_refused_with_advice():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    patch_model(model, ["0"], MaskOptions(granularity="neuron"))
    with pytest.raises(ValueError, match="shrink"):
        fold_batchnorm(model, X)
