import pytest
import torch

from lightning_auxprune.mask_set import MaskSet
from lightning_auxprune.options import MaskOptions
from lightning_auxprune.parametrization import AuxMask
from lightning_auxprune.statistics import layer_stats, summarize


def random_masks(granularity):
    torch.manual_seed(0)
    masks = {}
    for name, shape in (("conv", (6, 3, 5, 5)), ("fc", (10, 40))):
        mask = AuxMask(torch.randn(shape), MaskOptions(granularity=granularity))
        with torch.no_grad():
            mask.aux.copy_(torch.randn_like(mask.aux))  # about half closed
        masks[name] = mask
    return masks


@pytest.mark.parametrize("granularity", ["weight", "neuron"])
def test_device_counts_match_layer_stats(granularity):
    masks = random_masks(granularity)
    mask_set = MaskSet(masks)
    gates = mask_set.hard_gates()
    for gate, mask in zip(gates, masks.values(), strict=True):
        assert torch.equal(gate, mask.gate())
    open_weights = mask_set.open_weights(mask_set.open_entries(gates)).tolist()
    stats = layer_stats(masks)
    assert open_weights == [s.open for s in stats]
    assert mask_set.weights.tolist() == [s.total for s in stats]
    assert 0 < sum(open_weights) < sum(s.total for s in stats)
    assert 1 - sum(open_weights) / float(mask_set.weights.sum()) == pytest.approx(summarize(stats).sparsity)


def test_gates_are_exactly_zero_or_one_and_nan_is_counted():
    mask = AuxMask(torch.ones(4), MaskOptions())
    with torch.no_grad():
        mask.aux.copy_(torch.tensor([1e-30, 0.0, -1e-30, float("nan")]))
    masks = MaskSet({"fc": mask, "ok": AuxMask(torch.ones(2), MaskOptions())})
    gate = masks.hard_gates()[0]
    assert gate.tolist() == [1.0, 0.0, 0.0, 0.0]  # as in the forward pass: NaN > 0 is False
    assert torch.equal(gate, mask.gate())
    assert masks.nonfinite_layers().tolist() == [1.0, 0.0]


def test_empty_set():
    empty = MaskSet({})
    assert empty.hard_gates() == [] and empty.open_entries([]).numel() == 0
