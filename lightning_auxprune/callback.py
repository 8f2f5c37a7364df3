"""``AuxMaskPruning``: AutoPrune as a Lightning callback (the only module that imports Lightning).

Where things happen, and why:

* ``setup``: the layers get their auxiliary masks (``torch.nn.utils.parametrize``) before the
  strategy wraps the model (DDP) and before a checkpoint's model state is restored strictly;
* ``on_fit_start``: the masks leave the user's parameter groups for one named ``"auxprune"``
  group per optimizer, before a checkpoint's optimizer state is restored;
* ``on_before_optimizer_step`` (after backward, gradient accumulation and AMP unscaling): the
  regularizer's gradient is added to M, or M's gradient is dropped outside the pruning phase;
* ``on_train_batch_end``: pruned weights are put back to their pre-step values (undoing weight
  decay and momentum), prune/recovery events are counted, statistics are logged.

Example:
    >>> from lightning.pytorch import Trainer
    >>> pruning = AuxMaskPruning(strength=1e-4, aux_lr=1e-2, warmup=1, freeze=8)
    >>> trainer = Trainer(max_epochs=10, callbacks=[pruning])  # doctest: +SKIP

"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, cast

import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.core.optimizer import _MockOptimizer
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import nn
from typing_extensions import override

from lightning_auxprune.aux_group import AuxLrMode, align_schedulers, attach_aux_group, aux_lr, set_aux_lr
from lightning_auxprune.aux_sgd import AuxOptimizer, aux_sgd_step
from lightning_auxprune.bake import bake
from lightning_auxprune.controller import TargetController
from lightning_auxprune.events import MaskEvents
from lightning_auxprune.flops import LayerFlops
from lightning_auxprune.options import (
    Granularity,
    MaskInit,
    MaskOptions,
    MaskRule,
    RegularizerName,
    SteName,
    WeightGrad,
    check_choice,
)
from lightning_auxprune.parametrization import AuxMask
from lightning_auxprune.patch import patch_model
from lightning_auxprune.regularizer import add_regularizer_grad, regularizer_value
from lightning_auxprune.report import layer_table
from lightning_auxprune.schedule import Phase, PruningSchedule, Unit
from lightning_auxprune.shrink import OnUnsafe, ShrinkResult, shrink
from lightning_auxprune.statistics import layer_stats, open_counts, summarize
from lightning_auxprune.targets import select_layers

PHASE_CODE: dict[Phase, int] = {"warmup": 0, "pruning": 1, "frozen": 2}
CONTROLLER_DEFAULTS: dict[str, float] = {
    "target_gain": TargetController.gain,
    "target_p_gain": TargetController.p_gain,
    "target_min_strength": TargetController.min_strength,
}


class AuxMaskPruning(Callback):
    r"""Learn recoverable pruning masks while the model trains (AutoPrune, NeurIPS 2019).

    Every selected layer's weight W gets a trainable auxiliary tensor M; the forward pass uses
    ``W * h(M)`` with the hard step ``h(m) = 1[m > 0]``. M is trained with a straight-through
    estimator, the correlation-consistent sign rule, and the regularizer ``strength * R(h(M))``.

    Args:
        strength: lambda, the regularizer strength (>= 0); with a target, lambda's initial value.
        regularizer: ``"count"`` (R = number of open masks) or ``"l1"`` (R = sum |M|).
        granularity: ``"weight"`` or ``"neuron"`` (one mask per output unit / filter).
        ste: ``"identity"``, ``"relu"``, ``"leaky_relu"`` or ``"softplus"``.
        alpha: ``leaky_relu`` slope for closed masks, in [0, 1).
        beta: ``softplus`` sharpness, > 0.
        rule: M's gradient rule, ``"sign"`` or ``"chain"``.
        weight_grad: ``"masked"`` (pruned weights frozen) or ``"unmasked"`` (pruned weights train).
        init: ``"constant"`` or ``"magnitude"``.
        init_scale: Scale of M's initial value (> 0).
        aux_lr: Learning rate of the ``"auxprune"`` parameter group.
        aux_optimizer: What steps M: ``"shared"`` (the user's optimizer, through the
            ``"auxprune"`` group), ``"sgd"`` (plain SGD at the aux lr, applied by this callback,
            see :mod:`lightning_auxprune.aux_sgd`; the group stays, without gradients) or
            ``"normalized_sgd"`` (the same with each layer's M gradient divided by its RMS).
        aux_lr_mode: ``"fixed"`` (the aux lr never changes; LR schedulers do not touch it) or
            ``"follow"`` (scaled by the factor the scheduler applies to parameter group 0).
        include: Regexes (full match on module names); only matching layers are pruned.
        exclude: Regexes (full match) of layers to leave dense.
        layer_types: Layer type names to prune; default ``["Linear", "Conv1d", "Conv2d", "Conv3d"]``.
        unit: Unit of ``warmup``, ``ramp`` and ``freeze``: ``"epoch"`` or ``"step"``.
        warmup: Dense warm-up length before masks start to move.
        ramp: Length of the linear lambda ramp after warm-up (0: constant lambda); with a
            target, the length of the target's cubic ramp (0: it ramps until ``freeze``).
        freeze: When masks freeze for a final W-only fine-tune (``None``: never).
        restore_pruned_weights: With ``weight_grad="masked"``, put pruned weights back to their
            pre-step values after each optimizer step, so weight decay and momentum cannot move
            them and a recovered weight returns with its old value.
        target_sparsity: Fraction of the masked weights to prune. lambda is then controlled
            (:class:`~lightning_auxprune.controller.TargetController`) so that the pruned fraction
            follows a cubic ramp from 0 at ``warmup`` to this value.
        target_flops: Fraction of the model's dense FLOPs to keep (e.g. ``0.25``); controlled the
            same way. At most one of ``target_sparsity`` and ``target_flops``.
        target_gain: The controller's integral gain (log-lambda change per step per unit of
            error; the error is the log-ratio of kept to wanted fractions).
        target_p_gain: The controller's proportional gain (log-lambda offset per unit of error).
        target_min_strength: The lowest lambda the controller goes to, in (0, ``strength``]. When
            the masks run ahead of the target lambda falls; the lower it falls, the longer it
            takes to climb back once the target catches up (see docs/configuration.md).
        log_every_n_steps: Log every N optimizer steps (default: the Trainer's
            ``log_every_n_steps``); statistics are also logged at every epoch end.
        print_table: Print the per-layer table at the end of ``fit``.

    Example:
        >>> cb = AuxMaskPruning(granularity="neuron", exclude=["classifier\\\\.2"])
        >>> cb.options.granularity
        'neuron'

    """

    def __init__(
        self,
        strength: float = 1e-4,
        regularizer: RegularizerName = "count",
        granularity: Granularity = "weight",
        ste: SteName = "leaky_relu",
        alpha: float = 0.1,
        beta: float = 5.0,
        rule: MaskRule = "sign",
        weight_grad: WeightGrad = "masked",
        init: MaskInit = "constant",
        init_scale: float = 1.0,
        aux_lr: float = 1e-2,
        aux_lr_mode: AuxLrMode = "fixed",
        aux_optimizer: AuxOptimizer = "shared",
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        layer_types: Sequence[str] | None = None,
        unit: Unit = "epoch",
        warmup: float = 0.0,
        ramp: float = 0.0,
        freeze: float | None = None,
        restore_pruned_weights: bool = True,
        target_sparsity: float | None = None,
        target_flops: float | None = None,
        target_gain: float = CONTROLLER_DEFAULTS["target_gain"],
        target_p_gain: float = CONTROLLER_DEFAULTS["target_p_gain"],
        target_min_strength: float = CONTROLLER_DEFAULTS["target_min_strength"],
        log_every_n_steps: int | None = None,
        print_table: bool = True,
    ) -> None:
        super().__init__()
        self.options = MaskOptions(
            granularity=granularity,
            ste=ste,
            alpha=alpha,
            beta=beta,
            rule=rule,
            weight_grad=weight_grad,
            init=init,
            init_scale=init_scale,
        )
        self.schedule = PruningSchedule(strength=strength, unit=unit, warmup=warmup, ramp=ramp, freeze=freeze)
        check_choice("regularizer", regularizer, RegularizerName)
        check_choice("aux_lr_mode", aux_lr_mode, AuxLrMode)
        check_choice("aux_optimizer", aux_optimizer, AuxOptimizer)
        if aux_lr <= 0:
            raise ValueError(f"aux_lr={aux_lr} must be > 0; use freeze=... to stop the masks from moving.")
        if log_every_n_steps is not None and log_every_n_steps < 1:
            raise ValueError(f"log_every_n_steps={log_every_n_steps} must be >= 1 (or None for the Trainer's).")
        for name, patterns in (("include", include), ("exclude", exclude)):
            if isinstance(patterns, str):
                raise TypeError(f"{name} must be a list of regexes, not the string {patterns!r}: use [{patterns!r}].")
        self.controller = self._make_controller(
            target_sparsity, target_flops, target_gain, target_p_gain, target_min_strength
        )
        self.target_metric = "flops" if target_flops is not None else "sparsity"
        self.regularizer: RegularizerName = regularizer
        self.aux_lr = aux_lr
        self.aux_lr_mode: AuxLrMode = aux_lr_mode
        self.aux_optimizer: AuxOptimizer = aux_optimizer
        self.include = list(include) if include is not None else None
        self.exclude = list(exclude) if exclude is not None else None
        self.layer_types = list(layer_types) if layer_types is not None else None
        self.restore_pruned_weights = restore_pruned_weights
        self.log_every_n_steps = log_every_n_steps
        self.print_table = print_table

        self.masks: dict[str, AuxMask] = {}
        self._layers: dict[str, nn.Module] = {}
        self.events = MaskEvents()
        self.flops = LayerFlops()
        self.last_table = ""
        self._aux_param_names: list[str] = []
        self._loaded_aux_param_names: list[str] | None = None
        self._last_logged_step = -1
        self._batch_idx = 0
        self._snapshot: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    @classmethod
    def paper(cls, strength: float = 1e-4, aux_lr: float = 1e-2, **overrides: Any) -> AuxMaskPruning:
        """The method as the paper describes it, nothing added.

        Constant lambda, ``R = sum h(M)``, leaky-ReLU STE, correlation-consistent sign rule for M,
        masked W gradient, constant M init, M trained by your optimizer, no warm-up, no freeze,
        no target.

        The choices are spelled out here, so they stay the paper's even if the defaults change.
        ``overrides`` are any other constructor arguments (layer selection, logging, ...).

        Example:
            >>> cb = AuxMaskPruning.paper(strength=3e-4, exclude=["fc2"])
            >>> cb.options.rule, cb.controller is None, cb.schedule.freeze
            ('sign', True, None)

        """
        paper: dict[str, Any] = {
            "regularizer": "count",
            "ste": "leaky_relu",
            "rule": "sign",
            "weight_grad": "masked",
            "init": "constant",
            "aux_optimizer": "shared",
            "warmup": 0.0,
            "ramp": 0.0,
            "freeze": None,
        }
        clash = sorted(set(paper) & set(overrides))
        if clash:
            raise ValueError(f"{clash} are fixed by the paper preset; use AuxMaskPruning(...) to change them.")
        return cls(strength=strength, aux_lr=aux_lr, **paper, **overrides)

    @classmethod
    def recipe(cls, target_sparsity: float | None, max_epochs: int, **overrides: Any) -> AuxMaskPruning:
        """The benchmarked recipe: prune to ``target_sparsity`` within a ``max_epochs`` budget.

        For a FLOPs budget pass ``None`` and ``target_flops=...`` (with ``granularity="neuron"``
        this is ``autoprune_neuron_target`` of the benchmarks).

        One dense warm-up epoch; lambda (from 1e-4) is steered so that the pruned fraction
        follows a cubic ramp that reaches the target 2 epochs before the masks freeze at 3/4 of
        the budget; ``aux_lr=5e-3``; the rest as :meth:`paper`. This is ``autoprune_target`` of
        ``benchmarks/compare.py``; docs/benchmarks.md has what it measured, including where it
        loses to gradual magnitude pruning. ``overrides`` replace any of these arguments;
        ``aux_optimizer="sgd", aux_lr=1.0, strength=1e-3, target_min_strength=1e-5``
        (``autoprune_target_sgd_floor``) measured better than GMP at weight granularity.

        Example:
            >>> cb = AuxMaskPruning.recipe(0.99, max_epochs=16)
            >>> cb.schedule.warmup, cb.schedule.ramp, cb.schedule.freeze, cb.controller.final
            (1.0, 9, 12, 0.99)

        """
        if max_epochs < 2:
            raise ValueError(f"max_epochs={max_epochs}: the recipe needs at least 2 epochs (1 of them dense).")
        freeze = max(2, round(0.75 * max_epochs))
        settings: dict[str, Any] = {
            "strength": 1e-4,
            "aux_lr": 5e-3,
            "target_sparsity": target_sparsity,
            "warmup": 1.0,
            "ramp": max(1, freeze - 3),
            "freeze": freeze,
        }
        return cls(**{**settings, **overrides})

    def _make_controller(
        self,
        target_sparsity: float | None,
        target_flops: float | None,
        gain: float,
        p_gain: float,
        min_strength: float,
    ) -> TargetController | None:
        if target_sparsity is not None and target_flops is not None:
            raise ValueError("Give target_sparsity or target_flops, not both.")
        if target_sparsity is None and target_flops is None:
            given = {"target_gain": gain, "target_p_gain": p_gain, "target_min_strength": min_strength}
            changed = sorted(k for k, v in given.items() if v != CONTROLLER_DEFAULTS[k])
            if changed:
                raise ValueError(f"{changed} tune the lambda controller: set target_sparsity or target_flops too.")
            return None
        if target_sparsity is not None and not 0.0 < target_sparsity < 1.0:
            raise ValueError(
                f"target_sparsity={target_sparsity} is the fraction of weights to prune: use a value in (0, 1)."
            )
        if target_flops is not None and not 0.0 < target_flops < 1.0:
            raise ValueError(f"target_flops={target_flops} is the fraction of FLOPs to keep: use a value in (0, 1).")
        final = target_sparsity if target_sparsity is not None else 1.0 - cast(float, target_flops)
        start = self.schedule.warmup
        end = start + self.schedule.ramp if self.schedule.ramp > 0 else self.schedule.freeze
        if end is None:
            raise ValueError("A target needs to know when to reach it: set ramp > 0 or freeze.")
        if self.schedule.strength <= 0:
            raise ValueError("With a target, strength is lambda's initial value and must be > 0 (e.g. 1e-4).")
        return TargetController(
            final=final,
            start=start,
            end=end,
            strength=self.schedule.strength,
            gain=gain,
            p_gain=p_gain,
            min_strength=min_strength,
        )

    # ------------------------------------------------------------------ set-up
    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit" and not pl_module.automatic_optimization:
            raise MisconfigurationException(
                "AuxMaskPruning needs automatic optimization: it adds the regularizer's gradient and "
                "restores pruned weights around Lightning's optimizer step. Set "
                "`self.automatic_optimization = True` in your LightningModule."
            )
        names = select_layers(pl_module, self.include, self.exclude, self.layer_types)
        self.masks = patch_model(pl_module, names, self.options)
        modules = dict(pl_module.named_modules())
        self._layers = {name: modules[name] for name in self.masks}
        param_names = {id(p): n for n, p in pl_module.named_parameters()}
        self._aux_param_names = [param_names[id(m.aux)] for m in self.masks.values()]

    def _check_unpatched_layers(self, pl_module: LightningModule) -> None:
        names = select_layers(pl_module, self.include, self.exclude, self.layer_types)
        missing = [n for n in names if n not in self.masks]
        if missing:
            raise MisconfigurationException(
                f"Layers {missing} appeared after AuxMaskPruning.setup (created in configure_model?) and "
                "would stay dense. Create them in __init__, or pass exclude=[...] to leave them dense."
            )

    @override
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._check_unpatched_layers(pl_module)
        optimizers = [o for o in trainer.optimizers if not isinstance(o, _MockOptimizer)]
        if not optimizers:
            raise MisconfigurationException(
                "AuxMaskPruning found no optimizer: configure_optimizers must return one, since the "
                "masks are trained in an extra parameter group of it."
            )
        if self._loaded_aux_param_names is not None and self._loaded_aux_param_names != self._aux_param_names:
            raise MisconfigurationException(
                "The checkpoint's aux parameter group does not match this model's masks: "
                f"{self._loaded_aux_param_names} vs {self._aux_param_names}. Resume with the same "
                "include/exclude/layer_types settings."
            )
        params = [m.aux for m in self.masks.values()]
        schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
        for optimizer in optimizers:
            attach_aux_group(optimizer, params, self.aux_lr)
            align_schedulers(schedulers, optimizer, self.aux_lr)
        self._apply_aux_lr(trainer)
        self.flops.attach(pl_module)
        if not self.events.previous:
            self.events.update(self.masks)

    # ------------------------------------------------------------- per batch
    def _position(self, trainer: Trainer) -> float:
        if self.schedule.unit == "step":
            return float(trainer.global_step)
        batches = trainer.num_training_batches
        fraction = self._batch_idx / batches if isinstance(batches, int) and batches > 0 else 0.0
        return trainer.current_epoch + fraction

    def _apply_aux_lr(self, trainer: Trainer) -> None:
        for optimizer in trainer.optimizers:
            set_aux_lr(optimizer, aux_lr(optimizer, self.aux_lr, self.aux_lr_mode))

    @override
    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        self._batch_idx = batch_idx
        self._apply_aux_lr(trainer)

    @override
    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        self._apply_aux_lr(trainer)
        position = self._position(trainer)
        if self.schedule.phase(position) == "pruning":
            add_regularizer_grad(self.masks.values(), self.regularizer, self._strength(trainer, position))
        else:
            for mask in self.masks.values():
                mask.aux.grad = None
        if self.restore_pruned_weights and self.options.weight_grad == "masked":
            self._take_snapshot()
        if self.aux_optimizer != "shared":
            aux_sgd_step(
                [m.aux for m in self.masks.values()],
                aux_lr(optimizer, self.aux_lr, self.aux_lr_mode),
                normalize=self.aux_optimizer == "normalized_sgd",
            )

    def _strength(self, trainer: Trainer, position: float) -> float:
        """The regularizer strength for this step: scheduled, or moved by the controller towards its target."""
        if self.controller is None:
            return self.schedule.lambda_at(position)
        return self.controller.update(position, self._removed_fraction(trainer))

    def _removed_fraction(self, trainer: Trainer) -> float:
        """The controlled quantity: pruned fraction of masked weights, or of the dense FLOPs."""
        counts = open_counts(self.masks)
        if self.target_metric == "sparsity":
            return 1.0 - sum(o for o, _ in counts.values()) / sum(t for _, t in counts.values())
        if not self.flops.ready:
            return 0.0
        module = trainer.lightning_module
        floor = self.flops.ratio(module, dict.fromkeys(counts, 0.0))
        if self.controller is not None and floor > 1.0 - self.controller.final:
            raise MisconfigurationException(
                f"target_flops={1.0 - self.controller.final:g} cannot be reached: the layers left dense hold "
                f"{floor:.1%} of the FLOPs. Prune more layers (include/exclude) or raise target_flops."
            )
        return 1.0 - self.flops.ratio(module, {name: o / t for name, (o, t) in counts.items()})

    def _take_snapshot(self) -> None:
        """Remember the values of pruned weights (and gated biases) before the optimizer step."""
        self._snapshot.clear()
        for name, mask in self.masks.items():
            stacks = cast(nn.ModuleDict, self._layers[name].parametrizations)
            for tensor_name in ("weight", "bias"):
                if tensor_name not in stacks:
                    continue
                original = cast(torch.Tensor, stacks[tensor_name].original)
                closed = mask.weight_gate(original) == 0
                self._snapshot.append((original, closed, original.detach().clone()))

    def _restore_snapshot(self) -> None:
        with torch.no_grad():
            for original, closed, before in self._snapshot:
                original.copy_(torch.where(closed, before, original))
        self._snapshot.clear()

    @override
    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._restore_snapshot()
        self._apply_aux_lr(trainer)
        self.events.update(self.masks)
        every = self.log_every_n_steps or int(getattr(trainer, "log_every_n_steps", 50) or 50)
        step = trainer.global_step
        if step != self._last_logged_step and step % every == 0 and step > 0:
            self._log(trainer)

    @override
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        metrics = self.metrics(trainer)
        if trainer.global_step != self._last_logged_step:
            self._log(trainer, metrics)
        for key in ("auxprune/sparsity", "auxprune/compression", "auxprune/flops_ratio"):
            if key in metrics:
                pl_module.log(key, metrics[key], logger=False)

    @override
    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.flops.detach()
        dense = self.flops.dense(pl_module) if self.flops.ready else None
        self.last_table = layer_table(layer_stats(self.masks), dense)
        if self.print_table:
            rank_zero_info("AuxMaskPruning per-layer result:\n" + self.last_table)
        self._check_target_reached(trainer)

    def _check_target_reached(self, trainer: Trainer) -> None:
        """Warn when the controlled quantity ended far (> 25% in kept fraction) from its target."""
        if self.controller is None or self.schedule.phase(self._position(trainer)) == "warmup":
            return
        kept, wanted = 1.0 - self._removed_fraction(trainer), 1.0 - self.controller.final
        if not 0.8 <= kept / wanted <= 1.25:
            what = "weights" if self.target_metric == "sparsity" else "FLOPs"
            rank_zero_warn(
                f"AuxMaskPruning kept {kept:.4g} of the {what} instead of the target {wanted:.4g} "
                f"(lambda ended at {self.controller.output:.3g}). Give the controller more steps "
                "(a longer ramp, a later freeze), or change target_gain: smaller if it overshot, larger if "
                "it lagged. Masks the data gradient alone closes cannot be reopened by lowering lambda."
            )

    # --------------------------------------------------------------- logging
    def metrics(self, trainer: Trainer) -> dict[str, float]:
        """The statistics logged now (events since the last log are *not* consumed)."""
        stats = layer_stats(self.masks)
        summary = summarize(stats)
        position = self._position(trainer)
        metrics: dict[str, float] = {
            "auxprune/sparsity": summary.sparsity,
            "auxprune/compression": summary.compression,
            "auxprune/lambda": self._logged_strength(position),
            "auxprune/phase": float(PHASE_CODE[self.schedule.phase(position)]),
            "auxprune/regularizer": regularizer_value(self.masks.values(), self.regularizer),
            "auxprune/pruned_total": float(self.events.pruned_total),
            "auxprune/recovered_total": float(self.events.recovered_total),
        }
        if self.controller is not None:
            metrics["auxprune/target"] = self.controller.target_at(position)
        for s in stats:
            metrics[f"auxprune/density/{s.name}"] = s.density
        if self.flops.ready:
            module = trainer.lightning_module
            metrics["auxprune/flops_ratio"] = self.flops.ratio(module, {s.name: s.density for s in stats})
        return metrics

    def _logged_strength(self, position: float) -> float:
        if self.controller is None or self.schedule.phase(position) != "pruning":
            return self.schedule.lambda_at(position)
        return self.controller.output

    def _log(self, trainer: Trainer, metrics: dict[str, float] | None = None) -> None:
        metrics = dict(metrics or self.metrics(trainer))
        pruned, recovered = self.events.take()
        metrics["auxprune/pruned"] = float(pruned)
        metrics["auxprune/recovered"] = float(recovered)
        self._last_logged_step = trainer.global_step
        step = trainer.fit_loop.epoch_loop._batches_that_stepped
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)

    # ----------------------------------------------------------------- state
    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "aux_param_names": list(self._aux_param_names),
            "events": self.events.state_dict(),
            "last_logged_step": self._last_logged_step,
            "options": asdict(self.options),
            "schedule": asdict(self.schedule),
            "regularizer": self.regularizer,
            "controller": self.controller.state_dict() if self.controller is not None else None,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._loaded_aux_param_names = list(state_dict["aux_param_names"])
        self.events.load_state_dict(state_dict["events"])
        self._last_logged_step = int(state_dict["last_logged_step"])
        if state_dict["options"] != asdict(self.options):
            raise MisconfigurationException(
                f"The checkpoint was trained with mask options {state_dict['options']}, this callback has "
                f"{asdict(self.options)}. Resume with the same options."
            )
        saved = state_dict.get("controller")
        if self.controller is not None and saved is not None:
            self.controller.load_state_dict(saved)
        elif (self.controller is None) != (saved is None):
            rank_zero_warn(
                "Resuming with a different target setting: the checkpoint was trained "
                f"{'with' if saved is not None else 'without'} a lambda controller, this callback "
                f"{'uses one' if self.controller is not None else 'does not'}."
            )
        if state_dict["schedule"] != asdict(self.schedule) or state_dict["regularizer"] != self.regularizer:
            rank_zero_warn(
                f"Resuming with a different pruning schedule: checkpoint {state_dict['schedule']} "
                f"({state_dict['regularizer']}), now {asdict(self.schedule)} ({self.regularizer})."
            )

    # ----------------------------------------------------------------- export
    def bake(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` with the masks multiplied in and the original ``state_dict`` keys.

        See :func:`lightning_auxprune.bake.bake`.
        """
        return bake(model)

    def shrink(self, model: nn.Module, example_inputs: Any, on_unsafe: OnUnsafe = "error") -> ShrinkResult:
        """A smaller dense copy of a neuron-pruned ``model`` without its closed units.

        See :func:`lightning_auxprune.shrink.shrink`.
        """
        return shrink(model, example_inputs, on_unsafe=on_unsafe)
