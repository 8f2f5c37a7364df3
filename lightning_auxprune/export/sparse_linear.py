"""A CSR sparse inference path for very sparse ``nn.Linear`` layers (CPU).

Only worth it where measured faster: ``benchmarks/sparse_linear.py`` times dense vs CSR
matrix products and ``docs/export.md`` shows from which sparsity CSR wins. The default
``min_sparsity`` of [`sparsify_linear`][lightning_auxprune.export.sparse_linear.sparsify_linear] comes from that
measurement.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(50, 20))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.masked_fill_(torch.rand(20, 50) < 0.99, 0.0)
    >>> fast = sparsify_linear(net, min_sparsity=0.9)
    >>> type(fast[0]).__name__, torch.allclose(fast(torch.ones(3, 50)), net(torch.ones(3, 50)), atol=1e-6)
    ('SparseLinear', True)
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_auxprune.export.csr import check_min_sparsity, plain_model, to_csr, zero_fraction

DEFAULT_MIN_SPARSITY = 0.9


class SparseLinear(nn.Module):
    """Inference-only ``nn.Linear`` replacement holding its weight in CSR form.

    Args:
        linear: The dense layer to convert (its current weight and bias are copied).
    """

    weight: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight", to_csr(linear.weight))
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ W.T + b`` with a sparse-dense product."""
        flat = x.reshape(-1, self.in_features)
        out = torch.sparse.mm(self.weight, flat.t()).t()
        if self.bias is not None:
            out = out + self.bias
        result: torch.Tensor = out.reshape(*x.shape[:-1], self.out_features)
        return result

    def extra_repr(self) -> str:
        nnz = int(self.weight.values().numel())
        return f"in_features={self.in_features}, out_features={self.out_features}, nnz={nnz}"


def sparsify_linear(model: nn.Module, min_sparsity: float = DEFAULT_MIN_SPARSITY) -> nn.Module:
    """Return a copy of ``model`` (baked if patched) whose sparse-enough Linear layers are CSR.

    Args:
        model: Patched or plain model.
        min_sparsity: Convert layers at least this sparse (fraction of zero weights).
    """
    check_min_sparsity(min_sparsity)
    plain = plain_model(model, require_masks=False)
    for name, module in list(plain.named_modules()):
        if isinstance(module, nn.Linear) and zero_fraction(module.weight) >= min_sparsity:
            parent_name, _, child = name.rpartition(".")
            parent = plain.get_submodule(parent_name) if parent_name else plain
            setattr(parent, child, SparseLinear(module))
    return plain
