"""A small Vision Transformer for 28x28 grey images: patch embedding and pre-norm transformer blocks.

7x7 patches (16 tokens) plus a class token, width 96, 4 blocks of 4-head self-attention
(``nn.MultiheadAttention``) and a GELU MLP of width 192, LayerNorm, linear head. The patch
embedding is a strided ``Conv2d`` and the MLPs are ``Linear`` layers, so weight and neuron masks
apply as in a timm ViT; the attention's packed ``in_proj_weight`` is a bare parameter and is not
masked.

Example:
    >>> import torch
    >>> model = SmallViT()
    >>> model(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    >>> sum(p.numel() for p in model.parameters())
    306826

"""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    """Pre-norm transformer block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, width: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        out: torch.Tensor = x + self.fc2(nn.functional.gelu(self.fc1(self.norm2(x))))
        return out


class SmallViT(nn.Module):
    """ViT for 1x28x28 inputs.

    Args:
        num_classes: Output classes.
        patch: Patch size (28 must be divisible by it).
        width: Token width.
        depth: Number of transformer blocks.
        heads: Attention heads per block.
        hidden: MLP hidden width.

    """

    def __init__(
        self, num_classes: int = 10, patch: int = 7, width: int = 96, depth: int = 4, heads: int = 4, hidden: int = 192
    ) -> None:
        super().__init__()
        if 28 % patch:
            raise ValueError(f"patch={patch} must divide 28.")
        tokens = (28 // patch) ** 2
        self.patch_embed = nn.Conv2d(1, width, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens + 1, width) * 0.02)
        self.blocks = nn.Sequential(*(Block(width, heads, hidden) for _ in range(depth)))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + self.pos_embed
        out: torch.Tensor = self.head(self.norm(self.blocks(tokens))[:, 0])
        return out
