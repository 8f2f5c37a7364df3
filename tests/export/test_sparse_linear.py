import torch

from examples.models.lenet import LeNet300100
from lightning_auxprune.export.sparse_linear import SparseLinear, sparsify_linear
from lightning_auxprune.options import MaskOptions
from lightning_auxprune.patch import patch_model


def test_only_sparse_enough_layers_are_converted_and_outputs_match():
    torch.manual_seed(0)
    model = LeNet300100()
    masks = patch_model(model, ["fc1", "fc2"], MaskOptions())
    with torch.no_grad():
        masks["fc1"].aux.copy_(torch.where(torch.rand_like(masks["fc1"].aux) < 0.02, 1.0, -1.0))
        masks["fc2"].aux.copy_(torch.where(torch.rand_like(masks["fc2"].aux) < 0.5, 1.0, -1.0))
    fast = sparsify_linear(model, min_sparsity=0.9)
    assert isinstance(fast.fc1, SparseLinear)
    assert isinstance(fast.fc2, torch.nn.Linear) and isinstance(fast.fc3, torch.nn.Linear)
    x = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-5, atol=1e-5)
    assert "nnz=" in repr(fast.fc1)
