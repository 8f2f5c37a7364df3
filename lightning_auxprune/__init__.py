"""lightning-auxprune: learned, recoverable network pruning (AutoPrune) for PyTorch Lightning.

Example:
    >>> from lightning_auxprune import AuxMaskPruning, bake
    >>> callback = AuxMaskPruning(strength=1e-4)

"""

from lightning_auxprune.bake import bake, bake_state_dict
from lightning_auxprune.callback import AuxMaskPruning
from lightning_auxprune.masked_weight import masked_weight
from lightning_auxprune.options import MaskOptions
from lightning_auxprune.parametrization import AuxMask
from lightning_auxprune.patch import find_masks, patch_model
from lightning_auxprune.schedule import PruningSchedule
from lightning_auxprune.statistics import layer_stats, summarize

__all__ = [
    "AuxMask",
    "AuxMaskPruning",
    "MaskOptions",
    "PruningSchedule",
    "bake",
    "bake_state_dict",
    "find_masks",
    "layer_stats",
    "masked_weight",
    "patch_model",
    "summarize",
]
__version__ = "0.1.0"
