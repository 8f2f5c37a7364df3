"""lightning-auxprune: learned, recoverable network pruning (AutoPrune) for PyTorch Lightning.

Examples:
    >>> from lightning_auxprune import AuxMaskPruning, AuxPruner, bake
    >>> callback = AuxMaskPruning(strength=1e-4)  # Lightning
    >>> pruner = AuxPruner(strength=1e-4)  # plain PyTorch or Fabric

"""

from lightning_auxprune.callback import AuxMaskPruning
from lightning_auxprune.export.bake import bake, bake_state_dict
from lightning_auxprune.export.fold import FoldResult, fold_batchnorm
from lightning_auxprune.export.heads import PrunedMultiheadAttention
from lightning_auxprune.export.shrink import (
    ShrinkResult,
    UnsafeShrinkError,
    layer_widths,
    load_shrunk,
    resize_to,
    save_shrunk,
    shrink,
)
from lightning_auxprune.export.sparse_file import load_sparse, save_sparse
from lightning_auxprune.export.sparse_linear import SparseLinear, sparsify_linear
from lightning_auxprune.flops import count_flops
from lightning_auxprune.masked_weight import masked_weight
from lightning_auxprune.options import MaskOptions
from lightning_auxprune.parametrization import AuxMask
from lightning_auxprune.patch import find_masks, patch_model
from lightning_auxprune.pruner import AuxPruner, UnreachableTargetError
from lightning_auxprune.statistics import layer_stats, summarize

__all__ = [
    "AuxMask",
    "AuxMaskPruning",
    "AuxPruner",
    "FoldResult",
    "MaskOptions",
    "PrunedMultiheadAttention",
    "ShrinkResult",
    "SparseLinear",
    "UnreachableTargetError",
    "UnsafeShrinkError",
    "bake",
    "bake_state_dict",
    "count_flops",
    "find_masks",
    "fold_batchnorm",
    "layer_stats",
    "layer_widths",
    "load_shrunk",
    "load_sparse",
    "masked_weight",
    "patch_model",
    "resize_to",
    "save_shrunk",
    "save_sparse",
    "shrink",
    "sparsify_linear",
    "summarize",
]
__version__ = "0.1.0"
