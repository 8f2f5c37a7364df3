"""AutoPrune in your own training loop: :class:`~lightning_auxprune.AuxPruner` without a Trainer.

The same LeNet-300-100 / Fashion-MNIST pruning as the Lightning examples, written as a plain
PyTorch loop, or with ``--fabric`` as a Lightning Fabric loop (Fabric moves the model and the
batches, runs backward and handles precision; the pruner is called the same way)::

    python -m examples.own_loop --data-dir data --epochs 4 --target-sparsity 0.95
    python -m examples.own_loop --data-dir data --epochs 4 --target-sparsity 0.95 --fabric

The pruner needs two calls around each optimizer step (``before_optimizer_step`` after backward,
``after_optimizer_step`` after the step) and a position in the unit of its schedule (epochs here,
fractional within an epoch). :meth:`~lightning_auxprune.AuxPruner.metrics` is the only call that
reads the device; call it when you log.
"""

from __future__ import annotations

import argparse
from typing import Any

import lightning as L
import torch
from torch import nn

from examples.data.fashion_mnist import FashionMNISTDataModule
from examples.models.lenet import LeNet300100
from lightning_auxprune import AuxPruner, bake


def evaluate(model: nn.Module, loader: Any, device: torch.device) -> float:
    """Top-1 accuracy of ``model`` on ``loader``."""
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            logits = model(x.to(device))
            correct += int((logits.argmax(dim=1) == y.to(device)).sum())
            total += len(y)
    model.train()
    return correct / max(total, 1)


def train(
    data: FashionMNISTDataModule, epochs: int, target_sparsity: float, lr: float = 0.05, fabric: L.Fabric | None = None
) -> dict[str, Any]:
    """Prune LeNet-300-100 to ``target_sparsity`` in ``epochs`` epochs; return accuracy and sparsity."""
    torch.manual_seed(0)
    net = LeNet300100()
    model: nn.Module = net  # Fabric wraps it; the pruner and bake work on the module itself
    pruner = AuxPruner(
        target_sparsity=target_sparsity,
        aux_optimizer="sgd",
        aux_lr=1.0,
        strength=1e-3,
        target_min_strength=1e-5,
        warmup=1.0,
        freeze=max(2.0, 0.75 * epochs),
    )
    pruner.attach(net)  # before the optimizer: the masks are parameters too
    optimizer = torch.optim.SGD(pruner.parameter_groups(net), lr=lr, momentum=0.9)
    data.setup("fit")
    train_loader, val_loader = data.train_dataloader(), data.val_dataloader()
    device = torch.device("cpu")
    if fabric is not None:
        model, optimizer = fabric.setup(model, optimizer)
        train_loader, val_loader = fabric.setup_dataloaders(train_loader, val_loader)
        device = fabric.device
    batches = len(train_loader)
    history = []
    for epoch in range(epochs):
        for index, (x, y) in enumerate(train_loader):
            loss = nn.functional.cross_entropy(model(x.to(device)), y.to(device))
            if fabric is not None:
                fabric.backward(loss)
            else:
                loss.backward()  # type: ignore[no-untyped-call]
            position = epoch + index / batches
            pruner.before_optimizer_step(position)
            optimizer.step()
            pruner.after_optimizer_step()
            optimizer.zero_grad()
        metrics = pruner.metrics(epoch + 1.0)
        history.append(metrics)
        print(
            f"epoch {epoch}: val acc {evaluate(model, val_loader, device):.4f}, "
            f"sparsity {metrics['auxprune/sparsity']:.4f}, lambda {metrics['auxprune/lambda']:.3g}"
        )
    plain = bake(net)
    return {
        "val_accuracy": evaluate(plain, val_loader, device),
        "sparsity": history[-1]["auxprune/sparsity"],
        "history": history,
        "model": plain,
        "table": pruner.table(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--target-sparsity", type=float, default=0.95)
    parser.add_argument("--train-subset", type=int, default=None)
    parser.add_argument("--val-size", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05, help="SGD (momentum 0.9) learning rate of the weights")
    parser.add_argument("--fabric", action="store_true", help="run the loop with Lightning Fabric")
    parser.add_argument("--accelerator", default="cpu", help="Fabric's accelerator (with --fabric)")
    args = parser.parse_args(argv)
    data = FashionMNISTDataModule(
        args.data_dir, batch_size=args.batch_size, val_size=args.val_size, train_subset=args.train_subset
    )
    fabric = L.Fabric(accelerator=args.accelerator, devices=1) if args.fabric else None
    result = train(data, args.epochs, args.target_sparsity, args.lr, fabric)
    print(result["table"])
    return result


if __name__ == "__main__":
    main()
