import pytest
import torch

from lightning_auxprune.options import MaskOptions
from lightning_auxprune.parametrization import AuxMask
from lightning_auxprune.statistics import layer_stats, open_counts, summarize


@pytest.mark.parametrize("granularity", ["weight", "neuron"])
def test_open_counts_match_layer_stats(granularity):
    torch.manual_seed(0)
    masks = {}
    for name, shape in (("conv", (6, 3, 5, 5)), ("fc", (10, 40))):
        mask = AuxMask(torch.randn(shape), MaskOptions(granularity=granularity))
        with torch.no_grad():
            mask.aux.copy_(torch.randn_like(mask.aux))  # about half closed
        masks[name] = mask
    counts = open_counts(masks)
    stats = layer_stats(masks)
    assert counts == {s.name: (s.open, s.total) for s in stats}
    assert 0 < sum(o for o, _ in counts.values()) < sum(t for _, t in counts.values())
    summary = summarize(stats)
    assert 1 - sum(o for o, _ in counts.values()) / sum(t for _, t in counts.values()) == summary.sparsity


def test_open_counts_of_nothing():
    assert open_counts({}) == {}
