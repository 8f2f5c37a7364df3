"""A small MobileNetV2 (Sandler et al. 2018) for 28x28 grey images.

Inverted residual blocks: 1x1 expansion conv, 3x3 depthwise conv (``groups`` = channels), 1x1
linear projection, each with BatchNorm; ReLU6 after the first two; a residual addition when
stride is 1 and widths match.

Example:
    >>> import torch
    >>> SmallMobileNetV2()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import torch
from torch import nn


class InvertedResidual(nn.Module):
    """Expand (1x1) - depthwise (3x3) - project (1x1), residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.use_residual = stride == 1 and cin == cout
        self.expand = nn.Conv2d(cin, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.depthwise = nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.project = nn.Conv2d(hidden, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = nn.functional.relu6(self.bn1(self.expand(x)))
        out = nn.functional.relu6(self.bn2(self.depthwise(out)))
        out = self.bn3(self.project(out))
        result: torch.Tensor = x + out if self.use_residual else out
        return result


class SmallMobileNetV2(nn.Module):
    """Stem 16 channels; blocks (cout, stride): (16,1) (24,2) (24,1) (32,2) (32,1) (64,1); fc(10)."""

    def __init__(self, num_classes: int = 10, expansion: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        blocks: list[nn.Module] = []
        cin = 16
        for cout, stride in ((16, 1), (24, 2), (24, 1), (32, 2), (32, 1), (64, 1)):
            blocks.append(InvertedResidual(cin, cout, stride, expansion))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        out: torch.Tensor = self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
        return out
