"""Validated options of the AutoPrune method (mask granularity, gradient rules, init).

Every choice the paper leaves open is a field here with a default. Validation is eager: a
bad value raises a `ValueError` that says what is accepted.

Examples:
    >>> opts = MaskOptions(granularity="neuron", ste="softplus", beta=5.0)
    >>> opts.rule
    'sign'

"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Granularity = Literal["weight", "neuron"]
SteName = Literal["identity", "relu", "leaky_relu", "softplus"]
MaskRule = Literal["sign", "chain"]
WeightGrad = Literal["masked", "unmasked"]
MaskInit = Literal["constant", "magnitude"]
RegularizerName = Literal["count", "l1"]


def check_choice(field: str, value: object, allowed: object) -> None:
    """Raise a ValueError naming the accepted values when ``value`` is not one of them.

    Args:
        field: The option's name, used in the message.
        value: The value given by the user.
        allowed: A ``Literal`` type listing the accepted values.

    Examples:
        >>> check_choice("ste", "relu", SteName)

    """
    choices = get_args(allowed)
    if value not in choices:
        raise ValueError(f"Unknown {field}={value!r}. Use one of: {', '.join(map(repr, choices))}.")


@dataclass(frozen=True)
class MaskOptions:
    """How auxiliary masks are shaped, initialised and trained.

    Attributes:
        granularity: ``"weight"`` (one m per weight) or ``"neuron"`` (one m per output unit or
            filter, broadcast over its fan-in; the bias is gated too).
        ste: Straight-through surrogate h'(m) of the hard step: ``"identity"``, ``"relu"``,
            ``"leaky_relu"`` (slope ``alpha`` for m <= 0) or ``"softplus"`` (sigmoid(beta m)).
        alpha: Negative-side slope of ``leaky_relu``, in [0, 1).
        beta: Sharpness of ``softplus``, > 0.
        rule: Gradient rule for M: ``"sign"`` (correlation-consistent, g * sgn(W) * h'(M)) or
            ``"chain"`` (plain chain rule, g * W * h'(M)).
        weight_grad: ``"masked"`` (dW = g * h(M), pruned weights frozen) or ``"unmasked"``
            (dW = g, pruned weights keep training).
        init: ``"constant"`` (m = init_scale) or ``"magnitude"`` (m = init_scale * |w| / mean|w|
            per layer; per unit for neuron granularity), floored at ``init_scale * 1e-3`` so the
            network starts dense.
        init_scale: Positive scale of the initial m.

    Examples:
        >>> MaskOptions(ste="leaky_relu", alpha=0.1).alpha
        0.1

    """

    granularity: Granularity = "weight"
    ste: SteName = "leaky_relu"
    alpha: float = 0.1
    beta: float = 5.0
    rule: MaskRule = "sign"
    weight_grad: WeightGrad = "masked"
    init: MaskInit = "constant"
    init_scale: float = 1.0

    def __post_init__(self) -> None:
        check_choice("granularity", self.granularity, Granularity)
        check_choice("ste", self.ste, SteName)
        check_choice("rule", self.rule, MaskRule)
        check_choice("weight_grad", self.weight_grad, WeightGrad)
        check_choice("init", self.init, MaskInit)
        if not 0.0 <= self.alpha < 1.0:
            raise ValueError(f"alpha={self.alpha} is outside [0, 1): leaky_relu needs a slope 0 <= alpha < 1.")
        if self.beta <= 0.0:
            raise ValueError(f"beta={self.beta} must be > 0 (softplus sharpness).")
        if self.init_scale <= 0.0:
            raise ValueError(f"init_scale={self.init_scale} must be > 0 so that every mask starts open.")
