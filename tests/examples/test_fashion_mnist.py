import sys
import types

import pytest
import torch

from examples.data.fashion_mnist import (
    MEAN,
    STD,
    FashionMNISTDataModule,
    load_split,
    prepare_fashion_mnist,
    raw_dir,
)
from examples.data.idx import read_idx, write_idx


def test_missing_files_name_the_apt_package_and_download_option(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"apt-get install dataset-fashion-mnist.*download=True"):
        prepare_fashion_mnist(tmp_path / "data", debian_dir=tmp_path / "nowhere")
    dm = FashionMNISTDataModule(str(tmp_path / "data"), debian_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        dm.prepare_data()


def test_unpacks_debian_files_in_torchvisions_layout(tmp_path, fake_debian_fmnist):
    raw = prepare_fashion_mnist(tmp_path / "data", debian_dir=fake_debian_fmnist)
    assert raw == raw_dir(tmp_path / "data")
    assert sorted(p.name for p in raw.iterdir()) == [
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
    ]


def test_a_file_appears_only_once_complete(tmp_path, fake_debian_fmnist, monkeypatch):
    """Processes preparing one folder at once (a pool of benchmark runs) never read a half-written file."""
    import shutil

    raw, copy, seen = raw_dir(tmp_path / "data"), shutil.copyfileobj, []

    def copy_and_look(src, dst):
        copy(src, dst)
        seen.append(sorted(p.name for p in raw.iterdir() if not p.name.endswith(".partial")))

    monkeypatch.setattr(shutil, "copyfileobj", copy_and_look)
    prepare_fashion_mnist(tmp_path / "data", debian_dir=fake_debian_fmnist)
    assert [len(names) for names in seen] == [0, 1, 2, 3]  # the file being written is not there yet
    assert len(list(raw.iterdir())) == 4


def fake_torchvision(monkeypatch, dataset_class):
    """Install a stand-in ``torchvision.datasets`` whether or not torchvision is installed."""
    datasets = types.ModuleType("torchvision.datasets")
    datasets.FashionMNIST = dataset_class
    package = types.ModuleType("torchvision")
    package.datasets = datasets
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)


def test_download_path_is_torchvisions(tmp_path, monkeypatch):
    calls = []

    class FakeFashionMNIST:
        def __init__(self, root, train, download):
            calls.append((root, train, download))

    fake_torchvision(monkeypatch, FakeFashionMNIST)
    prepare_fashion_mnist(tmp_path / "data", debian_dir=tmp_path / "nowhere", download=True)
    assert calls == [(str(tmp_path / "data"), True, True), (str(tmp_path / "data"), False, True)]


def test_download_without_torchvision_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes `import torchvision` raise ImportError
    with pytest.raises(ImportError, match=r"lightning-auxprune\[vision\]"):
        prepare_fashion_mnist(tmp_path / "data", debian_dir=tmp_path / "nowhere", download=True)


def test_reads_what_debian_ships(fake_data_dir, fake_debian_fmnist):
    images, labels = load_split(fake_data_dir, train=False).tensors
    raw = read_idx(fake_debian_fmnist / "t10k-images-idx3-ubyte.gz")
    assert images.shape == (200, 1, 28, 28)
    assert torch.allclose(images[:, 0] * STD + MEAN, raw.float() / 255.0, atol=1e-6)
    assert torch.equal(labels, read_idx(fake_debian_fmnist / "t10k-labels-idx1-ubyte.gz").long())


def test_image_and_label_counts_must_agree(fake_data_dir):
    write_idx(raw_dir(fake_data_dir) / "t10k-labels-idx1-ubyte", torch.zeros(150, dtype=torch.uint8))
    with pytest.raises(ValueError, match="200 t10k images but 150 labels"):
        load_split(fake_data_dir, train=False)


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


def test_train_images_counts_the_split_without_reading_it():
    assert FashionMNISTDataModule(val_size=5000).train_images == 55_000
    assert FashionMNISTDataModule(val_size=5000, train_subset=10_000).train_images == 10_000
    assert FashionMNISTDataModule(val_size=5000, train_subset=70_000).train_images == 55_000  # no more than there are
