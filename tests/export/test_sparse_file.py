import pytest
import torch

from examples.models.lenet import LeNet300100
from lightning_auxprune.export.sparse_file import load_sparse, save_sparse
from lightning_auxprune.options import MaskOptions
from lightning_auxprune.patch import patch_model


def pruned_lenet(density=0.05):
    torch.manual_seed(0)
    model = LeNet300100()
    masks = patch_model(model, ["fc1", "fc2", "fc3"], MaskOptions())
    with torch.no_grad():
        for mask in masks.values():
            mask.aux.copy_(torch.where(torch.rand_like(mask.aux) < density, 1.0, -1.0))
    return model


def test_round_trip_gives_identical_outputs_and_is_smaller(tmp_path):
    model = pruned_lenet()
    save_sparse(model, tmp_path / "sparse.pt")
    plain = LeNet300100()
    plain.load_state_dict(load_sparse(tmp_path / "sparse.pt"))
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(plain(x), model(x), rtol=0, atol=0)
    torch.save(plain.state_dict(), tmp_path / "dense.pt")
    ratio = (tmp_path / "dense.pt").stat().st_size / (tmp_path / "sparse.pt").stat().st_size
    assert ratio > 8  # 5% density: 8 bytes per non-zero vs 4 bytes per entry -> ~10x


def test_dense_tensors_stay_dense_and_bad_input(tmp_path):
    model = pruned_lenet(density=0.9)
    save_sparse(model, tmp_path / "s.pt")
    saved = torch.load(tmp_path / "s.pt", weights_only=True)
    assert {e["kind"] for e in saved["tensors"].values()} == {"dense"}
    torch.save({"weight": torch.ones(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="Not a lightning-auxprune-sparse/1 file"):
        load_sparse(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="min_sparsity"):
        save_sparse(model, tmp_path / "x.pt", min_sparsity=1.5)
    with pytest.raises(ValueError, match="was never patched"):
        save_sparse(LeNet300100(), tmp_path / "plain.pt")
