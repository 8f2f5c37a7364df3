"""The benchmark methods that are ``AuxMaskPruning.recipe`` with a target sparsity.

Each maps to the overrides it passes to the recipe (kept free of heavy imports, so that
:mod:`benchmarks.report` can read it).

Example:
    >>> sorted(TARGET_RECIPES["autoprune_target_sgd_floor"])
    ['aux_lr', 'aux_optimizer', 'strength', 'target_min_strength']

"""

from __future__ import annotations

from typing import Any

ADAM_ON_M: dict[str, Any] = {"aux_optimizer": "shared", "aux_lr": 5e-3, "strength": 1e-4, "target_min_strength": 1e-9}
"""The recipe as it was first benchmarked: M in the user's Adam at lr 5e-3, lambda from 1e-4, no floor."""
SGD_FOR_M: dict[str, Any] = {"aux_optimizer": "sgd", "aux_lr": 1.0, "strength": 1e-3, "target_min_strength": 1e-9}
"""The recipe's overrides that step M with plain SGD (aux lr 1, lambda starting at 1e-3, no floor)."""
TARGET_RECIPES: dict[str, dict[str, Any]] = {
    "autoprune_target": ADAM_ON_M,
    "autoprune_target_sgd": SGD_FOR_M,
    "autoprune_target_sgd_floor": {**SGD_FOR_M, "target_min_strength": 1e-5},  # the recipe's default now
}
"""The methods that are ``AuxMaskPruning.recipe`` with a target sparsity, and their overrides."""
