"""Run by tests/test_ddp.py: a 2-process CPU fit (gloo); each rank (or, with ddp_spawn, the main
process) saves its final state."""

import sys
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_auxprune import AuxMaskPruning
from tests.conftest import TinyNet, toy_loader


def main(out: Path, strategy: str, attach: bool) -> None:
    L.seed_everything(0)
    model = TinyNet()
    cb = AuxMaskPruning(strength=2e-3, aux_lr=0.05, log_every_n_steps=2)
    if attach:
        cb.attach(model)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = L.Trainer(
        max_epochs=3,
        accelerator="cpu",
        devices=2,
        strategy=strategy,
        callbacks=[cb],
        logger=CSVLogger(out, name="ddp", version=0),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, toy_loader(n=512))
    name = "main" if strategy in ("ddp_spawn", "ddp_fork") else f"rank{trainer.global_rank}"
    result = {"state": model.state_dict(), "initial": initial, "pruned_total": cb.events.pruned_total}
    torch.save(result, out / f"{name}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "ddp", "--attach" in sys.argv)
