import pytest
import torch

from lightning_auxprune.aux_group import align_schedulers, attach_aux_group, aux_lr, find_aux_group, set_aux_lr


def setup(opt_cls=torch.optim.SGD, **kw):
    w = torch.nn.Parameter(torch.randn(3))
    m = torch.nn.Parameter(torch.ones(3))
    opt = opt_cls([w, m], lr=0.1, **kw)
    return w, m, opt


def make_schedulers(opt):
    sched = torch.optim.lr_scheduler
    return {
        "step": sched.StepLR(opt, step_size=1, gamma=0.5),
        "lambda": sched.LambdaLR(opt, lambda e: 0.9**e),
        "cosine": sched.CosineAnnealingLR(opt, T_max=5),
        "plateau": sched.ReduceLROnPlateau(opt, patience=0, factor=0.5, min_lr=[1e-4]),
        "onecycle": sched.OneCycleLR(opt, max_lr=0.2, total_steps=20),
        "cyclic": sched.CyclicLR(opt, base_lr=0.01, max_lr=0.1),
        "sequential": sched.SequentialLR(
            opt, [sched.LinearLR(opt, 0.5, total_iters=2), sched.ExponentialLR(opt, 0.9)], milestones=[2]
        ),
    }


def test_masks_move_into_named_group_without_weight_decay():
    w, m, opt = setup(torch.optim.AdamW, weight_decay=0.1)
    attach_aux_group(opt, [m], lr=0.01)
    assert [p for p in opt.param_groups[0]["params"]] == [w]
    group = find_aux_group(opt)
    assert group is not None and group["params"] == [m]
    assert (group["lr"], group["weight_decay"], group["name"]) == (0.01, 0.0, "auxprune")
    with pytest.raises(ValueError, match="already has a parameter group"):
        attach_aux_group(opt, [m], lr=0.01)


def test_group_of_only_masks_is_an_error():
    m = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.ones(1))]}, {"params": [m]}], lr=0.1)
    with pytest.raises(ValueError, match="holds only auxiliary masks"):
        attach_aux_group(opt, [m], lr=0.01)


@pytest.mark.parametrize("name", ["step", "lambda", "cosine", "plateau", "onecycle", "cyclic", "sequential"])
def test_schedulers_survive_the_extra_group_and_fixed_lr_is_reasserted(name):
    w, m, opt = setup(momentum=0.9)
    scheduler = make_schedulers(opt)[name]
    attach_aux_group(opt, [m], lr=0.01)
    align_schedulers([scheduler], opt, 0.01)
    for _ in range(4):
        opt.zero_grad()
        (w.sum() + m.sum()).backward()
        opt.step()
        if name == "plateau":
            scheduler.step(1.0)
        else:
            scheduler.step()
        set_aux_lr(opt, aux_lr(opt, 0.01, "fixed"))
        assert find_aux_group(opt)["lr"] == 0.01
    state = scheduler.state_dict()  # still serialisable
    assert isinstance(state, dict)


def test_follow_mode_scales_with_group_zero():
    _w, m, opt = setup()
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    attach_aux_group(opt, [m], lr=0.01)
    align_schedulers([scheduler], opt, 0.01)
    opt.step()
    scheduler.step()
    scheduler.step()
    assert aux_lr(opt, 0.01, "follow") == pytest.approx(0.0025)
    with pytest.raises(ValueError, match="Unknown aux_lr_mode"):
        aux_lr(opt, 0.01, "cosine")  # type: ignore[arg-type]
