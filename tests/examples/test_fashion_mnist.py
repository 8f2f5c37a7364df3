import pytest
import torch

from examples.data.fashion_mnist import FashionMNISTDataModule, prepare_fashion_mnist, raw_dir


def test_missing_files_name_the_apt_package_and_download_option(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"apt-get install dataset-fashion-mnist.*download=True"):
        prepare_fashion_mnist(tmp_path / "data", debian_dir=tmp_path / "nowhere")
    dm = FashionMNISTDataModule(str(tmp_path / "data"), debian_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        dm.prepare_data()


def test_unpacks_debian_files_where_torchvision_looks(tmp_path, fake_debian_fmnist):
    raw = prepare_fashion_mnist(tmp_path / "data", debian_dir=fake_debian_fmnist)
    assert raw == raw_dir(tmp_path / "data")
    assert sorted(p.name for p in raw.iterdir()) == [
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
    ]


def test_download_path_is_torchvisions(tmp_path, monkeypatch):
    calls = []

    class FakeFashionMNIST:
        def __init__(self, root, train, download):
            calls.append((root, train, download))

    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeFashionMNIST)
    prepare_fashion_mnist(tmp_path / "data", debian_dir=tmp_path / "nowhere", download=True)
    assert calls == [(str(tmp_path / "data"), True, True), (str(tmp_path / "data"), False, True)]


def test_splits_are_disjoint_and_normalised(fake_data_dir):
    dm = FashionMNISTDataModule(str(fake_data_dir), batch_size=50, val_size=100, train_subset=300)
    dm.setup("fit")
    dm.setup("test")
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (300, 100, 200)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (50, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.long
    train_imgs = {tuple(t.flatten().tolist()) for t in dm.train_set.tensors[0]}
    val_imgs = {tuple(t.flatten().tolist()) for t in dm.val_set.tensors[0]}
    assert not train_imgs & val_imgs
