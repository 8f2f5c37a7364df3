"""A pruned weight the loss wants back: it returns (old value intact) unless the STE is relu."""

import pytest
import torch

from lightning_auxprune.masked_weight import masked_weight
from lightning_auxprune.options import MaskOptions


def train(ste: str, steps: int = 200):
    torch.manual_seed(0)
    w_true = torch.tensor([2.0, -1.0, 0.5])
    x = torch.randn(256, 3)
    y = x @ w_true
    w = torch.nn.Parameter(w_true.clone())  # the weights are already right ...
    m = torch.nn.Parameter(torch.tensor([-0.3, 1.0, 1.0]))  # ... but the first one is pruned
    opt = torch.optim.SGD([{"params": [w], "lr": 0.05}, {"params": [m], "lr": 0.05}])
    opts = MaskOptions(ste=ste, alpha=0.1, beta=5.0)
    recovered_at, value_when_recovered = None, None
    for step in range(steps):
        opt.zero_grad()
        loss = ((x @ masked_weight(w, m, opts) - y) ** 2).mean()
        loss.backward()
        opt.step()
        if recovered_at is None and m[0] > 0:
            recovered_at, value_when_recovered = step, float(w[0])
    return recovered_at, value_when_recovered, float(loss)


@pytest.mark.parametrize("ste", ["leaky_relu", "softplus", "identity"])
def test_pruned_weight_recovers_with_its_old_value(ste):
    recovered_at, value, final_loss = train(ste)
    assert recovered_at is not None, f"{ste} should let the mask recover"
    assert value == 2.0, "the pruned weight must keep its value while pruned"
    assert final_loss < 1e-6


def test_relu_never_recovers():
    recovered_at, _, final_loss = train("relu")
    assert recovered_at is None
    assert final_loss > 1.0
