"""Masks on ``nn.MultiheadAttention``: its packed ``in_proj_weight``, and whole heads.

``nn.MultiheadAttention`` does not call its projections as modules: it passes
``in_proj_weight`` (the query, key and value projections stacked, ``[3E, E]``) and
``out_proj.weight`` to a functional kernel. The masks therefore sit on those tensors:

* weight granularity masks ``in_proj_weight`` entry by entry (``out_proj`` is a Linear and is
  masked like one);
* neuron granularity masks whole heads: one m per head gates the head's query, key and value
  rows (and their biases), so a closed head contributes exactly zero, and
  [`shrink`][lightning_auxprune.export.shrink.shrink] removes it (with the matching columns of
  ``out_proj``).

Examples:
    >>> import torch
    >>> from torch import nn
    >>> masked_tensors(nn.MultiheadAttention(8, 2)), masked_tensors(nn.Linear(2, 2))
    (('in_proj_weight', 'in_proj_bias'), ('weight', 'bias'))
    >>> head_rows(torch.tensor([1.0, 0.0]), head_dim=2).tolist()  # q, k and v rows of 2 heads
    [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]

"""

from __future__ import annotations

import torch
from torch import nn


def masked_tensors(module: nn.Module) -> tuple[str, str]:
    """The names of the weight and bias a mask of ``module`` gates.

    Raises:
        ValueError: For attention with separate query/key/value weights (``kdim``/``vdim``
            differ from ``embed_dim``), which is not supported.
    """
    if isinstance(module, nn.MultiheadAttention):
        if not module._qkv_same_embed_dim:
            raise ValueError(
                "nn.MultiheadAttention with kdim/vdim different from embed_dim keeps separate q/k/v weights, which "
                "lightning-auxprune does not mask: exclude it (exclude=[...])."
            )
        return "in_proj_weight", "in_proj_bias"
    return "weight", "bias"


def head_rows(per_head: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Expand one value per head to the rows of ``in_proj_weight`` (``[3 * heads * head_dim]``).

    Differentiable: a gradient on the rows sums back onto each head.
    """
    return per_head.repeat_interleave(head_dim).repeat(3)


def is_attention(module: nn.Module) -> bool:
    """Whether ``module`` is an ``nn.MultiheadAttention`` (possibly parametrized)."""
    return isinstance(module, nn.MultiheadAttention)
