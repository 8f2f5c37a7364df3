import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_auxprune.masked_weight import masked_weight
from lightning_auxprune.options import MaskOptions

STES = ["identity", "relu", "leaky_relu", "softplus"]
RULES = ["sign", "chain"]
GRANULARITIES = ["weight", "neuron"]
WEIGHT_GRADS = ["masked", "unmasked"]
ALPHA, BETA = 0.2, 3.0


def h_prime(m: float, ste: str) -> float:
    """The table of method.md, written out per scalar."""
    if ste == "identity":
        return 1.0
    if ste == "relu":
        return 1.0 if m > 0 else 0.0
    if ste == "leaky_relu":
        return 1.0 if m > 0 else ALPHA
    return 1.0 / (1.0 + math.exp(-BETA * m))


def sgn(x: float) -> float:
    return (x > 0) - (x < 0)


def expected_grads(w, m, g, opts):
    """Hand computation with Python floats, element by element."""
    rows, cols = len(w), len(w[0])
    gate = [[float((m[i][j] if opts.granularity == "weight" else m[i]) > 0) for j in range(cols)] for i in range(rows)]
    gw = [[g[i][j] * (gate[i][j] if opts.weight_grad == "masked" else 1.0) for j in range(cols)] for i in range(rows)]

    def direction(x):
        return sgn(x) if opts.rule == "sign" else x

    if opts.granularity == "weight":
        gm = [[g[i][j] * direction(w[i][j]) * h_prime(m[i][j], opts.ste) for j in range(cols)] for i in range(rows)]
    else:
        gm = [sum(g[i][j] * direction(w[i][j]) for j in range(cols)) * h_prime(m[i], opts.ste) for i in range(rows)]
    return torch.tensor(gw), torch.tensor(gm)


@pytest.mark.parametrize(
    ("ste", "rule", "granularity", "weight_grad"), list(itertools.product(STES, RULES, GRANULARITIES, WEIGHT_GRADS))
)
def test_gradients_match_hand_computation(ste, rule, granularity, weight_grad):
    opts = MaskOptions(granularity=granularity, ste=ste, rule=rule, weight_grad=weight_grad, alpha=ALPHA, beta=BETA)
    w_list = [[0.5, -1.5, 2.0], [-0.25, 0.0, 3.0]]
    m_list = [[0.7, -0.3, 0.2], [-1.1, 0.4, -0.05]] if granularity == "weight" else [0.3, -0.6]
    g_list = [[1.0, -2.0, 0.5], [0.25, 4.0, -1.5]]
    w = torch.tensor(w_list, requires_grad=True)
    m = torch.tensor(m_list, requires_grad=True)
    out = masked_weight(w, m, opts)
    out.backward(torch.tensor(g_list))
    exp_w, exp_m = expected_grads(w_list, m_list, g_list, opts)
    torch.testing.assert_close(w.grad, exp_w)
    torch.testing.assert_close(m.grad, exp_m)
    gate = torch.tensor(m_list) > 0
    gate = gate if granularity == "weight" else gate[:, None]
    torch.testing.assert_close(out.detach(), torch.tensor(w_list) * gate)


def test_conv_neuron_mask_sums_over_fan_in():
    w = torch.randn(4, 3, 2, 2, requires_grad=True)
    m = torch.tensor([1.0, -1.0, 0.5, -0.5], requires_grad=True)
    g = torch.randn(4, 3, 2, 2)
    masked_weight(w, m, MaskOptions(granularity="neuron", ste="identity")).backward(g)
    torch.testing.assert_close(m.grad, (g * w.detach().sign()).sum(dim=(1, 2, 3)))


def test_bias_gate_does_not_drive_mask():
    b = torch.ones(2, requires_grad=True)
    m = torch.tensor([1.0, -1.0], requires_grad=True)
    out = masked_weight(b, m, MaskOptions(granularity="neuron"), feeds_mask=False)
    out.sum().backward()
    assert out.tolist() == [1.0, 0.0]
    assert b.grad.tolist() == [1.0, 0.0]
    assert m.grad is None


floats = st.integers(min_value=-40, max_value=40).map(lambda i: i / 8)  # exact in float32, no underflow


@settings(max_examples=200, deadline=None)
@given(
    w=st.lists(floats, min_size=6, max_size=6),
    m=st.lists(floats, min_size=6, max_size=6),
    g=st.lists(floats, min_size=6, max_size=6),
    ste=st.sampled_from(STES),
)
def test_sign_rule_moves_m_like_abs_w(w, m, g, ste):
    """sign(dm) == sign(d|w|) for one gradient-descent step, wherever h'(m) > 0."""
    wt = torch.tensor(w, requires_grad=True)
    mt = torch.tensor(m, requires_grad=True)
    gt = torch.tensor(g)
    masked_weight(wt, mt, MaskOptions(ste=ste, rule="sign", alpha=ALPHA, beta=BETA)).backward(gt)
    delta_m = -mt.grad  # gradient-descent direction of m (any lr > 0)
    delta_abs_w = -gt * wt.detach().sign()  # d|w| = sgn(w) dw for dw = -lr * dL/dT
    active = (delta_abs_w != 0) & (delta_m != 0)
    assert torch.equal(delta_m[active].sign(), delta_abs_w[active].sign())
    # where h'(m) > 0 and both sign(w) and g are non-zero, m must move
    h = torch.tensor([h_prime(x, ste) for x in m])
    must_move = (h > 0) & (wt.detach() != 0) & (gt != 0)
    assert bool((delta_m[must_move] != 0).all())
