"""Compact export of an unstructured (weight-granularity) pruned model: CSR per weight tensor.

[`save_sparse`][lightning_auxprune.export.sparse_file.save_sparse] bakes the model (if it is patched) and stores every
floating-point tensor
of rank >= 2 whose sparsity reaches ``min_sparsity`` as CSR of its ``[rows, -1]`` view, with
int32 indices (8 bytes per non-zero instead of 4 per entry: smaller from 50% sparsity on).
Other tensors are stored dense. [`load_sparse`][lightning_auxprune.export.sparse_file.load_sparse] returns the ordinary
dense ``state_dict``.

Examples:
    >>> import io, torch
    >>> from torch import nn
    >>> net = nn.Linear(100, 100)
    >>> with torch.no_grad():
    ...     _ = net.weight.masked_fill_(torch.rand(100, 100) < 0.95, 0.0)
    >>> buffer = io.BytesIO()
    >>> save_sparse(net, buffer, require_masks=False)
    >>> _ = buffer.seek(0)
    >>> torch.equal(load_sparse(buffer)["weight"], net.weight)
    True
"""

from __future__ import annotations

import os
from typing import IO, Any

import torch
from torch import nn

from lightning_auxprune.export.csr import check_min_sparsity, plain_model, to_csr, zero_fraction

FORMAT = "lightning-auxprune-sparse/1"


def _to_csr(tensor: torch.Tensor) -> dict[str, Any]:
    csr = to_csr(tensor.reshape(tensor.shape[0], -1))
    return {
        "kind": "csr",
        "shape": tuple(tensor.shape),
        "crow": csr.crow_indices().to(torch.int32),
        "col": csr.col_indices().to(torch.int32),
        "values": csr.values().clone(),
    }


def _from_csr(entry: dict[str, Any]) -> torch.Tensor:
    shape = entry["shape"]
    rows, cols = shape[0], int(torch.tensor(shape[1:]).prod()) if len(shape) > 1 else 1
    csr = torch.sparse_csr_tensor(
        entry["crow"].long(), entry["col"].long(), entry["values"], size=(rows, cols), check_invariants=True
    )  # a file from elsewhere is validated, not trusted
    return csr.to_dense().reshape(shape)


def sparse_state(model: nn.Module, min_sparsity: float = 0.5, require_masks: bool = True) -> dict[str, Any]:
    """The serialisable sparse form of ``model``'s (baked) ``state_dict``.

    Raises:
        ValueError: If ``min_sparsity`` is outside [0, 1], or ``model`` carries no masks while
            ``require_masks`` is True.
    """
    check_min_sparsity(min_sparsity)
    plain = plain_model(model, require_masks)
    tensors: dict[str, Any] = {}
    for key, value in plain.state_dict().items():
        sparse_enough = value.is_floating_point() and value.dim() >= 2 and value.numel() > 0
        if sparse_enough and zero_fraction(value) >= min_sparsity:
            tensors[key] = _to_csr(value)
        else:
            tensors[key] = {"kind": "dense", "value": value.detach().clone()}
    return {"format": FORMAT, "tensors": tensors}


def save_sparse(
    model: nn.Module, file: str | os.PathLike[str] | IO[bytes], min_sparsity: float = 0.5, require_masks: bool = True
) -> None:
    """Save ``model`` (baked first) in the compact sparse format.

    Args:
        model: A model patched by AuxMaskPruning / ``patch_model``.
        file: Path or binary file object.
        min_sparsity: Tensors at least this sparse are stored as CSR.
        require_masks: Refuse a model that was never patched (set False for a plain model).
    """
    torch.save(sparse_state(model, min_sparsity, require_masks), file)


def load_sparse(file: str | os.PathLike[str] | IO[bytes]) -> dict[str, torch.Tensor]:
    """Read a file written by ``save_sparse`` back into a dense ``state_dict``.

    Raises:
        ValueError: If the file is not in this format.
    """
    saved = torch.load(file, weights_only=True)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ValueError(f"Not a {FORMAT} file; write it with lightning_auxprune.save_sparse.")
    return {
        key: _from_csr(entry) if entry["kind"] == "csr" else entry["value"] for key, entry in saved["tensors"].items()
    }
