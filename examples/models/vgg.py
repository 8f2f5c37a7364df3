"""A VGG-like CNN for 28x28 grey images, sized for CPU minutes.

conv(32)x2 - pool - conv(64)x2 - pool - conv(128)x2 - pool - fc(256) - fc(10), each conv followed
by BatchNorm and ReLU.

Example:
    >>> import torch
    >>> VGGLike()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    """3x3 convolution (no bias), BatchNorm, ReLU."""
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class VGGLike(nn.Module):
    """Three VGG stages and a two-layer classifier."""

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int] = (32, 64, 128), hidden: int = 256) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for width in widths:
            layers += [*conv_bn_relu(cin, width), *conv_bn_relu(width, width), nn.MaxPool2d(2)]
            cin = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(cin * 3 * 3, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.classifier(self.features(x))
        return out
