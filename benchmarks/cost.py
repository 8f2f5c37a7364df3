"""What AuxMaskPruning costs per training step and in memory, against dense and ModelPruning.

LeNet-5 on Fashion-MNIST, batch 128, Adam: ``--steps`` training steps per run for dense
training, AuxMaskPruning (pruning phase from step 0; constant lambda, and with a target sparsity,
whose controller reads the pruned fraction every step) and Lightning's ModelPruning (its pruning
hooks active from epoch 0), in ``--rounds`` alternating rounds; the median step time of each
(steps after the first 10) is compared. Memory is counted in tensor bytes: the auxiliary
parameters, their optimizer state, and the callback's mask snapshot.

    python -m benchmarks.cost          # benchmarks/results/cost.json, docs/cost.md
    python -m benchmarks.cost --quick
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch

from benchmarks.commands import command_line
from benchmarks.compare import StepTimer
from benchmarks.peers import lightning_model_pruning
from benchmarks.timing import machine, quiet_cpu_trainer
from examples.classifier import ImageClassifier
from examples.data.fashion_mnist import FashionMNISTDataModule
from lightning_auxprune import AuxMaskPruning
from lightning_auxprune.aux_group import find_aux_group


def tensor_bytes(tensors: Sequence[torch.Tensor]) -> int:
    """Sum of element bytes."""
    return sum(t.numel() * t.element_size() for t in tensors)


def one_run(method: str, data: FashionMNISTDataModule, steps: int) -> dict[str, Any]:
    """Train ``steps`` steps with one method; return step times and memory figures."""
    L.seed_everything(0)
    model = ImageClassifier(arch="lenet5", optimizer="adam", lr=1e-3)
    timer = StepTimer()
    callbacks: list[Any] = [timer]
    pruning = None
    if method == "auxprune":
        pruning = AuxMaskPruning(strength=3e-4, aux_lr=5e-3, print_table=False)
        callbacks.insert(0, pruning)
    elif method == "auxprune_target":
        pruning = AuxMaskPruning(target_sparsity=0.99, unit="step", ramp=steps, aux_lr=5e-3, print_table=False)
        callbacks.insert(0, pruning)
    elif method == "modelpruning":
        callbacks.insert(0, lightning_model_pruning(model, 0.9, start_epoch=0, end_epoch=2))
    trainer = quiet_cpu_trainer(callbacks, max_steps=steps, limit_val_batches=0)
    trainer.fit(model, data)
    result: dict[str, Any] = {"step_ms": timer.median_ms()}
    weights = [p for n, p in model.named_parameters() if not n.endswith(".aux")]
    result["weight_bytes"] = tensor_bytes(weights)
    if pruning is not None:
        group = find_aux_group(trainer.optimizers[0])
        assert group is not None
        aux = list(group["params"])
        state = [v for p in aux for v in trainer.optimizers[0].state[p].values() if isinstance(v, torch.Tensor)]
        result["aux_param_bytes"] = tensor_bytes(aux)
        result["aux_optimizer_bytes"] = tensor_bytes(state)
        result["event_snapshot_bytes"] = tensor_bytes(list(pruning.events.previous.values()))
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Alternate the three methods, report medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/cost.json")
    parser.add_argument("--markdown", default="docs/cost.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.rounds = 15, 1
    data = FashionMNISTDataModule(args.data_dir, batch_size=128, val_size=100 if args.quick else 5000)
    methods = ["dense", "auxprune", "auxprune_target", "modelpruning"]
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    for _ in range(args.rounds):
        for method in methods:
            runs[method].append(one_run(method, data, args.steps))
    step = {m: statistics.median(r["step_ms"] for r in runs[m]) for m in methods}
    aux = runs["auxprune"][0]
    results: dict[str, Any] = {
        "machine": machine(),
        "steps": args.steps,
        "rounds": args.rounds,
        "step_ms": step,
        "auxprune_vs_dense": step["auxprune"] / step["dense"],
        "auxprune_target_vs_dense": step["auxprune_target"] / step["dense"],
        "auxprune_vs_modelpruning": step["auxprune"] / step["modelpruning"],
        "modelpruning_vs_dense": step["modelpruning"] / step["dense"],
        "weight_bytes": aux["weight_bytes"],
        "extra_bytes": {k: aux[k] for k in ("aux_param_bytes", "aux_optimizer_bytes", "event_snapshot_bytes")},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    command = command_line("benchmarks.cost", argv)
    extra = results["extra_bytes"]
    table = "\n".join(
        [
            "# Cost of the callback (generated)",
            "",
            f"Generated by `{command}`: LeNet-5, batch 128, Adam, {args.steps} steps x {args.rounds} rounds, "
            "median step time (forward, backward, optimizer step and all callback hooks).",
            "",
            "| | dense | AuxMaskPruning | AuxMaskPruning, target_sparsity | ModelPruning |",
            "|---|---|---|---|---|",
            f"| step time (ms) | {step['dense']:.1f} | {step['auxprune']:.1f} | {step['auxprune_target']:.1f} "
            f"| {step['modelpruning']:.1f} |",
            f"| relative to dense | 1.00 | {results['auxprune_vs_dense']:.2f} "
            f"| {results['auxprune_target_vs_dense']:.2f} | {results['modelpruning_vs_dense']:.2f} |",
            "",
            f"Extra tensor memory of AuxMaskPruning (weights of the model: {results['weight_bytes']:,} bytes): "
            f"auxiliary parameters {extra['aux_param_bytes']:,} bytes, their Adam state "
            f"{extra['aux_optimizer_bytes']:,} bytes, mask snapshot for event counting "
            f"{extra['event_snapshot_bytes']:,} bytes; plus, during each optimizer step, "
            "a copy of the masked weights (restored where pruned afterwards).",
            "",
        ]
    )
    Path(args.markdown).write_text(table)
    print(table)
    return results


if __name__ == "__main__":
    main()
