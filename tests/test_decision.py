"""The final decision on the masks, taken on their average over the last stretch of pruning."""

import pytest
import torch

from lightning_auxprune import AuxPruner
from lightning_auxprune.decision import MaskAverage
from lightning_auxprune.kept_flops import KeptFlops
from lightning_auxprune.target_bound import StructuredBound, TargetBound
from tests.conftest import TinyNet
from tests.test_target_bound import train_steps


def test_the_average_follows_the_masks_by_the_training_done():
    aux = [torch.zeros(3)]
    average = MaskAverage(window=2.0)
    average.update(aux, 0.0)
    aux[0].fill_(1.0)
    average.update(aux, 0.5)  # a quarter of the window
    assert average.values[0].tolist() == [0.25, 0.25, 0.25]
    average.update(aux, 0.5)  # no training since: unchanged
    assert average.values[0].tolist() == [0.25, 0.25, 0.25]
    average.update(aux, 10.0)  # more than a window: the current masks
    assert average.values[0].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="window=0"):
        MaskAverage(0.0)


def test_the_decision_keeps_the_largest_averages_at_the_required_flops():
    kept = KeptFlops.weights(1.0, {"a": 0.5, "b": 0.5}, {"a": 0, "b": 1}, [4, 2])  # b's entries cost twice a's
    aux = [torch.tensor([1.0, 1.0, -1.0, -1.0]), torch.tensor([1.0, -1.0])]
    average = MaskAverage(1.0)
    average.values = [torch.tensor([0.3, -0.2, 0.1, -0.5]), torch.tensor([0.2, 0.05])]
    bound = StructuredBound(kept, [4, 2], required=0.1, lift=1e-3)
    average.decide(aux, bound, required=0.5)
    # largest averages first: a0 (0.125), b0 (0.25), a2 (0.125) reach 0.5
    assert [(a > 0).tolist() for a in aux] == [[True, False, True, False], [True, False]]
    assert float(kept.batch(torch.cat([(a > 0).float() for a in aux]).unsqueeze(0))[0]) == pytest.approx(0.5)
    assert bound.required == 0.1  # the bound itself is left as it was
    weights = [torch.tensor([5.0, -1.0, 2.0])]
    average.values = [torch.tensor([-3.0, 1.0, 2.0])]
    average.decide(weights, TargetBound([1.0], [3], required=0.0, lift=1e-3), required=2.0)
    assert (weights[0] > 0).tolist() == [False, True, True]


def flickering_run(average_window, steps=14):
    """Strong lambda, a bound at the target: masks near zero close and reopen until the freeze at step 10."""
    torch.manual_seed(0)
    pruner = AuxPruner(
        target_sparsity=0.6,
        strength=0.5,
        aux_lr=1.0,
        aux_optimizer="sgd",
        ramp=4,
        freeze=10,
        target_tolerance=0.0,
        average_window=average_window,
    )
    kept = {}

    def record(step):
        kept[step] = pruner.kept_fraction()

    train_steps(pruner, TinyNet(), steps, record)
    return pruner, kept


def test_at_the_freeze_the_masks_are_decided_on_their_average():
    pruner, kept = flickering_run(average_window=3.0, steps=10)  # steps 0-9: pruning
    assert pruner.events.recovered_total > 0  # masks did close and reopen
    average = pruner._average
    assert not average.decided and average.position == 9.0
    reached = pruner.kept_fraction()
    before = torch.cat([m.aux.detach().reshape(-1) > 0 for m in pruner.masks.values()])
    torch.manual_seed(1)
    average.values = [torch.randn_like(v) for v in average.values]  # an average that disagrees with the masks
    model = pruner._model
    optimizer = torch.optim.SGD(pruner.parameter_groups(model), lr=0.01)
    x, y = torch.randn(32, 16), torch.randint(0, 2, (32,))
    for step in (10, 11):  # frozen
        torch.nn.functional.cross_entropy(model(x), y).backward()
        pruner.before_optimizer_step(float(step))
        optimizer.step()
        pruner.after_optimizer_step()
        optimizer.zero_grad()
    assert average.decided
    flat = torch.cat([v.reshape(-1) for v in average.values])
    gates = torch.cat([m.aux.detach().reshape(-1) > 0 for m in pruner.masks.values()])
    assert flat[gates].min() >= flat[~gates].max()  # the open entries are those with the largest averages
    assert not torch.equal(gates, before)
    weights = torch.cat([torch.full((m.aux.numel(),), float(m.fan_in())) for m in pruner.masks.values()])
    assert reached <= pruner.kept_fraction() <= reached + float(weights.max() / weights.sum())  # the fraction reached
    plain, _ = flickering_run(average_window=None)
    assert plain._average is None


def test_the_average_needs_a_target_and_a_freeze_and_is_resumed():
    with pytest.raises(ValueError, match="set target_sparsity or target_flops, and freeze"):
        AuxPruner(strength=0.1, freeze=4, average_window=1.0)
    with pytest.raises(ValueError, match="set target_sparsity or target_flops, and freeze"):
        AuxPruner(target_sparsity=0.5, ramp=2, average_window=1.0)
    pruner, _ = flickering_run(average_window=3.0, steps=8)  # mid-pruning
    state = pruner.state_dict()
    again = AuxPruner(target_sparsity=0.6, ramp=4, freeze=10, average_window=3.0)
    again.attach(TinyNet(), TinyNet().example_input_array)
    again.load_state_dict(state)
    assert again._average.position == 7.0 and not again._average.decided
    for mine, saved in zip(again._average.values, pruner._average.values, strict=True):
        assert torch.equal(mine, saved)
