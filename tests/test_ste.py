import torch

from lightning_auxprune.ste import hard_step, ste_grad

M = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0])


def test_hard_step_is_exact_zero_one():
    assert hard_step(M).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_surrogates():
    assert ste_grad(M, "identity").tolist() == [1.0] * 5
    assert ste_grad(M, "relu").tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    torch.testing.assert_close(ste_grad(M, "leaky_relu", alpha=0.25), torch.tensor([0.25, 0.25, 0.25, 1.0, 1.0]))
    torch.testing.assert_close(ste_grad(M, "softplus", beta=2.0), torch.sigmoid(2.0 * M))
    assert float(ste_grad(torch.tensor([0.0]), "softplus", beta=7.0)) == 0.5


def test_unknown_ste():
    import pytest

    with pytest.raises(ValueError, match="Unknown ste='step'"):
        ste_grad(M, "step")  # type: ignore[arg-type]
