"""The plain-torch engine: a training loop without Lightning, host syncs, state, precision."""

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from lightning_auxprune import AuxPruner, bake
from lightning_auxprune.pruner import upgrade_state

SYNC_OPS = ("aten::_local_scalar_dense", "aten::item")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.fc1 = nn.Linear(6 * 16, 32)
        self.fc2 = nn.Linear(32, 3)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        x = nn.functional.max_pool2d(x, 2).flatten(1)
        return self.fc2(torch.relu(self.fc1(x)))


def batches(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, 1, 8, 8, generator=g)
    y = (x[:, :, 0, :4].mean(dim=(2, 3)) > 0).long() + (x[:, :, 0, 4:].mean(dim=(2, 3)) > 0).long()
    return list(zip(x, y, strict=True))


def train(pruner, model, steps=12, optimizer=None, profile_step=None):
    optimizer = optimizer or torch.optim.SGD(pruner.parameter_groups(model), lr=0.05, momentum=0.9)
    syncs = None
    for step, (x, y) in enumerate(batches(steps)):

        def one_step(x=x, y=y, step=step):
            nn.functional.cross_entropy(model(x), y).backward()
            pruner.before_optimizer_step(float(step))
            optimizer.step()
            pruner.after_optimizer_step()
            optimizer.zero_grad()

        if step == profile_step:
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                one_step()
            syncs = {e.key: e.count for e in prof.key_averages() if e.key in SYNC_OPS}
        else:
            one_step()
    return syncs


def test_a_plain_loop_prunes_and_reports():
    torch.manual_seed(0)
    model = Net()
    pruner = AuxPruner(strength=5e-2, aux_lr=0.4, init_scale=0.2, aux_optimizer="sgd", warmup=2)
    assert list(pruner.attach(model)) == ["conv", "fc1", "fc2"]
    train(pruner, model)
    metrics = pruner.metrics(12.0)
    assert 0.02 < metrics["auxprune/sparsity"] < 0.9
    assert metrics["auxprune/phase"] == 1.0 and metrics["auxprune/lambda"] == 5e-2
    assert metrics["auxprune/pruned_total"] - metrics["auxprune/recovered_total"] > 0
    assert metrics["auxprune/pruned"] == metrics["auxprune/pruned_total"]  # first read: everything since the start
    assert pruner.metrics(12.0)["auxprune/pruned"] == 0.0  # consumed
    assert 0.0 < metrics["auxprune/flops_ratio"] < 1.0
    assert "fc1" in pruner.table()
    x = batches(1)[0][0]
    model.eval()
    torch.testing.assert_close(bake(model).eval()(x), model(x), rtol=0, atol=0)


CONFIGS = [
    {"target_sparsity": 0.5, "ramp": 10},
    {"target_flops": 0.6, "ramp": 10, "granularity": "neuron"},
    {"aux_optimizer": "sgd", "aux_lr": 0.1},
    {"aux_optimizer": "normalized_sgd", "regularizer": "l1", "ste": "softplus"},
    {"weight_grad": "unmasked", "ste": "identity"},
    {"target_sparsity": 0.5, "ramp": 10, "hysteresis": 0.1},
    {"target_flops": 0.6, "ramp": 10, "granularity": "neuron", "min_uniform_share": 1.0},
]


@pytest.mark.parametrize("config", CONFIGS, ids=[str(sorted(c)) for c in CONFIGS])
def test_a_training_step_makes_no_host_sync(monkeypatch, config):
    """Forward, backward, the pruner's two calls and an SGD step: nothing reads the device.

    Scalar reads show in the profiler; ``tolist`` (a device-to-host copy) is counted by wrapping it.
    """
    torch.manual_seed(0)
    model = Net()
    pruner = AuxPruner(strength=1e-2, **config)
    neuron = config.get("granularity") == "neuron"
    pruner.attach(model, torch.zeros(1, 1, 8, 8) if neuron else None)  # neuron masks trace the model
    copies = []
    tolist = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: copies.append(1) or tolist(self))
    syncs = train(pruner, model, steps=4, profile_step=3)
    assert syncs == {} and copies == [], (syncs, len(copies))
    assert pruner.phase(3.0) == "pruning"


def test_metrics_read_the_device_once():
    torch.manual_seed(0)
    model = Net()
    pruner = AuxPruner(strength=1e-2, target_sparsity=0.5, ramp=10)
    pruner.attach(model)
    train(pruner, model, steps=3)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        pruner.metrics(3.0)
    copies = sum(e.count for e in prof.key_averages() if e.key in SYNC_OPS)
    assert copies <= 1


def test_pruned_weights_keep_their_value_and_return_with_it():
    torch.manual_seed(0)
    model = Net()
    pruner = AuxPruner(strength=0.0, ste="relu")  # relu: closed masks get no gradient, stay closed
    masks = pruner.attach(model)
    with torch.no_grad():
        masks["fc1"].aux[:, :40] = -1.0
    stored = model.fc1.parametrizations.weight.original
    before = stored.detach().clone()
    optimizer = torch.optim.AdamW(pruner.parameter_groups(model), lr=1e-2, weight_decay=0.5)
    train(pruner, model, steps=3, optimizer=optimizer)
    closed = masks["fc1"].aux.detach() <= 0
    assert closed.any() and (~closed).any()
    torch.testing.assert_close(stored.detach()[closed], before[closed], rtol=0, atol=0)
    assert not torch.equal(stored.detach()[~closed], before[~closed])
    with torch.no_grad():  # reopen: the weight comes back as it was
        masks["fc1"].aux.abs_()
    pruner.reset()
    torch.testing.assert_close(model.fc1.weight.detach()[closed], before[closed], rtol=0, atol=0)


def test_masks_stay_float32_when_the_model_is_cast_and_still_move():
    torch.manual_seed(0)
    model = Net()
    pruner = AuxPruner(strength=1e-2, aux_lr=1e-3)
    masks = pruner.attach(model)
    model.to(torch.bfloat16)
    assert all(m.aux.dtype == torch.float32 for m in masks.values())
    assert model.fc1.parametrizations.weight.original.dtype == torch.bfloat16
    start = {n: m.aux.detach().clone() for n, m in masks.items()}
    optimizer = torch.optim.Adam(pruner.parameter_groups(model), lr=1e-3)
    for step, (x, y) in enumerate(batches(3)):
        nn.functional.cross_entropy(model(x.bfloat16()), y).backward()
        assert all(m.aux.grad.dtype == torch.float32 for m in masks.values())
        pruner.before_optimizer_step(float(step))
        optimizer.step()
        pruner.after_optimizer_step()
        optimizer.zero_grad()
    # an Adam step of 1e-3 on M = 1.0 survives in float32 (it would round away in bfloat16)
    assert all(not torch.equal(m.aux.detach(), start[n]) for n, m in masks.items())


def test_the_pruner_needs_its_masks_first():
    pruner = AuxPruner()
    with pytest.raises(RuntimeError, match="call attach"):
        pruner.before_optimizer_step(0.0)
    with pytest.raises(RuntimeError, match="call attach"):
        pruner.parameter_groups(Net())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strength": float("nan")}, "strength=nan must be a finite number"),
        ({"init_scale": float("inf")}, "init_scale=inf must be a finite number"),
        ({"warmup": float("nan")}, "warmup=nan must be a finite number"),
        ({"aux_optimizer": "adam"}, "Unknown aux_optimizer"),
        ({"target_sparsity": 0.5}, "needs to know when to reach it"),
        ({"include": ["fc("]}, "include pattern 'fc\\(' is not a valid regex"),
        ({"layer_types": ["Dense"]}, "Unsupported layer type"),
        ({"hysteresis": -0.1}, "hysteresis=-0.1 must be >= 0"),
        ({"hysteresis": float("nan")}, "hysteresis=nan must be a finite number"),
    ],
)
def test_bad_settings_are_refused_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AuxPruner(**kwargs)


def test_hysteresis_moves_masks_that_change_state_past_zero():
    def flips(hysteresis):
        torch.manual_seed(0)
        model = Net()
        pruner = AuxPruner(strength=5e-2, aux_lr=0.4, init_scale=0.2, aux_optimizer="sgd", hysteresis=hysteresis)
        pruner.attach(model)
        states = []
        for step, (x, y) in enumerate(batches(12)):
            before = [m.aux.detach().clone() for m in pruner.masks.values()]
            nn.functional.cross_entropy(model(x), y).backward()
            pruner.before_optimizer_step(float(step))
            pruner.after_optimizer_step()
            for old, mask in zip(before, pruner.masks.values(), strict=True):
                states.append((old, mask.aux.detach().clone()))
        closed = torch.cat([new[(old > 0) & (new <= 0)] for old, new in states])
        reopened = torch.cat([new[(old <= 0) & (new > 0)] for old, new in states])
        return closed, reopened, pruner.metrics(12.0)

    closed, reopened, plain = flips(0.0)
    assert plain["auxprune/recovered_total"] > 0 and closed.max() > -0.1  # masks flicker around zero
    h = 0.03
    closed, reopened, sticky = flips(h)
    assert closed.numel() > 0 and reopened.numel() > 0
    assert (closed <= -h).all() and (reopened >= h).all()
    assert sticky["auxprune/recovered_total"] < plain["auxprune/recovered_total"]


def test_state_round_trip_continues_counting_and_lambda():
    torch.manual_seed(0)
    model = Net()
    pruner = AuxPruner(strength=1e-2, aux_lr=0.1, aux_optimizer="sgd", target_sparsity=0.5, ramp=6)
    pruner.attach(model)
    train(pruner, model, steps=6)
    state = pruner.state_dict()
    other = AuxPruner(strength=1e-2, aux_lr=0.1, aux_optimizer="sgd", target_sparsity=0.5, ramp=6)
    other.attach(Net())
    assert other.load_state_dict(state) == []
    assert other.controller.state_dict() == pruner.controller.state_dict()
    assert other.events.state_dict() == pruner.events.state_dict()
    changed = AuxPruner(strength=2e-2, aux_optimizer="sgd", target_sparsity=0.5, ramp=8)
    differences = [d.split(":")[0] for d in changed.load_state_dict(state)]
    assert differences == ["schedule", "strength", "aux_lr", "target_end"]  # target_end follows the ramp
    with pytest.raises(ValueError, match="Resume with the same options"):
        AuxPruner(granularity="neuron").load_state_dict(state)


def test_a_version_0_1_state_is_upgraded_or_refused_with_advice():
    old = {
        "aux_param_names": ["fc1.parametrizations.weight.0.aux"],
        "events": {"previous": {}, "pruned_total": 5, "recovered_total": 2, "pruned_since": 1, "recovered_since": 0},
        "last_logged_step": 8,
        "options": AuxPruner().state_dict()["options"],
        "schedule": {"strength": 0.002, "unit": "step", "warmup": 2, "ramp": 0.0, "freeze": 40},
        "regularizer": "count",
        "controller": {"strength": 0.0021, "output": 0.0029},
    }
    pruner = AuxPruner(strength=0.002, warmup=2, freeze=40, target_sparsity=0.5)
    assert pruner.load_state_dict(old) == []
    assert (pruner.events.pruned_total, pruner.controller.output) == (5, 0.0029)
    assert upgrade_state(old)["schedule"] == {"warmup": 2, "ramp": 0.0, "freeze": 40}
    with pytest.raises(ValueError, match="bake the checkpoint's model"):
        upgrade_state({"schedule": {}, "options": {}})
