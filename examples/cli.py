"""LightningCLI entry point: run any example with AuxMaskPruning from a YAML config.

After ``fit`` with neuron masks, the model is shrunk (every closed unit removed, or an error
naming the layer that could not be) and saved as ``shrunk.pt`` in the log directory; load it with
``lightning_auxprune.load_shrunk(ImageClassifier(arch=...), path)``. ``deployed.pt`` is the same
network with BatchNorm folded into the convolutions, saved whole: ``torch.load(path, weights_only=False)``.

Example:
    python -m examples.cli fit --config examples/configs/lenet5_autoprune.yaml
    python -m examples.cli fit --config examples/configs/lenet300100_autoprune.yaml --trainer.max_epochs 2

"""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch.cli import LightningCLI

from examples.classifier import ImageClassifier
from examples.data.fashion_mnist import FashionMNISTDataModule
from lightning_auxprune import AuxMaskPruning, fold_batchnorm, save_shrunk, shrink


class ExampleCLI(LightningCLI):
    """LightningCLI that shrinks and saves a neuron-pruned model after ``fit``."""

    shrunk_path: Path | None = None
    deployed_path: Path | None = None

    def after_fit(self) -> None:
        """Shrink with ``on_unsafe="error"`` when the pruning callback used neuron masks."""
        pruning = [c for c in self.trainer.callbacks if isinstance(c, AuxMaskPruning)]  # type: ignore[attr-defined]
        if not pruning or pruning[0].options.granularity != "neuron":
            return
        result = shrink(self.model, self.model.example_input_array, on_unsafe="error")
        self.shrunk_path = Path(self.trainer.log_dir or self.trainer.default_root_dir) / "shrunk.pt"
        self.shrunk_path.parent.mkdir(parents=True, exist_ok=True)
        save_shrunk(result.model, str(self.shrunk_path))
        folded = fold_batchnorm(result.model.net, self.model.example_input_array)  # type: ignore[arg-type]
        self.deployed_path = self.shrunk_path.with_name("deployed.pt")
        torch.save(folded.model, self.deployed_path)
        print(
            f"shrunk: {result.shrunk_macs / result.dense_macs:.1%} of the dense MACs, "
            f"{sum(result.removed.values())} units removed; saved to {self.shrunk_path}; with "
            f"{len(folded.folded)} BatchNorms folded ({len(folded.skipped)} not) to {self.deployed_path}"
        )


def main(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    """Build (and by default run) the CLI; ``args`` replaces ``sys.argv[1:]`` when given."""
    return ExampleCLI(
        ImageClassifier,
        FashionMNISTDataModule,
        args=args,
        run=run,
        save_config_kwargs={"overwrite": True},
    )


if __name__ == "__main__":
    main()
