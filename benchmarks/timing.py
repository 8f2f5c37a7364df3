"""Shared timing helpers: interleaved medians, so slow drifts of a noisy machine hit both sides."""

from __future__ import annotations

import io
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import nn


def quiet_trainer(callbacks: list[Any], accelerator: str = "cpu", **kwargs: Any) -> L.Trainer:
    """A single-device Trainer with no logger, checkpoints, progress bar or sanity check."""
    defaults: dict[str, Any] = {
        "accelerator": accelerator,
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    return L.Trainer(callbacks=callbacks, **{**defaults, **kwargs})


def synchronize(device: torch.device) -> None:
    """Wait for the accelerator (no-op on the CPU), so that wall time covers the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_medians(
    fns: list[Callable[[], Any]], repeats: int, warmup: int = 3, device: torch.device | None = None
) -> list[float]:
    """Median milliseconds of each callable, calling them in turn ``repeats`` times (``device``: synced)."""
    device = device or torch.device("cpu")
    with torch.inference_mode():
        for _ in range(warmup):
            for fn in fns:
                fn()
        samples: list[list[float]] = [[] for _ in fns]
        for _ in range(repeats):
            for index, fn in enumerate(fns):
                synchronize(device)
                start = time.perf_counter()
                fn()
                synchronize(device)
                samples[index].append((time.perf_counter() - start) * 1000.0)
    return [statistics.median(s) for s in samples]


def state_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "cpu_threads_available": torch.get_num_threads(),
    }
