"""A target bounds how far pruning can go past it, on any run length."""

import warnings

import pytest
import torch

from lightning_auxprune import AuxMaskPruning, AuxPruner, layer_stats, summarize
from lightning_auxprune.target_bound import TargetBound
from tests.conftest import TinyNet, tiny_trainer, toy_loader


def short_run(tmp_path, **kwargs):
    """32 steps, lambda far too strong: the controller has no time to react before every mask closes."""
    torch.manual_seed(0)
    options = dict(strength=0.5, aux_lr=1.0, aux_optimizer="sgd", interval="step", ramp=8, freeze=30, print_table=False)
    cb = AuxMaskPruning(target_sparsity=0.9, **{**options, **kwargs})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiny_trainer(tmp_path, 4, [cb]).fit(TinyNet(), toy_loader())
    missed = [w for w in caught if "instead of the target" in str(w.message)]
    return summarize(layer_stats(cb.masks)).sparsity, missed


def train_steps(pruner, model, steps, after_step=None):
    """Attach ``pruner`` and train ``model`` on one fixed batch for ``steps`` optimizer steps."""
    pruner.attach(model, model.example_input_array)
    optimizer = torch.optim.SGD(pruner.parameter_groups(model), lr=0.01)
    x, y = torch.randn(32, 16), torch.randint(0, 2, (32,))
    for step in range(steps):
        torch.nn.functional.cross_entropy(model(x), y).backward()
        pruner.before_optimizer_step(float(step))
        optimizer.step()
        pruner.after_optimizer_step()
        optimizer.zero_grad()
        if after_step is not None:
            after_step(step)


def test_a_short_run_stops_at_the_bound(tmp_path):
    runaway, missed = short_run(tmp_path, target_tolerance=0.999)  # effectively no bound
    assert runaway > 0.99 and missed  # what short runs used to do, with the warning that says so
    bounded, _ = short_run(tmp_path)  # default tolerance 0.25: keep >= 10% * 0.75
    assert 0.85 < bounded <= 1 - 0.1 * 0.75 + 1e-9
    exact, missed = short_run(tmp_path, target_tolerance=0.0)
    assert 0.85 < exact <= 0.9 + 1e-9 and not missed


def test_a_flops_target_is_bounded_in_flops():
    torch.manual_seed(0)
    model = TinyNet()
    pruner = AuxPruner(
        granularity="neuron",
        target_flops=0.5,
        strength=0.5,
        aux_lr=1.0,
        aux_optimizer="sgd",
        ramp=2,
        min_units=0,
        min_unit_fraction=0.0,
        keep_output_layer=False,
    )
    train_steps(pruner, model, 12)
    assert pruner.kept_fraction() >= 0.5 * 0.75 - 1e-6
    assert pruner.metrics(12.0)["auxprune/flops_ratio"] >= 0.5 * 0.75 - 1e-6


def test_bound_settings():
    with pytest.raises(ValueError, match="target_tolerance"):
        AuxPruner(target_sparsity=0.5, ramp=2, target_tolerance=1.0)
    assert not TargetBound([1.0], [4], required=0.0, lift=0.1).enabled
    aux = [torch.tensor([-0.1, -0.5, 2.0, -0.3])]
    TargetBound([1.0], [4], required=4.0, lift=0.1).apply(aux)
    assert (aux[0] > 0).all()


def ramp_run(ramp_tolerance, coupled_flops: bool = False):
    """A strong lambda on a 12-step ramp: without a bound along it, pruning runs ahead of the ramp."""
    torch.manual_seed(0)
    model = TinyNet()
    target = {"target_flops": 0.3, "granularity": "neuron", "keep_output_layer": False} if coupled_flops else {}
    pruner = AuxPruner(
        **({"target_sparsity": 0.7} if not coupled_flops else {}),
        **target,
        strength=0.5,
        aux_lr=1.0,
        aux_optimizer="sgd",
        ramp=12,
        min_units=0,
        min_unit_fraction=0.0,
        ramp_tolerance=ramp_tolerance,
    )
    shortfall = []

    def record(step: int) -> None:
        ramp_kept = 1.0 - pruner.controller.target_at(float(step))
        shortfall.append(1.0 - pruner.kept_fraction() / ramp_kept)

    train_steps(pruner, model, 16, record)
    return shortfall


@pytest.mark.parametrize("flops", [False, True], ids=["sparsity", "coupled-flops"])
def test_ramp_tolerance_keeps_pruning_on_the_ramp(flops):
    free = ramp_run(None, flops)
    assert max(free[:8]) > 0.3  # the masks run far ahead of the ramp's early steps
    bounded = ramp_run(0.05, flops)
    assert max(bounded) <= 0.05 + 1e-6  # never more than 5% fewer kept than the ramp wants
    assert bounded[-1] > -1.0  # pruning went on: fewer than twice the target's kept (the controller's job)


def test_ramp_tolerance_settings():
    with pytest.raises(ValueError, match=r"ramp_tolerance=1\.0 must be in"):
        AuxPruner(target_sparsity=0.5, ramp=2, ramp_tolerance=1.0)
    bound = TargetBound([1.0], [4], required=1.0, lift=0.1)
    aux = [torch.tensor([-0.1, -0.5, 2.0, -0.3])]
    bound.set_required(3.0)  # moved along the ramp: 3 must now be open
    bound.apply(aux)
    assert aux[0].gt(0).sum() == 3 and aux[0][1] < 0
