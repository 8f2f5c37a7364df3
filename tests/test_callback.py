import csv
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_auxprune import AuxMaskPruning, MaskOptions, bake, find_masks, layer_stats, patch_model, shrink
from lightning_auxprune.aux_group import find_aux_group
from tests.conftest import TinyNet, tiny_trainer, toy_loader


def read_rows(logger: CSVLogger) -> list[dict[str, str]]:
    with open(Path(logger.log_dir) / "metrics.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("auxprune/sparsity")]


def run_csv(tmp_path, strength, epochs=4, **kwargs):
    torch.manual_seed(0)
    model = TinyNet()
    cb = AuxMaskPruning(strength=strength, aux_lr=0.05, log_every_n_steps=3, print_table=False, **kwargs)
    logger = CSVLogger(tmp_path, name=f"s{strength}")
    tiny_trainer(tmp_path, epochs, [cb], logger=logger).fit(model, toy_loader())
    return model, cb, read_rows(logger)


def test_end_to_end_logging_with_csv(tmp_path):
    _model, cb, rows = run_csv(tmp_path, strength=2e-3)
    keys = set(rows[0])
    for layer in ("conv", "fc1", "fc2"):
        assert f"auxprune/density/{layer}" in keys
    for key in (
        "compression",
        "flops_ratio",
        "lambda",
        "phase",
        "pruned",
        "recovered",
        "pruned_total",
        "recovered_total",
        "regularizer",
    ):
        assert f"auxprune/{key}" in keys
    sparsity = [float(r["auxprune/sparsity"]) for r in rows]
    assert sparsity[-1] > sparsity[0] and sparsity[-1] > 0.2
    # 8 batches/epoch, 4 epochs: logs at optimizer steps 3, 6, ..., 30 and at the epoch ends 8, 16, 32
    # (step 24 is both, logged once): 13 rows, in Lightning's step numbering
    assert len(rows) == 13
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(steps)
    # every event is logged once: per-log counts add up to the totals
    assert sum(float(r["auxprune/pruned"]) for r in rows) == float(rows[-1]["auxprune/pruned_total"])
    assert sum(float(r["auxprune/recovered"]) for r in rows) == float(rows[-1]["auxprune/recovered_total"])
    # ... and the totals add up to the mask changes (all masks start open)
    stats = layer_stats(cb.masks)
    closed = sum(s.total - s.open for s in stats)
    assert cb.events.pruned_total - cb.events.recovered_total == closed
    last = rows[-1]
    assert float(last["auxprune/compression"]) == pytest.approx(1 / (1 - sparsity[-1]))
    assert float(last["auxprune/flops_ratio"]) < 1.0
    assert "fc1" in cb.last_table


def test_sparsity_grows_with_lambda(tmp_path):
    _, _, none = run_csv(tmp_path, strength=0.0)
    _, _, strong = run_csv(tmp_path, strength=2e-3)
    assert float(strong[-1]["auxprune/sparsity"]) > float(none[-1]["auxprune/sparsity"]) + 0.1
    assert all(float(r["auxprune/lambda"]) == 0.0 for r in none)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_aux_group_in_every_optimizer(tmp_path, optimizer):
    model = TinyNet(optimizer=optimizer, weight_decay=1e-2)
    cb = AuxMaskPruning(aux_lr=0.02, print_table=False)
    trainer = tiny_trainer(tmp_path, 1, [cb])
    trainer.fit(model, toy_loader())
    opt = trainer.optimizers[0]
    group = find_aux_group(opt)
    aux_ids = {id(m.aux) for m in cb.masks.values()}
    assert group is not None and {id(p) for p in group["params"]} == aux_ids
    assert (group["lr"], group["weight_decay"]) == (0.02, 0.0)
    assert not aux_ids & {id(p) for p in opt.param_groups[0]["params"]}
    assert all(p in opt.state for p in group["params"])  # the masks were really stepped


def test_fixed_aux_lr_ignores_scheduler_and_follow_tracks_it(tmp_path):
    lrs = {}
    for mode in ("fixed", "follow"):
        model = TinyNet(scheduler="step")
        cb = AuxMaskPruning(aux_lr=0.04, aux_lr_mode=mode, print_table=False)
        monitor = LearningRateMonitor()
        trainer = tiny_trainer(tmp_path, 3, [monitor, cb], logger=CSVLogger(tmp_path, name=mode))
        trainer.fit(model, toy_loader())
        lrs[mode] = find_aux_group(trainer.optimizers[0])["lr"]
        assert "lr-Adam/auxprune" in monitor.lrs
    assert lrs["fixed"] == 0.04
    assert lrs["follow"] == pytest.approx(0.04 * 0.5**3)


@pytest.mark.parametrize("scheduler", ["onecycle", "plateau"])
def test_schedulers_that_index_groups_do_not_crash(tmp_path, scheduler):
    model = TinyNet(scheduler=scheduler)
    cb = AuxMaskPruning(aux_lr=0.03, print_table=False)
    trainer = tiny_trainer(tmp_path, 2, [cb])
    trainer.fit(model, toy_loader())
    assert find_aux_group(trainer.optimizers[0])["lr"] == 0.03


def test_warmup_and_freeze_phases(tmp_path):
    model = TinyNet()
    snapshots = {}

    class Spy(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            snapshots[trainer.current_epoch] = {n: m.aux.detach().clone() for n, m in find_masks(pl_module).items()}
            snapshots[f"w{trainer.current_epoch}"] = pl_module.fc1.parametrizations.weight.original.detach().clone()

    cb = AuxMaskPruning(strength=1e-3, aux_lr=0.05, warmup=1, freeze=3, print_table=False)
    tiny_trainer(tmp_path, 5, [cb, Spy()]).fit(model, toy_loader())
    assert all(bool((a == 1.0).all()) for a in snapshots[0].values()), "masks must not move during warm-up"
    assert any(not torch.equal(snapshots[2][n], snapshots[0][n]) for n in snapshots[0])
    for n in snapshots[2]:
        assert torch.equal(snapshots[4][n], snapshots[2][n]), "masks must not move once frozen"
    assert not torch.equal(snapshots["w4"], snapshots["w2"]), "weights keep training when masks are frozen"


@pytest.mark.parametrize("restore", [True, False])
def test_pruned_weights_survive_weight_decay_and_momentum(tmp_path, restore):
    torch.manual_seed(0)
    model = TinyNet(optimizer="adamw", weight_decay=0.5)
    options = MaskOptions(ste="relu")  # relu: closed masks stay closed
    masks = patch_model(model, ["conv", "fc1", "fc2"], options)
    with torch.no_grad():
        masks["fc1"].aux[:, :32] = -1.0
    before = model.fc1.parametrizations.weight.original.detach().clone()
    cb = AuxMaskPruning(ste="relu", strength=0.0, restore_pruned_weights=restore, print_table=False)
    tiny_trainer(tmp_path, 2, [cb]).fit(model, toy_loader())
    after = model.fc1.parametrizations.weight.original.detach()
    assert torch.equal(after[:, :32], before[:, :32]) == restore
    assert not torch.equal(after[:, 32:], before[:, 32:])


def test_bake_after_fit_gives_original_keys(tmp_path):
    torch.manual_seed(0)
    model = TinyNet()
    keys = list(TinyNet().state_dict())
    cb = AuxMaskPruning(strength=2e-3, aux_lr=0.05, granularity="neuron", print_table=False)
    tiny_trainer(tmp_path, 2, [cb]).fit(model, toy_loader())
    baked = bake(model)
    assert list(baked.state_dict()) == keys
    x = torch.randn(5, 16)
    torch.testing.assert_close(baked(x), model(x), rtol=0, atol=0)
    fresh = TinyNet()
    fresh.load_state_dict(baked.state_dict())
    torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)


def test_callback_reused_across_fit_calls(tmp_path):
    model = TinyNet()
    cb = AuxMaskPruning(strength=2e-3, aux_lr=0.05, print_table=False)
    tiny_trainer(tmp_path, 1, [cb]).fit(model, toy_loader())
    first = {n: m.aux.detach().clone() for n, m in cb.masks.items()}
    tiny_trainer(tmp_path, 1, [cb]).fit(model, toy_loader())
    assert set(find_masks(model)) == set(first)
    assert any(not torch.equal(first[n], m.aux) for n, m in cb.masks.items())


class ManualNet(TinyNet):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False


class NoOptimizerNet(TinyNet):
    def configure_optimizers(self):
        return None


class NoLayers(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.norm = nn.BatchNorm1d(16)

    def training_step(self, batch, batch_idx):
        return self.norm(batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.parametrize(
    ("model", "kwargs", "error", "match"),
    [
        (ManualNet, {}, MisconfigurationException, "needs automatic optimization"),
        (NoOptimizerNet, {}, MisconfigurationException, "found no optimizer"),
        (TinyNet, {"include": ["features.*"]}, ValueError, "matches no prunable layer"),
        (NoLayers, {}, ValueError, "has no prunable layer"),
    ],
)
def test_setup_errors(tmp_path, model, kwargs, error, match):
    cb = AuxMaskPruning(print_table=False, **kwargs)
    with pytest.raises(error, match=match):
        tiny_trainer(tmp_path, 1, [cb]).fit(model(), toy_loader())


def test_baked_model_is_plain(tmp_path):
    model = TinyNet()
    cb = AuxMaskPruning(print_table=False)
    tiny_trainer(tmp_path, 1, [cb]).fit(model, toy_loader())
    assert not find_masks(bake(model))


def test_gradient_accumulation_and_bf16_mixed_precision(tmp_path):
    torch.manual_seed(0)
    model = TinyNet()
    cb = AuxMaskPruning(strength=2e-3, aux_lr=0.15, log_every_n_steps=1, print_table=False)
    logger = CSVLogger(tmp_path, name="accum")
    trainer = tiny_trainer(tmp_path, 4, [cb], logger=logger, accumulate_grad_batches=2, precision="bf16-mixed")
    trainer.fit(model, toy_loader())
    assert trainer.global_step == 16  # 8 batches / 2 per step, 4 epochs
    rows = read_rows(logger)
    assert len(rows) == 16  # once per optimizer step (epoch ends coincide with a step log)
    assert float(rows[-1]["auxprune/sparsity"]) > 0.05
    assert all(m.aux.dtype == torch.float32 for m in cb.masks.values())


def test_callback_shrink_removes_closed_units(tmp_path):
    torch.manual_seed(0)
    model = TinyNet()
    cb = AuxMaskPruning(strength=5e-3, aux_lr=0.1, granularity="neuron", include=["fc1"], print_table=False)
    tiny_trainer(tmp_path, 4, [cb]).fit(model, toy_loader())
    closed = int((cb.masks["fc1"].aux <= 0).sum())
    assert closed > 0
    result = shrink(model, torch.randn(4, 16))
    assert result.model.fc1.out_features == 32 - closed and result.model.fc2.in_features == 32 - closed
    x = torch.randn(6, 16)
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), model.eval()(x), rtol=1e-4, atol=1e-5)


def run_target(tmp_path, **kwargs):
    torch.manual_seed(0)
    model = TinyNet()
    # ~100 steps: a larger integral gain than the default, which is meant for thousands of steps
    options = dict(
        aux_lr=0.05, interval="step", ramp=60, freeze=100, target_gain=0.03, print_table=False, log_every_n_steps=10
    )
    cb = AuxMaskPruning(**{**options, **kwargs})
    logger = CSVLogger(tmp_path, name=str(sorted(kwargs.items())))
    tiny_trainer(tmp_path, 13, [cb], logger=logger).fit(model, toy_loader())
    return cb, read_rows(logger)


def test_target_sparsity_is_followed(tmp_path):
    # a 100-step toy: the controller cannot settle exactly (the benchmarks measure real runs), but
    # it must end near each target, and further for the larger one
    kept = {}
    for target in (0.3, 0.8):
        _cb, rows = run_target(tmp_path, target_sparsity=target)
        assert float(rows[-1]["auxprune/target"]) == pytest.approx(target)
        lambdas = {float(r["auxprune/lambda"]) for r in rows if r["auxprune/phase"] == "1.0"}
        assert len(lambdas) > 3  # lambda is steered, not constant
        kept[target] = 1 - float(rows[-1]["auxprune/sparsity"])
        assert 1 / 1.5 <= kept[target] / (1 - target) <= 1.5
    assert kept[0.8] < kept[0.3] / 2


def test_target_flops_is_followed(tmp_path):
    _cb, rows = run_target(tmp_path, target_flops=0.5)
    assert 1 / 1.5 <= float(rows[-1]["auxprune/flops_ratio"]) / 0.5 <= 1.5
    _cb, rows = run_target(tmp_path, target_flops=0.2)
    assert 1 / 1.5 <= float(rows[-1]["auxprune/flops_ratio"]) / 0.2 <= 1.5


def test_unreachable_flops_target_is_an_error(tmp_path):
    cb = AuxMaskPruning(include=["fc2"], target_flops=0.2, freeze=2, print_table=False)
    with pytest.raises(MisconfigurationException, match="cannot be reached: the layers left dense hold"):
        tiny_trainer(tmp_path, 1, [cb]).fit(TinyNet(), toy_loader())


def test_missed_target_is_reported(tmp_path):
    # two steps of pruning cannot reach 90% sparsity
    cb = AuxMaskPruning(aux_lr=0.01, interval="step", freeze=2, target_sparsity=0.9, print_table=False)
    missed = r"kept [\d.]+% of the weights instead of the target 10%, [\d.]+% above the target"
    with pytest.warns(UserWarning, match=missed):
        tiny_trainer(tmp_path, 1, [cb]).fit(TinyNet(), toy_loader())


def test_recipe_is_the_benchmarked_target_schedule(tmp_path):
    cb = AuxMaskPruning.recipe(max_epochs=8, target_sparsity=0.98)
    assert (cb.schedule.warmup, cb.schedule.ramp, cb.schedule.freeze) == (1.0, 3, 6)
    assert cb.controller is not None and (cb.controller.final, cb.controller.end) == (0.98, 4.0)
    assert (cb.pruner.aux_optimizer, cb.pruner.aux_lr, cb.pruner.strength) == ("sgd", 1.0, 1e-3)  # the measured best
    assert cb.controller.min_strength == 1e-5
    assert AuxMaskPruning.recipe(max_epochs=8, target_sparsity=0.9, aux_lr=1e-2).pruner.aux_lr == 1e-2
    with pytest.raises(ValueError, match="needs at least 2 epochs"):
        AuxMaskPruning.recipe(max_epochs=1, target_sparsity=0.9)
    with pytest.raises(ValueError, match="exactly one target"):
        AuxMaskPruning.recipe(max_epochs=8)
    with pytest.raises(TypeError):
        AuxMaskPruning.recipe(0.9, 8)  # keyword-only
    flops = AuxMaskPruning.recipe(max_epochs=8, target_flops=0.25, granularity="neuron")
    assert repr(flops) == (
        "AuxMaskPruning(neuron masks, strength=0.001, regularizer='count', ste='leaky_relu', rule='sign', "
        "aux_optimizer='normalized_sgd', aux_lr=0.05 (fixed), epochs: warmup=1, ramp=3, freeze=6, "
        "target_flops=0.25 reached at 4 (kept >= 0.95x the target's and 0.95x the ramp's))"
    )
    # it trains: after the dense epoch the masks move and lambda is steered
    tiny_trainer(tmp_path, 3, [cb]).fit(TinyNet(), toy_loader())
    assert all(not bool((m.aux == 1.0).all()) for m in cb.masks.values())
    assert cb.controller.output > 1e-4  # behind the ramp: lambda grew


class ProfiledPruning(AuxMaskPruning):
    """Counts host syncs inside the callback's per-step hooks, per optimizer step.

    A sync is a scalar read (``item``, ``float``, ``bool``: ``aten::_local_scalar_dense`` in the
    profiler) or a ``tolist`` (a device-to-host copy, invisible to the CPU profiler, so counted by
    wrapping ``Tensor.tolist``).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.syncs: dict[int, int] = {}
        self.tolist_calls = 0

    def _profiled(self, trainer, hook, *args):
        before = self.tolist_calls
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            hook(trainer, *args)
        count = sum(e.count for e in prof.key_averages() if e.key in ("aten::_local_scalar_dense", "aten::item"))
        count += self.tolist_calls - before
        self.syncs[trainer.global_step] = self.syncs.get(trainer.global_step, 0) + count

    def on_train_batch_start(self, trainer, *args):
        self._profiled(trainer, super().on_train_batch_start, *args)

    def on_before_optimizer_step(self, trainer, *args):
        self._profiled(trainer, super().on_before_optimizer_step, *args)

    def on_train_batch_end(self, trainer, *args):
        self._profiled(trainer, super().on_train_batch_end, *args)


@pytest.mark.parametrize(
    "kwargs", [{"target_sparsity": 0.5, "ramp": 2}, {"aux_optimizer": "sgd", "granularity": "neuron"}]
)
def test_steps_that_do_not_log_make_no_host_sync(tmp_path, monkeypatch, kwargs):
    cb = ProfiledPruning(strength=2e-3, aux_lr=0.05, log_every_n_steps=5, print_table=False, **kwargs)
    tolist = torch.Tensor.tolist

    def counted_tolist(self):
        cb.tolist_calls += 1
        return tolist(self)

    monkeypatch.setattr(torch.Tensor, "tolist", counted_tolist)
    tiny_trainer(tmp_path, 2, [cb], logger=CSVLogger(tmp_path)).fit(TinyNet(optimizer="sgd"), toy_loader())
    # optimizer steps 1..16; logs at 5, 10, 15 (step numbers after the step) and at the epoch ends
    quiet = [step for step in cb.syncs if step % 5 != 0 and step not in (8, 16)]
    assert len(quiet) >= 10
    assert {step: cb.syncs[step] for step in quiet} == dict.fromkeys(quiet, 0)
    assert any(cb.syncs[step] > 0 for step in (5, 10, 15))  # logging steps do read the device
