import pytest
import torch

from lightning_auxprune.options import MaskOptions
from lightning_auxprune.parametrization import AuxMask
from lightning_auxprune.regularizer import add_regularizer_grad, regularizer_grads, regularizer_value, shared_options


def make(values, **kw):
    mask = AuxMask(torch.ones(len(values)), MaskOptions(**kw))
    with torch.no_grad():
        mask.aux.copy_(torch.tensor(values))
    return mask


def test_count_regularizer_gradient_goes_through_ste():
    mask = make([1.0, -1.0, 0.5], ste="leaky_relu", alpha=0.2)
    assert regularizer_value([mask], "count") == 2.0
    torch.testing.assert_close(regularizer_grads([mask], "count")[0], torch.tensor([1.0, 0.2, 1.0]))
    relu = make([1.0, -1.0], ste="relu")
    assert regularizer_grads([relu], "count")[0].tolist() == [1.0, 0.0]


def test_l1_regularizer():
    mask = make([2.0, -1.0, 0.5])
    assert regularizer_value([mask], "l1") == 3.5
    assert regularizer_grads([mask], "l1")[0].tolist() == [1.0, -1.0, 1.0]


def test_grad_is_accumulated_like_backward_of_loss_plus_lambda_r():
    mask = make([1.0, -1.0], ste="softplus", beta=2.0)
    mask.aux.grad = torch.tensor([0.1, 0.2])
    add_regularizer_grad([mask], "count", 0.5)
    expected = torch.tensor([0.1, 0.2]) + 0.5 * torch.sigmoid(2.0 * torch.tensor([1.0, -1.0]))
    torch.testing.assert_close(mask.aux.grad, expected)


def test_identity_ste_and_a_device_tensor_lambda():
    masks = [make([1.0, -1.0], ste="identity"), make([-2.0], ste="identity")]
    masks[0].aux.grad = torch.tensor([0.5, 0.5])
    add_regularizer_grad(masks, "count", torch.tensor(0.25, dtype=torch.float64))
    assert masks[0].aux.grad.tolist() == [0.75, 0.75]
    assert masks[1].aux.grad is None  # no data gradient (frozen layer, skipped batch): no push
    assert masks[0].aux.grad.dtype == torch.float32


def test_masks_with_different_options_are_refused():
    with pytest.raises(ValueError, match="patch them with one MaskOptions"):
        shared_options([make([1.0], ste="relu"), make([1.0], ste="softplus")])
