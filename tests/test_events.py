import torch

from lightning_auxprune.events import MaskEvents
from lightning_auxprune.options import MaskOptions
from lightning_auxprune.parametrization import AuxMask


def test_counts_add_up_to_mask_changes():
    torch.manual_seed(0)
    mask = AuxMask(torch.ones(50), MaskOptions())
    events = MaskEvents()
    events.update({"fc": mask})
    start = int(mask.gate().sum())
    for _ in range(20):
        with torch.no_grad():
            mask.aux.add_(torch.randn(50))
        events.update({"fc": mask})
    assert events.pruned_total > 0 and events.recovered_total > 0
    assert events.recovered_total - events.pruned_total == int(mask.gate().sum()) - start
    pruned, recovered = events.take()
    assert (pruned, recovered) == (events.pruned_total, events.recovered_total)
    assert events.take() == (0, 0)


def test_state_round_trip():
    mask = AuxMask(torch.ones(3), MaskOptions())
    events = MaskEvents()
    events.update({"fc": mask})
    with torch.no_grad():
        mask.aux[0] = -1
    events.update({"fc": mask})
    restored = MaskEvents()
    restored.load_state_dict(events.state_dict())
    with torch.no_grad():
        mask.aux[0] = 1
    restored.update({"fc": mask})
    assert (restored.pruned_total, restored.recovered_total) == (1, 1)
