import torch

from lightning_auxprune import AuxMaskPruning
from lightning_auxprune.aux_group import find_aux_group
from lightning_auxprune.aux_sgd import aux_sgd_step
from tests.conftest import TinyNet, tiny_trainer, toy_loader


def test_step_moves_by_lr_times_grad_and_clears_grads():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.zeros(3))
    a.grad = torch.tensor([1.0, -2.0])
    assert bool(aux_sgd_step([a, b], lr=0.5))
    assert a.detach().tolist() == [0.5, 2.0]
    assert b.detach().tolist() == [0.0, 0.0, 0.0]  # no gradient: untouched
    assert a.grad is None and b.grad is None


def test_non_finite_gradients_skip_the_whole_step():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    a.grad, b.grad = torch.tensor([1.0, 1.0]), torch.tensor([float("inf"), 0.0])
    assert not bool(aux_sgd_step([a, b], lr=0.1))
    assert a.detach().tolist() == [1.0, 1.0] and b.detach().tolist() == [1.0, 1.0]
    assert a.grad is None and b.grad is None


def test_callback_steps_masks_itself_and_adam_never_sees_them(tmp_path):
    torch.manual_seed(0)
    model = TinyNet(optimizer="adam")
    cb = AuxMaskPruning(strength=5e-3, aux_lr=2.0, aux_optimizer="sgd", print_table=False)
    trainer = tiny_trainer(tmp_path, 3, [cb])
    trainer.fit(model, toy_loader())
    opt = trainer.optimizers[0]
    group = find_aux_group(opt)
    assert group is not None and group["params"]
    assert not any(p in opt.state for p in group["params"])  # Adam kept no state for the masks
    moved = [m for m in cb.masks.values() if not bool((m.aux == 1.0).all())]
    assert len(moved) == len(cb.masks)
    assert sum(1.0 - m.density() for m in cb.masks.values()) > 0.0  # and some closed


def test_normalized_step_moves_every_layer_by_lr_in_rms():
    small, large = torch.nn.Parameter(torch.zeros(4)), torch.nn.Parameter(torch.zeros(2))
    small.grad = torch.tensor([1e-6, -1e-6, 2e-6, 0.0])
    large.grad = torch.tensor([30.0, -40.0])
    before = small.grad.clone()
    assert bool(aux_sgd_step([small, large], lr=0.1, normalize=True))
    for p in (small, large):
        assert torch.isclose(p.detach().square().mean().sqrt(), torch.tensor(0.1), rtol=1e-4)
    assert torch.allclose(small.detach() / small.detach().abs().max(), -before / before.abs().max())


def test_normalized_step_leaves_a_zero_gradient_at_zero():
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.zeros(3)
    assert aux_sgd_step([p], lr=1.0, normalize=True)
    assert p.detach().tolist() == [1.0, 1.0, 1.0]


def test_callback_normalized_sgd_moves_every_layer_by_aux_lr(tmp_path):
    torch.manual_seed(0)
    model = TinyNet(optimizer="adam")
    cb = AuxMaskPruning(strength=5e-3, aux_lr=0.05, aux_optimizer="normalized_sgd", print_table=False)
    trainer = tiny_trainer(tmp_path, 1, [cb], max_steps=1)
    trainer.fit(model, toy_loader())
    assert trainer.global_step == 1 and len(cb.masks) >= 2
    for mask in cb.masks.values():  # one step: every layer's M moved by exactly aux_lr in RMS
        drift = (mask.aux.detach() - 1.0).square().mean().sqrt()
        assert torch.isclose(drift, torch.tensor(0.05), rtol=1e-3)
    assert not any(p in trainer.optimizers[0].state for p in find_aux_group(trainer.optimizers[0])["params"])
