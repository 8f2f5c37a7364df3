"""Shared fixtures: a tiny LightningModule on synthetic data, fake Fashion-MNIST files and a structured
grid's records file made from closed networks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from benchmarks import latency
from benchmarks.harness import Record, append_record, architecture
from examples.data.idx import write_idx


class TinyNet(L.LightningModule):
    """Two Linear layers and a Conv1d on a linearly separable toy task."""

    def __init__(self, optimizer: str = "adam", lr: float = 1e-2, weight_decay: float = 0.0, scheduler: str = ""):
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 3, padding=1)
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 2)
        self.optimizer, self.lr, self.weight_decay, self.scheduler = optimizer, lr, weight_decay, scheduler
        self.example_input_array = torch.zeros(1, 16)  # neuron masks trace the model on it

    def forward(self, x):
        x = torch.relu(self.conv(x.unsqueeze(1))).flatten(1)
        return self.fc2(torch.relu(self.fc1(x)))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[self.optimizer]
        kwargs = {"momentum": 0.9} if self.optimizer == "sgd" else {}
        opt = cls(self.parameters(), lr=self.lr, weight_decay=self.weight_decay, **kwargs)
        if self.scheduler == "step":
            return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)}
        if self.scheduler == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=1000)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        if self.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "train_loss"}}
        return opt


def toy_loader(n: int = 256, batch_size: int = 32, seed: int = 0) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)


def tiny_trainer(tmp_path: Path, max_epochs: int = 3, callbacks=None, **kwargs) -> L.Trainer:
    defaults = dict(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        callbacks=callbacks or [],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        log_every_n_steps=2,
    )
    defaults.update(kwargs)
    return L.Trainer(**defaults)


@pytest.fixture
def fake_debian_fmnist(tmp_path: Path) -> Path:
    """A folder shaped like Debian's dataset-fashion-mnist, with small learnable fake images."""
    root = tmp_path / "debian-fmnist"
    root.mkdir()
    g = torch.Generator().manual_seed(0)
    for prefix, n in (("train", 600), ("t10k", 200)):
        labels = torch.randint(0, 10, (n,), generator=g)
        images = torch.randint(0, 60, (n, 28, 28), generator=g)
        for i, label in enumerate(labels.tolist()):  # a class-dependent bright stripe
            images[i, 2 * label : 2 * label + 3, :] = 250
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


@pytest.fixture
def fake_data_dir(tmp_path: Path, fake_debian_fmnist: Path) -> Path:
    """A data root with the fake files already unpacked in torchvision's layout."""
    from examples.data.fashion_mnist import prepare_fashion_mnist

    data = tmp_path / "data"
    prepare_fashion_mnist(data, fake_debian_fmnist)
    return data


@pytest.fixture
def closing_records(tmp_path: Path) -> Callable[[str, tuple[float, ...]], Path]:
    """Write one ``tp_l1`` record per closed fraction of ``arch``'s units (setting ``1 - fraction``)."""

    def write(arch: str, fractions: tuple[float, ...]) -> Path:
        records = tmp_path / "runs.jsonl"
        for fraction in fractions:
            deployed = latency.closing_pair(arch, fraction).deployed
            fields = {"epochs": 1, "dense_accuracy": None, "accuracy": 0.9, "val_accuracy": 0.9, "compression": 2.0}
            fields |= {"flops_ratio": 1 - fraction, "step_time_ratio": None, "step_ms": 1.0, "train_images": 10}
            record = Record(arch, "tp_l1", 1 - fraction, 0, **fields, variant="structured", **architecture(deployed))
            append_record(records, record)
        return records

    return write
