import torch

from lightning_auxprune.events import MaskEvents
from lightning_auxprune.mask_set import MaskSet
from lightning_auxprune.options import MaskOptions
from lightning_auxprune.parametrization import AuxMask


def test_counts_add_up_to_mask_changes():
    torch.manual_seed(0)
    masks = MaskSet({"fc": AuxMask(torch.ones(50), MaskOptions()), "conv": AuxMask(torch.ones(4, 3), MaskOptions())})
    events = MaskEvents()
    before = masks.hard_gates()
    start = float(masks.open_entries(before).sum())
    for _ in range(20):
        with torch.no_grad():
            for aux in masks.aux:
                aux.add_(torch.randn_like(aux))
        after = masks.hard_gates()
        events.record(before, after)
        before = after
    assert events.pruned_total > 0 and events.recovered_total > 0
    assert events.recovered_total - events.pruned_total == float(masks.open_entries(before).sum()) - start
    pruned, recovered = events.take()
    assert (pruned, recovered) == (events.pruned_total, events.recovered_total)
    assert events.take() == (0, 0)


def test_given_open_counts_are_used():
    events = MaskEvents()
    before, after = [torch.tensor([1.0, 0.0])], [torch.tensor([0.0, 1.0])]
    events.record(before, after, torch.tensor([1.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64))
    assert (events.pruned_total, events.recovered_total) == (1, 1)


def test_state_round_trip_and_version_0_1_state():
    events = MaskEvents()
    events.record([torch.tensor([1.0, 1.0])], [torch.tensor([0.0, 1.0])])
    restored = MaskEvents()
    restored.load_state_dict(events.state_dict())
    restored.record([torch.tensor([0.0, 1.0])], [torch.tensor([1.0, 1.0])])
    assert (restored.pruned_total, restored.recovered_total) == (1, 1)
    old = {"previous": {"fc": torch.ones(2, dtype=torch.bool)}, "pruned_total": 7, "recovered_total": 2}
    old |= {"pruned_since": 1, "recovered_since": 0}
    restored.load_state_dict(old)
    assert (restored.pruned_total, restored.recovered_total, restored.take()) == (7, 2, (1, 0))
