"""Run by tests/test_ddp.py: a 2-process CPU DDP (gloo) fit; each rank saves its final state."""

import sys
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_auxprune import AuxMaskPruning
from tests.conftest import TinyNet, toy_loader


def main(out: Path) -> None:
    L.seed_everything(0)
    model = TinyNet()
    cb = AuxMaskPruning(strength=2e-3, aux_lr=0.05, log_every_n_steps=2)
    trainer = L.Trainer(
        max_epochs=3,
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        callbacks=[cb],
        logger=CSVLogger(out, name="ddp", version=0),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, toy_loader(n=512))
    torch.save(
        {"state": model.state_dict(), "pruned_total": cb.events.pruned_total}, out / f"rank{trainer.global_rank}.pt"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
