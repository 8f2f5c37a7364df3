"""LightningCLI entry point: run any example with AuxMaskPruning from a YAML config.

Example:
    python -m examples.cli fit --config examples/configs/lenet5_autoprune.yaml
    python -m examples.cli fit --config examples/configs/lenet300100_autoprune.yaml --trainer.max_epochs 2

"""

from __future__ import annotations

from lightning.pytorch.cli import LightningCLI

from examples.classifier import ImageClassifier
from examples.data.fashion_mnist import FashionMNISTDataModule


def main(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    """Build (and by default run) the CLI; ``args`` replaces ``sys.argv[1:]`` when given."""
    return LightningCLI(
        ImageClassifier,
        FashionMNISTDataModule,
        args=args,
        run=run,
        save_config_kwargs={"overwrite": True},
    )


if __name__ == "__main__":
    main()
