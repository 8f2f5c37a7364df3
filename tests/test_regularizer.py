import torch

from lightning_auxprune.options import MaskOptions
from lightning_auxprune.parametrization import AuxMask
from lightning_auxprune.regularizer import add_regularizer_grad, regularizer_grad, regularizer_value


def make(values, **kw):
    mask = AuxMask(torch.ones(len(values)), MaskOptions(**kw))
    with torch.no_grad():
        mask.aux.copy_(torch.tensor(values))
    return mask


def test_count_regularizer_gradient_goes_through_ste():
    mask = make([1.0, -1.0, 0.5], ste="leaky_relu", alpha=0.2)
    assert regularizer_value([mask], "count") == 2.0
    torch.testing.assert_close(regularizer_grad(mask, "count"), torch.tensor([1.0, 0.2, 1.0]))
    relu = make([1.0, -1.0], ste="relu")
    assert regularizer_grad(relu, "count").tolist() == [1.0, 0.0]


def test_l1_regularizer():
    mask = make([2.0, -1.0, 0.5])
    assert regularizer_value([mask], "l1") == 3.5
    assert regularizer_grad(mask, "l1").tolist() == [1.0, -1.0, 1.0]


def test_grad_is_accumulated_like_backward_of_loss_plus_lambda_r():
    mask = make([1.0, -1.0], ste="softplus", beta=2.0)
    mask.aux.grad = torch.tensor([0.1, 0.2])
    add_regularizer_grad([mask], "count", 0.5)
    expected = torch.tensor([0.1, 0.2]) + 0.5 * torch.sigmoid(2.0 * torch.tensor([1.0, -1.0]))
    torch.testing.assert_close(mask.aux.grad, expected)
