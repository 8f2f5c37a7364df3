"""Fashion-MNIST as a LightningDataModule that works offline from Debian's package.

Files are looked up under ``<data_dir>/FashionMNIST/raw`` (torchvision's layout). If they are
missing, they are unpacked from Debian's ``dataset-fashion-mnist`` package
(``/usr/share/datasets/fashion-mnist``); failing that, ``download=True`` uses torchvision's
download (the only use of torchvision, which is optional: the files are read by ``examples.data.idx``).
The whole split is held as one normalised tensor, which is much faster on CPU than per-image
transforms.

Example:
    >>> dm = FashionMNISTDataModule(data_dir="data", batch_size=128)  # doctest: +SKIP
    >>> dm.setup("fit")  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from examples.data.idx import read_idx

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
TRAIN_IMAGES = 60_000
"""Images in Fashion-MNIST's training split, before the validation images are held out."""
FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
MEAN, STD = 0.2860, 0.3530


def raw_dir(data_dir: str | Path) -> Path:
    """Where torchvision's ``FashionMNIST`` expects the unpacked IDX files."""
    return Path(data_dir) / "FashionMNIST" / "raw"


def prepare_fashion_mnist(data_dir: str | Path, debian_dir: str | Path = DEBIAN_DIR, download: bool = False) -> Path:
    """Make sure the four IDX files are unpacked under ``raw_dir(data_dir)``.

    Args:
        data_dir: Root folder for datasets.
        debian_dir: Folder holding Debian's ``*.gz`` files.
        download: Fall back to torchvision's download when neither source has the files.

    Returns:
        The raw folder.

    Raises:
        FileNotFoundError: If the files are nowhere and ``download`` is False.
    """
    target = raw_dir(data_dir)
    missing = [f for f in FILES if not (target / f).exists()]
    if not missing:
        return target
    debian = Path(debian_dir)
    if all((debian / f"{f}.gz").exists() for f in missing):
        target.mkdir(parents=True, exist_ok=True)
        for name in missing:
            # unpacked under a name of this process's own, then renamed (atomic): processes preparing the
            # same folder at once (a pool of benchmark runs) never read a half-written file
            partial = target / f"{name}.{os.getpid()}.partial"
            with gzip.open(debian / f"{name}.gz", "rb") as src, open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(partial, target / name)
        return target
    if download:
        try:
            from torchvision.datasets import FashionMNIST
        except ImportError as err:
            raise ImportError(
                "download=True fetches Fashion-MNIST with torchvision, which is not installed: "
                "`pip install 'lightning-auxprune[vision]'`, or install Debian's dataset-fashion-mnist."
            ) from err

        FashionMNIST(str(data_dir), train=True, download=True)
        FashionMNIST(str(data_dir), train=False, download=True)
        return target
    raise FileNotFoundError(
        f"Fashion-MNIST files {missing} are not in {target} nor in {debian}. Install them with "
        "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or pass download=True "
        "(--data.download true) to fetch them with torchvision."
    )


def load_split(data_dir: str | Path, train: bool) -> TensorDataset:
    """One split as a normalised ``[N, 1, 28, 28]`` float tensor dataset.

    Raises:
        ValueError: If the image and label files disagree on the number of examples.
    """
    prefix = "train" if train else "t10k"
    images = read_idx(raw_dir(data_dir) / f"{prefix}-images-idx3-ubyte")
    labels = read_idx(raw_dir(data_dir) / f"{prefix}-labels-idx1-ubyte")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} {prefix} images but {len(labels)} labels in {raw_dir(data_dir)}.")
    return TensorDataset(images.float().div(255.0).sub(MEAN).div(STD).unsqueeze(1), labels.long())


class FashionMNISTDataModule(L.LightningDataModule):
    """Fashion-MNIST with a validation split carved from the training set.

    Args:
        data_dir: Root folder (files under ``<data_dir>/FashionMNIST/raw``).
        batch_size: Batch size of every loader.
        val_size: Training images held out for validation (model selection never sees test).
        train_subset: Use only the first N remaining training images (quick runs); ``None``: all.
        download: Allow torchvision's download if the files are missing.
        seed: Seed of the train/validation split and of shuffling.
        num_workers: DataLoader workers.
        debian_dir: Where Debian's ``dataset-fashion-mnist`` puts its ``*.gz`` files.
    """

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        val_size: int = 5000,
        train_subset: int | None = None,
        download: bool = False,
        seed: int = 0,
        num_workers: int = 0,
        debian_dir: str = str(DEBIAN_DIR),
    ) -> None:
        super().__init__()
        if batch_size < 1 or val_size < 0:
            raise ValueError(f"batch_size={batch_size} must be >= 1 and val_size={val_size} >= 0.")
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.val_size = val_size
        self.train_subset = train_subset
        self.download = download
        self.seed = seed
        self.num_workers = num_workers
        self.debian_dir = debian_dir
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None
        self.test_set: TensorDataset | None = None

    @property
    def train_images(self) -> int:
        """How many images ``setup`` puts in the training set of the full dataset, without reading it.

        Example:
            >>> FashionMNISTDataModule(val_size=5000, train_subset=10_000).train_images
            10000

        """
        remaining = TRAIN_IMAGES - self.val_size
        return remaining if self.train_subset is None else min(self.train_subset, remaining)

    def prepare_data(self) -> None:
        prepare_fashion_mnist(self.data_dir, self.debian_dir, self.download)

    def setup(self, stage: str | None = None) -> None:
        prepare_fashion_mnist(self.data_dir, self.debian_dir, self.download)
        if stage in (None, "fit", "validate") and self.train_set is None:
            full = load_split(self.data_dir, train=True)
            order = torch.randperm(len(full), generator=torch.Generator().manual_seed(self.seed))
            val_idx, train_idx = order[: self.val_size], order[self.val_size :]
            if self.train_subset is not None:
                train_idx = train_idx[: self.train_subset]
            images, labels = full.tensors
            self.train_set = TensorDataset(images[train_idx], labels[train_idx])
            self.val_set = TensorDataset(images[val_idx], labels[val_idx])
        if stage in (None, "test") and self.test_set is None:
            self.test_set = load_split(self.data_dir, train=False)

    def _loader(self, dataset: TensorDataset | None, shuffle: bool) -> DataLoader[tuple[torch.Tensor, ...]]:
        if dataset is None:
            raise RuntimeError("Call setup() first.")
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(
            dataset, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers, generator=generator
        )

    def train_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
        return self._loader(self.test_set, shuffle=False)


def main() -> None:
    """``python -m examples.data.fashion_mnist --root data``: unpack the files, print where."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--root", default="data")
    parser.add_argument("--debian-dir", default=str(DEBIAN_DIR))
    parser.add_argument("--download", action="store_true")
    args = parser.parse_args()
    print(f"Fashion-MNIST ready in {prepare_fashion_mnist(args.root, args.debian_dir, args.download)}")


if __name__ == "__main__":
    main()
