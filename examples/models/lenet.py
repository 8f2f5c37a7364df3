"""LeNet-300-100 and the Caffe LeNet-5 (20-50-800-500, 431,080 parameters).

Example:
    >>> sum(p.numel() for p in LeNet5().parameters())
    431080
    >>> sum(p.numel() for p in LeNet300100().parameters())
    266610

"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class LeNet300100(nn.Module):
    """Fully connected 784-300-100-10 with ReLU."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        out: torch.Tensor = self.fc3(x)
        return out


class LeNet5(nn.Module):
    """Caffe's LeNet-5: conv 20@5x5, pool, conv 50@5x5, pool, fc 800-500, fc 500-10."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(800, 500)
        self.fc2 = nn.Linear(500, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(self.conv1(x), 2)
        x = nn.functional.max_pool2d(self.conv2(x), 2)
        x = torch.relu(self.fc1(torch.flatten(x, 1)))
        out: torch.Tensor = self.fc2(x)
        return out


def _registry() -> dict[str, Callable[[], nn.Module]]:
    from examples.models.mobilenet import SmallMobileNetV2
    from examples.models.resnet import ResNet20
    from examples.models.vgg import VGGLike
    from examples.models.vit import SmallViT

    return {
        "lenet300100": LeNet300100,
        "lenet5": LeNet5,
        "vgg": VGGLike,
        "resnet20": ResNet20,
        "mobilenetv2": SmallMobileNetV2,
        "vit": SmallViT,
    }


def build_model(name: str) -> nn.Module:
    """Instantiate an example architecture by name.

    Example:
        >>> type(build_model("lenet5")).__name__
        'LeNet5'

    """
    models = _registry()
    if name not in models:
        raise ValueError(f"Unknown arch {name!r}. Available: {', '.join(models)}.")
    return models[name]()
