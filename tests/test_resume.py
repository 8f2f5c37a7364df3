"""A run interrupted at an epoch boundary and resumed from its checkpoint ends exactly where the
uninterrupted run ends: weights, masks, optimizer state of the aux group, event counters."""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_auxprune import AuxMaskPruning
from lightning_auxprune.aux_group import find_aux_group
from tests.conftest import TinyNet, tiny_trainer, toy_loader


def callback(**kwargs):
    options = dict(strength=2e-3, aux_lr=0.05, interval="step", warmup=4, ramp=10, freeze=40, print_table=False)
    return AuxMaskPruning(**{**options, **kwargs})


def run(tmp_path, epochs, ckpt_path=None, save=False, **kwargs):
    L.seed_everything(0)
    model = TinyNet(optimizer="adamw", weight_decay=1e-2, scheduler="step")
    cb = callback(**kwargs)
    callbacks = [cb]
    if save:
        callbacks.append(ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1))
    trainer = tiny_trainer(tmp_path, epochs, callbacks, deterministic=True, enable_checkpointing=save)
    trainer.fit(model, toy_loader(), ckpt_path=ckpt_path)
    return model, cb, trainer


@pytest.mark.parametrize("split_epoch", [2, 4])  # during pruning / after freeze (step 40)
def test_resume_equals_uninterrupted(tmp_path, split_epoch):
    full_model, full_cb, full_trainer = run(tmp_path / "full", 6)
    run(tmp_path / "part", split_epoch, save=True)
    ckpt = next((tmp_path / "part" / "ckpt").glob(f"epoch={split_epoch - 1}-*.ckpt"))
    resumed_model, resumed_cb, resumed_trainer = run(tmp_path / "resumed", 6, ckpt_path=str(ckpt))

    full_state, resumed_state = full_model.state_dict(), resumed_model.state_dict()
    assert list(full_state) == list(resumed_state)
    for key in full_state:
        torch.testing.assert_close(resumed_state[key], full_state[key], rtol=0, atol=0, msg=key)

    full_opt, resumed_opt = full_trainer.optimizers[0], resumed_trainer.optimizers[0]
    full_group, resumed_group = find_aux_group(full_opt), find_aux_group(resumed_opt)
    assert full_group["lr"] == resumed_group["lr"]
    for p_full, p_res in zip(full_group["params"], resumed_group["params"], strict=True):
        for name in ("exp_avg", "exp_avg_sq", "step"):
            torch.testing.assert_close(resumed_opt.state[p_res][name], full_opt.state[p_full][name], rtol=0, atol=0)
    assert resumed_cb.events.pruned_total == full_cb.events.pruned_total > 0
    assert resumed_cb.events.recovered_total == full_cb.events.recovered_total


@pytest.mark.parametrize("aux_optimizer", ["shared", "sgd"])
def test_resume_keeps_the_lambda_controller_state(tmp_path, aux_optimizer):
    kwargs = dict(strength=1e-3, target_sparsity=0.6, aux_optimizer=aux_optimizer)
    full_model, full_cb, _ = run(tmp_path / "full", 4, **kwargs)
    run(tmp_path / "part", 2, save=True, **kwargs)
    ckpt = next((tmp_path / "part" / "ckpt").glob("epoch=1-*.ckpt"))
    resumed_model, resumed_cb, _ = run(tmp_path / "resumed", 4, ckpt_path=str(ckpt), **kwargs)
    assert resumed_cb.controller.state_dict() == full_cb.controller.state_dict()
    assert full_cb.controller.output != 1e-3  # the controller did move lambda
    assert_same_state(resumed_model, full_model)


def assert_same_state(resumed, full):
    """Every tensor of the two models' state_dicts bit-for-bit equal."""
    full_state, resumed_state = full.state_dict(), resumed.state_dict()
    assert list(full_state) == list(resumed_state)
    for key in full_state:
        torch.testing.assert_close(resumed_state[key], full_state[key], rtol=0, atol=0, msg=key)


def test_resume_with_other_options_is_refused(tmp_path):
    run(tmp_path / "part", 1, save=True)
    ckpt = next((tmp_path / "part" / "ckpt").glob("*.ckpt"))
    model = TinyNet(optimizer="adamw", scheduler="step")
    cb = AuxMaskPruning(granularity="weight", ste="softplus", print_table=False)
    from lightning.pytorch.utilities.exceptions import MisconfigurationException

    with pytest.raises(MisconfigurationException, match="Resume with the same options"):
        tiny_trainer(tmp_path, 2, [cb]).fit(model, toy_loader(), ckpt_path=str(ckpt))


def test_resume_without_the_checkpoints_controller_warns(tmp_path):
    run(tmp_path / "part", 1, save=True, strength=1e-3, target_sparsity=0.6)
    ckpt = next((tmp_path / "part" / "ckpt").glob("*.ckpt"))
    with pytest.warns(UserWarning, match="trained with a lambda controller, this one does not"):
        run(tmp_path / "resumed", 2, ckpt_path=str(ckpt))


def test_resume_with_another_setting_warns_and_names_it(tmp_path):
    """Any resolved setting that differs (here the unit floor) is named on resume, not applied silently."""
    run(tmp_path / "part", 1, save=True, strength=1e-3, target_sparsity=0.6, min_unit_fraction=0.25)
    ckpt = next((tmp_path / "part" / "ckpt").glob("*.ckpt"))
    with pytest.warns(UserWarning, match=r"different pruning settings: min_unit_fraction: checkpoint 0.25, now 0.05"):
        run(tmp_path / "resumed", 2, ckpt_path=str(ckpt), strength=1e-3, target_sparsity=0.6)


def load_with_callback_key(path):
    """A checkpoint and the key of AuxMaskPruning's state in it."""
    checkpoint = torch.load(path, weights_only=False)
    (key,) = [k for k in checkpoint["callbacks"] if "AuxMaskPruning" in k]
    return checkpoint, key


def test_a_version_0_1_checkpoint_resumes_exactly(tmp_path):
    """A checkpoint whose callback state has the 0.1 layout (strength and unit inside the schedule, a
    mask snapshot in the events, no version) resumes and ends where the uninterrupted run ends."""
    kwargs = dict(strength=1e-3, target_sparsity=0.6)
    full_model, full_cb, _ = run(tmp_path / "full", 4, **kwargs)
    run(tmp_path / "part", 2, save=True, **kwargs)
    ckpt = next((tmp_path / "part" / "ckpt").glob("epoch=1-*.ckpt"))
    checkpoint, key = load_with_callback_key(ckpt)
    state = checkpoint["callbacks"][key]
    old = {k: state[k] for k in ("aux_param_names", "events", "last_logged_step", "options", "regularizer")}
    old["schedule"] = {"strength": state["strength"], "unit": state["interval"], **state["schedule"]}
    old["events"] = {**state["events"], "previous": {"fc1": torch.ones(32, 64, dtype=torch.bool)}}
    old["controller"] = state["controller"]
    checkpoint["callbacks"][key] = old
    legacy = tmp_path / "legacy.ckpt"
    torch.save(checkpoint, legacy)
    resumed_model, resumed_cb, _ = run(tmp_path / "resumed", 4, ckpt_path=str(legacy), **kwargs)
    assert resumed_cb.controller.state_dict() == full_cb.controller.state_dict()
    assert resumed_cb.events.state_dict() == full_cb.events.state_dict()
    assert_same_state(resumed_model, full_model)


def test_a_foreign_checkpoint_state_is_refused_with_advice(tmp_path):
    run(tmp_path / "part", 1, save=True)
    ckpt = next((tmp_path / "part" / "ckpt").glob("*.ckpt"))
    checkpoint, key = load_with_callback_key(ckpt)
    checkpoint["callbacks"][key] = {"aux_param_names": [], "last_logged_step": 0, "schedule": {}}
    torch.save(checkpoint, tmp_path / "foreign.ckpt")
    from lightning.pytorch.utilities.exceptions import MisconfigurationException

    with pytest.raises(MisconfigurationException, match="bake the checkpoint's model"):
        run(tmp_path / "resumed", 2, ckpt_path=str(tmp_path / "foreign.ckpt"))
