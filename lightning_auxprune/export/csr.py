"""What the two CSR paths share: the sparsity threshold, the model to export, the conversion.

Examples:
    >>> import torch
    >>> check_min_sparsity(0.9)
    >>> zero_fraction(torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
    0.75
    >>> to_csr(torch.eye(2)).values().tolist()
    [1.0, 1.0]

"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from lightning_auxprune.export.bake import bake
from lightning_auxprune.patch import find_masks


def check_min_sparsity(min_sparsity: float) -> None:
    """Raise a ValueError unless ``min_sparsity`` (a fraction of zero weights) is in [0, 1]."""
    if not 0.0 <= min_sparsity <= 1.0:
        raise ValueError(f"min_sparsity={min_sparsity} must be in [0, 1].")


def zero_fraction(tensor: torch.Tensor) -> float:
    """Fraction of exactly-zero entries (reads the device)."""
    return float((tensor == 0).float().mean())


def plain_model(model: nn.Module, require_masks: bool, inplace: bool = False) -> nn.Module:
    """``model`` baked if it carries masks, else as it is (copied unless ``inplace``).

    Raises:
        ValueError: If ``model`` carries no masks while ``require_masks`` is True.

    """
    if find_masks(model):
        return bake(model, inplace=inplace)
    if require_masks:
        raise ValueError(
            f"{type(model).__name__} was never patched with auxiliary masks, so there is no pruning to export. "
            "Train it with AuxMaskPruning first, or pass require_masks=False to export a plain model."
        )
    return model if inplace else copy.deepcopy(model)


def to_csr(matrix: torch.Tensor) -> torch.Tensor:
    """A 2-D tensor as a CSR tensor (without torch's per-call 'CSR support is in beta' notice)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return matrix.detach().to_sparse_csr()
