"""``torch.compile`` of a patched model trains, prunes and bakes like eager."""

import pytest
import torch
from torch import nn

from lightning_auxprune import AuxPruner, bake

STEPS = 12


def make():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))


def run(compiled: bool):
    net = make()
    pruner = AuxPruner(strength=0.02, aux_lr=1.0, init_scale=0.3, aux_optimizer="sgd")
    pruner.attach(net)
    optimizer = torch.optim.SGD(pruner.parameter_groups(net), lr=0.1, momentum=0.9)
    forward = torch.compile(net) if compiled else net
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(STEPS, 64, 16, generator=g), torch.randint(0, 4, (STEPS, 64), generator=g)
    frames = []
    for step in range(STEPS):
        nn.functional.cross_entropy(forward(x[step]), y[step]).backward()
        pruner.before_optimizer_step(float(step))
        optimizer.step()
        pruner.after_optimizer_step()
        optimizer.zero_grad()
        frames.append(torch._dynamo.utils.counters["stats"]["unique_graphs"])
    return net, pruner, frames, x[0]


@pytest.mark.slow
def test_compiled_training_matches_eager():
    torch._dynamo.reset()
    eager_net, eager, _, x = run(compiled=False)
    compiled_net, compiled, frames, _ = run(compiled=True)
    sparsity = compiled.metrics(float(STEPS))["auxprune/sparsity"]
    assert 0.05 < sparsity < 0.95  # it pruned
    # stated tolerance: the same masks, weights within 1e-5 (compiled kernels may round differently)
    for (name, mask), other in zip(eager.masks.items(), compiled.masks.values(), strict=True):
        assert torch.equal(mask.gate(), other.gate()), name
        torch.testing.assert_close(other.aux, mask.aux, rtol=0, atol=1e-5)
    torch.testing.assert_close(bake(compiled_net)(x), bake(eager_net)(x), rtol=0, atol=1e-5)
    assert eager.metrics(float(STEPS))["auxprune/sparsity"] == sparsity
    # after the first steps (the FLOPs hooks remove themselves after one call) nothing recompiles
    assert frames[-1] == frames[2]
