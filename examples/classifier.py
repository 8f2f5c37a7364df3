"""``ImageClassifier``: a LightningModule around any example architecture, with torchmetrics.

Example:
    >>> model = ImageClassifier(arch="lenet300100", optimizer="sgd", lr=0.1)
    >>> model(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])

"""

from __future__ import annotations

from typing import Any, Literal, cast

import lightning as L
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from examples.models import build_model

OptimizerName = Literal["sgd", "adam", "adamw"]


class ImageClassifier(L.LightningModule):
    """Cross-entropy classifier logging ``train/loss``, ``val/acc`` and ``test/acc``.

    Args:
        arch: Architecture name (see :func:`examples.models.build_model`).
        num_classes: Number of classes.
        optimizer: ``"sgd"`` (momentum 0.9), ``"adam"`` or ``"adamw"``.
        lr: Learning rate of the weights.
        weight_decay: Weight decay of the weights.
        cosine_epochs: If > 0, a cosine-annealing LR schedule over that many epochs.

    """

    def __init__(
        self,
        arch: str = "lenet5",
        num_classes: int = 10,
        optimizer: OptimizerName = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        cosine_epochs: int = 0,
    ) -> None:
        super().__init__()
        if optimizer not in ("sgd", "adam", "adamw"):
            raise ValueError(f"Unknown optimizer {optimizer!r}; use 'sgd', 'adam' or 'adamw'.")
        self.save_hyperparameters()
        self.net = build_model(arch)
        self.val_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.example_input_array = torch.zeros(1, 1, 28, 28)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.val_acc(logits, y)
        self.log("val/loss", nn.functional.cross_entropy(logits, y))
        self.log("val/acc", self.val_acc, prog_bar=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.test_acc(self(x), y)
        self.log("test/acc", self.test_acc)

    def configure_optimizers(self) -> Any:
        hp = cast(Any, self.hparams)
        if hp.optimizer == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(
                self.parameters(), lr=hp.lr, momentum=0.9, weight_decay=hp.weight_decay
            )
        elif hp.optimizer == "adam":
            opt = torch.optim.Adam(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        else:
            opt = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.cosine_epochs <= 0:
            return opt
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=hp.cosine_epochs)
        return {"optimizer": opt, "lr_scheduler": sched}
