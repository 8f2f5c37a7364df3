"""Removing closed attention heads: ``nn.MultiheadAttention`` rebuilt with fewer heads.

``nn.MultiheadAttention`` ties its head count to its embedding width (``embed_dim = heads *
head_dim``), so it cannot hold fewer heads of the same width.
[`PrunedMultiheadAttention`][lightning_auxprune.export.heads.PrunedMultiheadAttention] takes its
place: the same call signature and outputs, with the kept heads' query/key/value rows in
``in_proj`` and the matching input columns in ``out_proj``. A closed head's q, k and v rows are
zero (its masks gated them), so it contributed nothing, and removing it leaves the output
unchanged. With ``need_weights=True`` the returned attention weights are averaged over the kept
heads only.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> attention = nn.MultiheadAttention(8, 4, batch_first=True).eval()
    >>> with torch.no_grad():  # close heads 1 and 3
    ...     for block in range(3):
    ...         for head in (1, 3):
    ...             rows = slice(block * 8 + head * 2, block * 8 + head * 2 + 2)
    ...             attention.in_proj_weight[rows] = 0.0
    ...             attention.in_proj_bias[rows] = 0.0
    >>> smaller = remove_heads(attention, [0, 2])
    >>> x = torch.randn(2, 5, 8)
    >>> torch.allclose(smaller(x, x, x)[0], attention(x, x, x)[0], atol=1e-6)
    True
    >>> smaller.num_heads, smaller.in_proj.weight.shape
    (2, torch.Size([12, 8]))

"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class PrunedMultiheadAttention(nn.Module):
    """Multi-head attention with ``num_heads`` heads of width ``head_dim`` in an ``embed_dim`` model.

    Args:
        embed_dim: Width of queries, keys, values and the output.
        num_heads: Heads kept.
        head_dim: Width of each head (that of the original block).
        bias: Whether the projections have biases.
        dropout: Dropout on the attention weights in training.
        batch_first: Inputs are ``(batch, seq, feature)`` rather than ``(seq, batch, feature)``.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        head_dim: int,
        bias: bool = True,
        dropout: float = 0.0,
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, head_dim
        self.dropout, self.batch_first = dropout, batch_first
        self.in_proj = nn.Linear(embed_dim, 3 * num_heads * head_dim, bias=bias)
        self.out_proj = nn.Linear(num_heads * head_dim, embed_dim, bias=bias)

    def _heads(self, x: torch.Tensor, part: int) -> torch.Tensor:
        """Project ``x`` ``(N, L, E)`` with block ``part`` (q, k, v) of ``in_proj``: ``(N, heads, L, head_dim)``."""
        width = self.num_heads * self.head_dim
        weight = self.in_proj.weight[part * width : (part + 1) * width]
        bias = None if self.in_proj.bias is None else self.in_proj.bias[part * width : (part + 1) * width]
        n, length, _ = x.shape
        return F.linear(x, weight, bias).reshape(n, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Same arguments and results as ``nn.MultiheadAttention.forward``."""
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            key_padding_mask = None if key_padding_mask is None else key_padding_mask.unsqueeze(0)
        if not self.batch_first or unbatched:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        n, length, source = query.shape[0], query.shape[1], key.shape[1]
        q, k, v = self._heads(query, 0), self._heads(key, 1), self._heads(value, 2)
        bias = torch.zeros((), dtype=q.dtype, device=q.device)  # additive mask: -inf where MHA masks
        if attn_mask is None and is_causal:
            attn_mask = torch.ones(length, source, dtype=torch.bool, device=q.device).triu(1)
        if attn_mask is not None:
            mask = attn_mask.reshape(-1, attn_mask.shape[-2], attn_mask.shape[-1])
            mask = mask if mask.shape[0] == 1 else mask.reshape(n, -1, length, source)
            bias = bias + (
                torch.zeros_like(mask, dtype=q.dtype).masked_fill(mask, -math.inf) if mask.dtype == torch.bool else mask
            )
        if key_padding_mask is not None:
            padding = key_padding_mask.reshape(n, 1, 1, source)
            bias = bias + (
                torch.zeros_like(padding, dtype=q.dtype).masked_fill(padding, -math.inf)
                if padding.dtype == torch.bool
                else padding
            )
        dropout = self.dropout if self.training else 0.0
        weights: torch.Tensor | None = None
        if need_weights:
            weights = (q @ k.transpose(-2, -1) / math.sqrt(self.head_dim) + bias).softmax(dim=-1)
            out = F.dropout(weights, dropout, self.training) @ v
        else:  # the fused kernel, as nn.MultiheadAttention uses without weights
            additive = bias.expand(n, self.num_heads, length, source) if bias.dim() else None
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=additive, dropout_p=dropout)
        out = self.out_proj(out.transpose(1, 2).reshape(n, length, self.num_heads * self.head_dim))
        if not self.batch_first or unbatched:
            out = out.transpose(0, 1)
        if unbatched:
            out = out.squeeze(1)
        if weights is None:
            return out, None
        returned = weights.mean(dim=1) if average_attn_weights else weights
        return out, returned.squeeze(0) if unbatched else returned


def remove_heads(attention: nn.MultiheadAttention, keep: Sequence[int]) -> PrunedMultiheadAttention:
    """A smaller copy of ``attention`` holding the heads in ``keep`` (a ``PrunedMultiheadAttention``).

    Raises:
        ValueError: For blocks it cannot rebuild: separate q/k/v weights, ``add_bias_kv`` or
            ``add_zero_attn``, or no head kept.
    """
    if not attention._qkv_same_embed_dim or attention.bias_k is not None or attention.add_zero_attn:
        raise ValueError("attention with separate q/k/v weights, add_bias_kv or add_zero_attn cannot be rebuilt")
    if not keep:
        raise ValueError("at least one head must be kept")
    embed, heads = int(attention.embed_dim), int(attention.num_heads)
    head_dim = embed // heads
    bias = attention.in_proj_bias is not None
    smaller = PrunedMultiheadAttention(
        embed, len(keep), head_dim, bias=bias, dropout=float(attention.dropout), batch_first=attention.batch_first
    )
    columns = torch.cat([torch.arange(h * head_dim, (h + 1) * head_dim) for h in keep])
    rows = torch.cat([columns + part * embed for part in range(3)])
    with torch.no_grad():
        smaller.in_proj.weight.copy_(attention.in_proj_weight[rows])
        if bias:
            smaller.in_proj.bias.copy_(attention.in_proj_bias[rows])
        smaller.out_proj.weight.copy_(attention.out_proj.weight[:, columns])
        if attention.out_proj.bias is not None:
            smaller.out_proj.bias.copy_(attention.out_proj.bias)
    return smaller.to(attention.in_proj_weight.device, attention.in_proj_weight.dtype).train(attention.training)
