import pytest
import torch

from examples.models.lenet import LeNet300100
from examples.own_loop import main


@pytest.mark.parametrize("fabric", [False, True])
def test_own_loop_prunes_with_and_without_fabric(fake_data_dir, fabric):
    argv = [
        "--data-dir",
        str(fake_data_dir),
        "--epochs",
        "4",
        "--target-sparsity",
        "0.9",
        "--val-size",
        "100",
        "--batch-size",
        "16",
        "--lr",
        "0.003",
    ]
    result = main(argv + (["--fabric"] if fabric else []))
    assert result["history"][0]["auxprune/sparsity"] == 0.0  # the dense warm-up epoch
    assert result["sparsity"] > 0.5
    assert result["val_accuracy"] > 0.5  # 10 classes: well above chance on the learnable fake data
    plain = LeNet300100()
    plain.load_state_dict(result["model"].state_dict())  # the baked model loads into the architecture
    assert float((plain.fc1.weight == 0).float().mean()) > 0.5
    assert torch.isfinite(plain.fc1.weight).all()
