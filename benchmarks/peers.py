"""The peers AuxMaskPruning is compared with, as Lightning callbacks (benchmark code, not library).

* :func:`cubic_sparsity`: Zhu & Gupta's (2017) schedule ``s_t = s_f (1 - (1 - p)^3)``.
* :class:`GradualMagnitudePruning`: global magnitude pruning of all Linear/Conv weights at step
  granularity following the cubic schedule; pruned weights are held at zero after every step.
* :func:`lightning_model_pruning`: Lightning's built-in ``ModelPruning`` (global L1
  unstructured), its per-epoch ``amount`` chosen so that the total follows the cubic schedule,
  lottery-ticket reset off.
* :class:`TorchPruningChannels`: Torch-Pruning's magnitude channel pruning applied once at a set
  epoch, then ordinary fine-tuning (the structured peer of neuron-granularity AutoPrune).
"""

from __future__ import annotations

from typing import Any, cast

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelPruning
from torch import nn

from lightning_auxprune.layer_selection import WEIGHT_LAYERS, prunable_layers


def cubic_sparsity(progress: float, final: float) -> float:
    """Target sparsity at ``progress`` in [0, 1] of the pruning window.

    Example:
        >>> cubic_sparsity(0.0, 0.9), cubic_sparsity(1.0, 0.9)
        (0.0, 0.9)
    """
    p = min(max(progress, 0.0), 1.0)
    return final * (1.0 - (1.0 - p) ** 3)


def weight_layers(model: nn.Module) -> dict[str, nn.Module]:
    """All Linear/Conv layers of ``model``."""
    return prunable_layers(model, tuple(WEIGHT_LAYERS.values()))


def weight_of(layer: nn.Module) -> torch.Tensor:
    """A Linear/Conv layer's weight, typed."""
    return cast(torch.Tensor, layer.weight)


class GradualMagnitudePruning(Callback):
    """Global GMP with a cubic schedule between optimizer steps ``start`` and ``end``.

    Args:
        final_sparsity: Sparsity reached at ``end`` and kept afterwards.
        start: First pruning step.
        end: Step at which the final sparsity is reached.
        every: Re-prune every ``every`` steps.
    """

    def __init__(self, final_sparsity: float, start: int, end: int, every: int = 50) -> None:
        if not 0.0 <= final_sparsity < 1.0 or end <= start:
            raise ValueError("need 0 <= final_sparsity < 1 and end > start")
        self.final_sparsity, self.start, self.end, self.every = final_sparsity, start, end, every
        self.masks: dict[str, torch.Tensor] = {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.layers = weight_layers(pl_module)

    def _update_masks(self, sparsity: float) -> None:
        weights = [weight_of(layer).detach().abs().flatten() for layer in self.layers.values()]
        everything = torch.cat(weights)
        k = int(sparsity * everything.numel())
        if k == 0:
            return
        threshold = everything.kthvalue(k).values
        for name, layer in self.layers.items():
            self.masks[name] = weight_of(layer).detach().abs() > threshold

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if self.start <= step and (step - self.start) % self.every == 0 and step <= self.end + self.every:
            self._update_masks(cubic_sparsity((step - self.start) / (self.end - self.start), self.final_sparsity))
        with torch.no_grad():
            for name, mask in self.masks.items():
                weight_of(self.layers[name]).mul_(mask)


def lightning_model_pruning(model: nn.Module, final_sparsity: float, start_epoch: int, end_epoch: int) -> ModelPruning:
    """Lightning's ``ModelPruning`` following the cubic schedule at epoch granularity."""
    if end_epoch <= start_epoch:
        raise ValueError("end_epoch must be > start_epoch")

    def target(epoch: int) -> float:
        return cubic_sparsity((epoch + 1 - start_epoch) / (end_epoch - start_epoch), final_sparsity)

    def amount(epoch: int) -> float:
        if epoch < start_epoch or epoch >= end_epoch:
            return 0.0
        before = target(epoch - 1) if epoch > start_epoch else 0.0
        return 1.0 - (1.0 - target(epoch)) / (1.0 - before)  # fraction of the remaining weights

    # nn.MultiheadAttention reads out_proj.weight without calling out_proj, so torch.nn.utils.prune's
    # forward pre-hook never refreshes it (backward then fails): ModelPruning cannot prune those layers.
    inside_attention = {
        f"{name}.out_proj" for name, module in model.named_modules() if isinstance(module, nn.MultiheadAttention)
    }
    layers = [layer for name, layer in weight_layers(model).items() if name not in inside_attention]
    return ModelPruning(
        "l1_unstructured",
        parameters_to_prune=[(layer, "weight") for layer in layers],
        use_global_unstructured=True,
        amount=amount,
        apply_pruning=lambda epoch: start_epoch <= epoch < end_epoch,
        use_lottery_ticket_hypothesis=False,
        make_pruning_permanent=True,
        verbose=0,
    )


class TorchPruningChannels(Callback):
    """Remove ``ratio`` of the channels of the given layers by L1 magnitude at epoch ``at_epoch``.

    The optimizer is rebuilt after the physical removal (parameters change shape).
    """

    def __init__(self, include: list[str], ratio: float, at_epoch: int, example: torch.Tensor) -> None:
        self.include, self.ratio, self.at_epoch, self.example = include, ratio, at_epoch, example
        self.done = False

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.done or trainer.current_epoch != self.at_epoch:
            return
        import torch_pruning as tp

        from lightning_auxprune.layer_selection import select_layers

        chosen = set(select_layers(pl_module, include=self.include))
        ignored = [m for n, m in weight_layers(pl_module).items() if n not in chosen]
        pruner = tp.pruner.MagnitudePruner(
            pl_module,
            self.example,
            importance=tp.importance.MagnitudeImportance(p=1),
            pruning_ratio=self.ratio,
            ignored_layers=ignored,
        )
        pruner.step()
        trainer.strategy.setup_optimizers(trainer)
        self.done = True


TP_IMPORTANCES = ("l1", "l2", "group_norm", "taylor")
"""Torch-Pruning channel criteria: L1/L2 norm of each channel's own filter, the L2 norm over its
whole dependency group (Torch-Pruning's group-norm default), first-order Taylor over the group."""


def tp_importance(name: str) -> Any:
    """The Torch-Pruning importance called ``name`` (one of :data:`TP_IMPORTANCES`)."""
    import torch_pruning as tp

    if name in ("l1", "l2"):
        return tp.importance.MagnitudeImportance(p=1 if name == "l1" else 2, group_reduction="first", normalizer=None)
    if name == "group_norm":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if name == "taylor":
        return tp.importance.GroupTaylorImportance()
    raise ValueError(f"unknown importance {name!r}; one of {TP_IMPORTANCES}")


def attention_heads(model: nn.Module) -> dict[nn.Module, int]:
    """Each ``nn.MultiheadAttention`` of ``model`` with its head count, as Torch-Pruning's ``num_heads`` takes it.

    Without it Torch-Pruning cuts the attention's width to a size its heads do not divide.
    """
    return {m: m.num_heads for m in model.modules() if isinstance(m, nn.MultiheadAttention)}


class TorchPruningFlops(Callback):
    """Torch-Pruning channel pruning to FLOPs budgets at epoch starts, as its docs recommend.

    At the start of each epoch in ``schedule`` (epoch -> fraction of the dense FLOPs to keep),
    channels are removed in small steps of Torch-Pruning's pruner (per-layer ratios, its default)
    until the model's FLOPs are at or below that fraction; the optimizer is then rebuilt (the
    parameters changed shape). One epoch in the schedule is the one-shot variant, several the
    iterative one. Taylor importance takes its gradient from the last training batch seen. It
    stops after 200 steps of its pruner when the budget is out of its reach (it reports the FLOPs
    it reached): Torch-Pruning 1.6 removes no head of an ``nn.MultiheadAttention``, so on the
    small ViT only the MLPs' hidden units go, down to 53% of the FLOPs.

    Args:
        importance: One of :data:`TP_IMPORTANCES`.
        schedule: Epoch -> FLOPs fraction to reach at its start.
        example: An input of the LightningModule, for tracing and counting.
        keep: Names of layers never pruned (the classifier).
    """

    def __init__(self, importance: str, schedule: dict[int, float], example: torch.Tensor, keep: list[str]) -> None:
        self.importance, self.schedule, self.example, self.keep = importance, schedule, example, keep
        self.pruner: Any = None
        self.dense_flops = 0
        self._batch: Any = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, *args: Any
    ) -> None:
        self._batch = batch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch not in self.schedule:
            return
        import torch_pruning as tp

        from lightning_auxprune.flops import count_flops

        example = self.example.to(pl_module.device)
        if self.pruner is None:
            self.dense_flops = count_flops(pl_module, example)
            ignored = [pl_module.get_submodule(name) for name in self.keep]
            self.pruner = tp.pruner.BasePruner(
                pl_module,
                example,
                importance=tp_importance(self.importance),
                pruning_ratio=0.95,
                iterative_steps=200,
                ignored_layers=ignored,
                num_heads=attention_heads(pl_module),
            )
        target = self.schedule[trainer.current_epoch]
        was_training = pl_module.training
        while count_flops(pl_module, example) > target * self.dense_flops and self.pruner.current_step < 200:
            if self.importance == "taylor" and self._batch is not None:
                self._taylor_gradients(pl_module)
            self.pruner.step()
        pl_module.zero_grad(set_to_none=True)
        pl_module.train(was_training)
        trainer.strategy.setup_optimizers(trainer)

    def _taylor_gradients(self, pl_module: L.LightningModule) -> None:
        x, y = (t.to(pl_module.device) for t in self._batch)
        pl_module.zero_grad(set_to_none=True)
        with torch.enable_grad():
            loss: torch.Tensor = nn.functional.cross_entropy(pl_module(x), y)
            loss.backward()  # type: ignore[no-untyped-call]
