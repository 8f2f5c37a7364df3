"""What pruning costs per training step: step time of each method relative to dense training.

For every model, the methods run in turn (dense; AuxMaskPruning with weight masks, neuron masks,
and weight masks stepped by its own SGD; gradual magnitude pruning; Lightning's ModelPruning),
``--rounds`` times, in one process: slow drifts of a noisy machine hit every method alike. Each run
trains ``--steps`` optimizer steps on synthetic 1x28x28 batches (SGD with momentum, the masks in
their pruning phase from the first step, statistics computed every 50 steps as a logger would
read them); its step time is the median over the second half of the steps (batch start to batch
end, all callbacks included; ModelPruning's masks are in place from the second epoch on). The
figure of a method is the median over rounds, and ``ratio`` is that over dense's.

    python -m benchmarks.overhead                         # CPU, one thread: overhead.json, docs/overhead.md
    python -m benchmarks.overhead --accelerator gpu --precision bf16-mixed --threads 0
    python -m benchmarks.overhead --quick

Rows of other accelerators/precisions already in ``--out`` are kept, so runs on different
machines add up in one file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.commands import add_accelerator, add_outputs, command_line, device_of, write_output
from benchmarks.harness import StepTimer
from benchmarks.peers import GradualMagnitudePruning, lightning_model_pruning
from benchmarks.timing import machine, synchronize
from examples.classifier import ImageClassifier
from examples.models import build_model
from lightning_auxprune import AuxMaskPruning, AuxPruner

MODELS = ["lenet300100", "lenet5", "resnet20", "vit"]
METHODS = ["dense", "auxprune_weight", "auxprune_neuron", "auxprune_sgd", "gmp", "modelpruning"]
LABELS = {
    "dense": "dense",
    "auxprune_weight": "AuxMaskPruning, weight",
    "auxprune_neuron": "AuxMaskPruning, neuron",
    "auxprune_sgd": 'AuxMaskPruning, weight, aux_optimizer="sgd"',
    "gmp": "GMP",
    "modelpruning": "ModelPruning (L1, 50%)",
}
TARGETS = {"lenet300100": 1.3, "lenet5": 1.1, "vit": 1.2}  # CPU, one thread, weight masks (issue targets)


def callbacks_for(method: str, model: ImageClassifier, steps: int) -> list[Callback]:
    """The pruning callback of ``method``, active for the whole (short) run."""
    common: dict[str, Any] = {"strength": 1e-4, "aux_lr": 1e-2, "print_table": False, "log_every_n_steps": 50}
    if method == "dense":
        return []
    if method == "auxprune_weight":
        return [AuxMaskPruning(**common)]
    if method == "auxprune_neuron":
        return [AuxMaskPruning(**common, granularity="neuron")]
    if method == "auxprune_sgd":
        return [AuxMaskPruning(**{**common, "aux_lr": 1.0, "strength": 1e-3}, aux_optimizer="sgd")]
    if method == "gmp":
        return [GradualMagnitudePruning(0.9, start=0, end=steps, every=50)]
    if method == "modelpruning":
        return [lightning_model_pruning(model, 0.5, start_epoch=0, end_epoch=2)]
    raise ValueError(f"unknown method {method!r}")


def one_run(model_name: str, method: str, args: argparse.Namespace) -> float:
    """Median step time (ms) of one method on one model."""
    L.seed_everything(0)
    model = ImageClassifier(arch=model_name, optimizer="sgd", lr=0.01)
    timer = StepTimer()
    per_epoch = max(1, args.steps // 2)  # two epochs: ModelPruning prunes at the end of the first
    g = torch.Generator().manual_seed(0)
    images = torch.randn(per_epoch * args.batch_size, 1, 28, 28, generator=g)
    labels = torch.randint(0, 10, (len(images),), generator=g)
    loader = DataLoader(TensorDataset(images, labels), batch_size=args.batch_size)
    trainer = L.Trainer(
        accelerator=args.accelerator,
        devices=1,
        precision=args.precision,
        max_epochs=2,
        callbacks=[*callbacks_for(method, model, args.steps), timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        log_every_n_steps=50,
    )
    trainer.fit(model, loader)
    return timer.median_ms(skip=len(timer.times) // 2)


PHASES = ["forward", "backward", "before_optimizer_step", "optimizer.step", "after_optimizer_step", "zero_grad"]


def _mark(device: torch.device) -> float:
    synchronize(device)
    return time.perf_counter()


def breakdown(model_name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Where a step's time goes: a plain loop, dense and with AuxPruner (weight masks), phase by phase.

    The two models train in turn, one step each, so that drifts hit both; medians over the second
    half of ``--steps`` steps (at least 40).
    """
    device = device_of(args.accelerator)
    x = torch.randn(args.batch_size, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (args.batch_size,), device=device)
    loops = {}
    for pruned in (False, True):
        torch.manual_seed(0)
        net = build_model(model_name).to(device)
        pruner = AuxPruner(strength=1e-4, aux_lr=1e-2) if pruned else None
        if pruner is not None:
            pruner.attach(net)
        params = pruner.parameter_groups(net) if pruner is not None else net.parameters()
        loops["auxprune_weight" if pruned else "dense"] = (net, pruner, torch.optim.SGD(params, lr=0.01, momentum=0.9))
    times: dict[str, dict[str, list[float]]] = {name: {p: [] for p in PHASES} for name in loops}
    steps = max(40, args.steps)
    for step in range(steps):
        for name, (net, pruner, optimizer) in loops.items():
            marks = [time.perf_counter()]
            loss = nn.functional.cross_entropy(net(x), y)
            marks.append(_mark(device))
            loss.backward()  # type: ignore[no-untyped-call]
            marks.append(_mark(device))
            if pruner is not None:
                pruner.before_optimizer_step(float(step))
            marks.append(_mark(device))
            optimizer.step()
            marks.append(_mark(device))
            if pruner is not None:
                pruner.after_optimizer_step()
            marks.append(_mark(device))
            optimizer.zero_grad()
            marks.append(_mark(device))
            if step >= steps // 2:
                for phase, start, end in zip(PHASES, marks[:-1], marks[1:], strict=True):
                    times[name][phase].append((end - start) * 1000.0)
    return {name: {p: statistics.median(v) for p, v in phases.items()} for name, phases in times.items()}


def load_rows(path: Path) -> list[dict[str, Any]]:
    """Rows already measured (other accelerators or precisions), or none."""
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = json.loads(path.read_text()).get("rows", [])
    return rows


def markdown(rows: list[dict[str, Any]], command: str) -> str:
    """The docs page: one table per accelerator and precision."""
    lines = [
        "# Per-step overhead (generated)",
        "",
        f"Generated by `{command}` (rows of other accelerators/precisions from earlier runs of the same script). "
        "Median step time in ms and, in parentheses, relative to dense training of the same model in the same "
        "process; batch start to batch end, all callbacks included. [Benchmarks](benchmarks.md#per-step-overhead) "
        "says what the numbers mean and what was tried; [Your own loop](engine.md) how a step is built.",
        "",
    ]
    settings = sorted({(r["accelerator"], r["precision"], r["threads"], r["batch_size"]) for r in rows})
    for accelerator, precision, threads, batch_size in settings:
        chosen = [
            r
            for r in rows
            if (r["accelerator"], r["precision"], r["threads"], r["batch_size"])
            == (accelerator, precision, threads, batch_size)
        ]
        methods = [m for m in METHODS if any(r["method"] == m for r in chosen)]
        lines += [
            f"## {accelerator}, {precision}, batch {batch_size}, {threads or 'all'} thread(s)",
            "",
            "| model | " + " | ".join(LABELS[m] for m in methods) + " |",
            "|---" * (len(methods) + 1) + "|",
        ]
        for model_name in [m for m in MODELS if any(r["model"] == m for r in chosen)]:
            cells = []
            for method in methods:
                row = next((r for r in chosen if r["model"] == model_name and r["method"] == method), None)
                cells.append("" if row is None else f"{row['median_ms']:.2f} ({row['ratio']:.2f}x)")
            lines.append(f"| {model_name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Bar chart of the ratios to dense, one group per model, for the CPU one-thread rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = sorted({(r["accelerator"], r["precision"]) for r in rows})
    fig, axes = plt.subplots(1, len(settings), figsize=(6 * len(settings), 3.8), squeeze=False)
    for ax, (accelerator, precision) in zip(axes[0], settings, strict=True):
        chosen = [r for r in rows if (r["accelerator"], r["precision"]) == (accelerator, precision)]
        models = [m for m in MODELS if any(r["model"] == m for r in chosen)]
        methods = [m for m in METHODS[1:] if any(r["method"] == m for r in chosen)]
        width = 0.8 / max(len(methods), 1)
        for index, method in enumerate(methods):
            ratios = [
                next((r["ratio"] for r in chosen if r["model"] == m and r["method"] == method), float("nan"))
                for m in models
            ]
            ax.bar([i + index * width for i in range(len(models))], ratios, width, label=LABELS[method])
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(models))], models)
        ax.set_ylabel("step time / dense")
        ax.set_title(f"{accelerator}, {precision}")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def breakdown_markdown(parts: dict[str, dict[str, dict[str, float]]], setting: str) -> str:
    """The breakdown table: ms per phase, dense and with weight masks."""
    lines = [
        f"## Where the time goes ({setting})",
        "",
        "A plain PyTorch loop (`AuxPruner`, weight masks, SGD with momentum), dense and pruned steps interleaved; "
        "median ms per phase.",
        "",
        "| model | | " + " | ".join(PHASES) + " | step |",
        "|---|---|" + "---|" * (len(PHASES) + 1),
    ]
    for model_name, runs in parts.items():
        for name, phases in runs.items():
            cells = " | ".join(f"{phases[p]:.3f}" for p in PHASES)
            lines.append(f"| {model_name} | {LABELS[name]} | {cells} | {sum(phases.values()):.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Measure, merge into ``--out``, write the docs page and the plot; return this run's rows."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    add_accelerator(parser)
    parser.add_argument("--precision", default="32-true", help="Lightning precision, e.g. bf16-mixed")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (0: leave torch's default)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=80, help="optimizer steps per run (two epochs)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 8 steps, 1 round, batch 16")
    add_outputs(parser, "benchmarks/results/overhead.json", "docs/overhead.md")
    parser.add_argument("--plot", default="docs/img/overhead.png")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.rounds, args.batch_size = 8, 1, 16
    if "dense" not in args.methods:
        args.methods = ["dense", *args.methods]
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    times: dict[tuple[str, str], list[float]] = {}
    for round_index in range(args.rounds):
        for model_name in args.models:
            for method in args.methods:
                ms = one_run(model_name, method, args)
                times.setdefault((model_name, method), []).append(ms)
                print(f"round {round_index} {model_name:12s} {method:16s} {ms:8.2f} ms", flush=True)
    parts = {model_name: breakdown(model_name, args) for model_name in args.models}
    rows = []
    for model_name in args.models:
        dense = statistics.median(times[(model_name, "dense")])
        for method in args.methods:
            median = statistics.median(times[(model_name, method)])
            rows.append(
                {
                    "model": model_name,
                    "method": method,
                    "accelerator": args.accelerator,
                    "precision": args.precision,
                    "threads": threads if args.accelerator == "cpu" else 0,
                    "batch_size": args.batch_size,
                    "steps": args.steps,
                    "rounds": args.rounds,
                    "median_ms": median,
                    "ratio": median / dense,
                }
            )
    out = Path(args.out)
    key = ("model", "method", "accelerator", "precision", "threads", "batch_size")
    mine = {tuple(r[k] for k in key) for r in rows}
    kept = [r for r in load_rows(out) if tuple(r[k] for k in key) not in mine]
    merged = kept + rows
    out.parent.mkdir(parents=True, exist_ok=True)
    setting = f"{args.accelerator}, {args.precision}, batch {args.batch_size}, {threads} thread(s)"
    saved: dict[str, Any] = {"machine": machine(), "rows": merged, "breakdown": {setting: parts}}
    if out.exists():
        saved["breakdown"] = {**json.loads(out.read_text()).get("breakdown", {}), setting: parts}
    out.write_text(json.dumps(saved, indent=2) + "\n")
    page = markdown(merged, command_line("benchmarks.overhead", argv))
    for name, table in saved["breakdown"].items():
        page += "\n" + breakdown_markdown(table, name)
    write_output(args.markdown, page)
    plot(merged, Path(args.plot))
    print(page)
    return rows


if __name__ == "__main__":
    main()
