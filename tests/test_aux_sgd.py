import torch

from lightning_auxprune import AuxMaskPruning
from lightning_auxprune.aux_group import find_aux_group
from lightning_auxprune.aux_sgd import aux_sgd_step
from tests.conftest import TinyNet, tiny_trainer, toy_loader


def test_step_moves_by_lr_times_grad_and_clears_grads():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.zeros(3))
    a.grad = torch.tensor([1.0, -2.0])
    assert aux_sgd_step([a, b], lr=0.5)
    assert a.detach().tolist() == [0.5, 2.0]
    assert b.detach().tolist() == [0.0, 0.0, 0.0]  # no gradient: untouched
    assert a.grad is None and b.grad is None


def test_non_finite_gradients_skip_the_whole_step():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    a.grad, b.grad = torch.tensor([1.0, 1.0]), torch.tensor([float("inf"), 0.0])
    assert not aux_sgd_step([a, b], lr=0.1)
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
