"""``AuxMaskPruning``: AutoPrune as a Lightning callback (the only module that imports Lightning).

The method itself lives in [`AuxPruner`][lightning_auxprune.pruner.AuxPruner] (plain torch); this
callback turns the Trainer's state into the pruner's calls. Its hooks, in the order they run:

* ``setup``: ``pruner.attach`` gives the layers their masks (``torch.nn.utils.parametrize``)
  before the strategy wraps the model (DDP) and before a checkpoint's model state is restored;
* ``load_state_dict`` (on resume): the pruner's events and lambda, the settings compared;
* ``on_fit_start``: the masks leave the user's parameter groups for one named ``"auxprune"``
  group per optimizer (before a checkpoint's optimizer state is restored); LR schedulers learn
  about the group;
* ``on_train_batch_start`` and ``on_train_batch_end`` (LR schedulers step just before it): the
  aux lr is written into the group, fixed or following the scheduler, so the optimizer step and
  ``LearningRateMonitor`` see it;
* ``on_before_optimizer_step`` (after backward, gradient accumulation and AMP unscaling):
  ``pruner.before_optimizer_step`` adds the regularizer's gradient to M (or drops M's gradient
  outside the pruning phase) and, with ``aux_optimizer="sgd"``, steps M;
* ``on_train_batch_end``: ``pruner.after_optimizer_step`` restores pruned weights and counts
  events on the device; on logging steps the statistics go to every logger (one host sync);
* ``on_train_epoch_end``: statistics logged, sparsity/compression/FLOPs ratio in
  ``callback_metrics`` (for ``ModelCheckpoint``/``EarlyStopping``);
* ``on_fit_end``: the per-layer table, and a warning when a target was missed.

Examples:
    >>> from lightning.pytorch import Trainer
    >>> pruning = AuxMaskPruning(strength=1e-4, aux_lr=1e-2, warmup=1, freeze=8)
    >>> trainer = Trainer(max_epochs=10, callbacks=[pruning])  # doctest: +SKIP

"""

from __future__ import annotations

import csv
import inspect
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast

import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, ModelPruning
from lightning.pytorch.core.optimizer import _MockOptimizer
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.strategies import DeepSpeedStrategy, FSDPStrategy, ModelParallelStrategy
from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import nn
from typing_extensions import override

from lightning_auxprune.attention import masked_tensors
from lightning_auxprune.aux_group import AuxLrMode, align_schedulers, attach_aux_group, aux_lr, set_aux_lr
from lightning_auxprune.aux_sgd import AuxOptimizer
from lightning_auxprune.controller import TargetController, percent, target_miss
from lightning_auxprune.events import MaskEvents
from lightning_auxprune.export.bake import bake
from lightning_auxprune.export.shrink import save_shrunk, shrink
from lightning_auxprune.export.sparse_file import save_sparse
from lightning_auxprune.mask_images import mask_image, mask_values
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
from lightning_auxprune.patch import find_masks
from lightning_auxprune.presets import (
    PAPER_FIXED,
    RECIPE_FIXED,
    check_overrides,
    paper_settings,
    recipe_schedule,
    recipe_settings,
)
from lightning_auxprune.pruner import CONTROLLER_DEFAULTS, AuxPruner, UnreachableTargetError
from lightning_auxprune.schedule import PruningSchedule
from lightning_auxprune.wandb_dashboard import TENSORBOARD_LAYOUT

Interval = Literal["epoch", "step"]
PRUNER_ARGUMENTS = frozenset(inspect.signature(AuxPruner).parameters)
_STORED = re.compile(r"^(?P<layer>(?:.*\.)?)parametrizations\.(?P<tensor>(?:in_proj_)?(?:weight|bias))\.original$")


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
            see [`lightning_auxprune.aux_sgd`][lightning_auxprune.aux_sgd]; the group stays, without gradients) or
            ``"normalized_sgd"`` (the same with each layer's M gradient divided by its RMS).
        aux_lr_mode: ``"fixed"`` (the aux lr never changes; LR schedulers do not touch it) or
            ``"follow"`` (scaled by the factor the scheduler applies to parameter group 0).
        include: Regexes (full match on module names); only matching layers are pruned.
        exclude: Regexes (full match) of layers to leave dense.
        layer_types: Layer type names to prune; default ``["Linear", "Conv1d", "Conv2d", "Conv3d"]``.
        interval: What ``warmup``, ``ramp`` and ``freeze`` count: ``"epoch"`` (fractions
            allowed) or ``"step"`` (optimizer steps), as Lightning's scheduler ``interval``.
        warmup: Dense warm-up length before masks start to move.
        ramp: How long pruning takes to come in after warm-up: what the user sets (``strength``
            without a target, the target with one) rises from 0 to its full value over this
            long; lambda linearly, a target along its cubic curve. 0: lambda at full strength
            at once; a target ramps until ``freeze``.
        freeze: When masks freeze for a final W-only fine-tune (``None``: never).
        restore_pruned_weights: With ``weight_grad="masked"``, put pruned weights back to their
            pre-step values after each optimizer step, so weight decay and momentum cannot move
            them and a recovered weight returns with its old value.
        target_sparsity: Fraction of the masked weights to prune. lambda is then controlled
            ([`TargetController`][lightning_auxprune.controller.TargetController]) so that the pruned fraction
            follows a cubic ramp from 0 at ``warmup`` to this value.
        target_flops: Fraction of the model's dense FLOPs to keep (e.g. ``0.25``); controlled the
            same way. At most one of ``target_sparsity`` and ``target_flops``.
        target_gain: The controller's integral gain (log-lambda change per step per unit of
            error; the error is the log-ratio of kept to wanted fractions).
        target_p_gain: The controller's proportional gain (log-lambda offset per unit of error).
        target_min_strength: The lowest lambda the controller goes to, in (0, ``strength``]. When
            the masks run ahead of the target lambda falls; the lower it falls, the longer it
            takes to climb back once the target catches up (see docs/configuration.md).
        target_tolerance: How far past its target pruning may go at most: the kept fraction never
            falls below ``(1 - target_tolerance)`` times the target's, whatever the run length.
        ramp_tolerance: Bound pruning along the target's ramp too: the kept fraction never falls
            below ``(1 - ramp_tolerance)`` times the ramp's at the current step (``None``: only
            the final target bounds it).
        hysteresis: How far past zero a mask entry is moved when it closes or reopens, so it
            keeps its new state until it has moved that far back (0: none).
        cost_aware: With ``target_flops``, push each mask entry in proportion to the FLOPs its
            closing saves, so costly units close first (``False``: every entry alike).
        min_units: Neuron granularity: units of each layer kept open at least.
        min_unit_fraction: Neuron granularity: fraction of each layer's units kept open at least
            (with ``min_units``: ``max(min_units, ceil(fraction * units))``).
        min_uniform_share: Neuron granularity with a target: each layer keeps at least this
            fraction of the units that cutting every layer alike to the target at the current
            step would leave it (0: the masks share the budget between layers freely; 1: every
            layer is cut alike and the masks choose only which units).
        keep_output_layer: Neuron granularity: leave the model's last Linear/Conv layer (the
            classifier) dense.
        coupled: Neuron granularity: one mask per group of coupled layers (residual additions,
            depthwise convolutions with their producer), found by tracing the module's
            ``example_input_array`` with Torch-Pruning's dependency graph; ``False``: one mask
            per layer. Neuron masks need ``example_input_array`` either way.
        log_every_n_steps: Log every N optimizer steps (default: the Trainer's
            ``log_every_n_steps``); statistics are also logged at every epoch end.
        print_table: Print the per-layer table at the end of ``fit`` (it also goes to every
            logger: a W&B table, TensorBoard text, ``auxprune_layers.csv`` next to CSV logs).
        progress_bar: Show ``sparsity`` and ``lambda`` in Lightning's progress bar (updated
            when statistics are logged).
        mask_images_every_n_epochs: Every N epoch ends, send each layer's mask as an image and
            its m as a histogram to the W&B and TensorBoard loggers (0: never).
        layer_table_every_n_epochs: Also send the per-layer table to the loggers every N epoch
            ends (0: only at the end of ``fit``).
        log_model_artifact: With a ``WandbLogger``, log the pruned model at the end of ``fit`` as
            a W&B artifact: the baked ``state_dict``, plus the CSR export (weight masks) or the
            shrunk model (neuron masks, when the module has an ``example_input_array``), with the
            sparsity, compression, FLOPs ratio and logged accuracies as metadata.

    Examples:
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
        interval: Interval = "epoch",
        warmup: float = 0.0,
        ramp: float = 0.0,
        freeze: float | None = None,
        restore_pruned_weights: bool = True,
        target_sparsity: float | None = None,
        target_flops: float | None = None,
        target_gain: float = CONTROLLER_DEFAULTS["target_gain"],
        target_p_gain: float = CONTROLLER_DEFAULTS["target_p_gain"],
        target_min_strength: float = CONTROLLER_DEFAULTS["target_min_strength"],
        target_tolerance: float = 0.25,
        ramp_tolerance: float | None = None,
        hysteresis: float = 0.0,
        cost_aware: bool = True,
        min_units: int = 1,
        min_unit_fraction: float = 0.05,
        min_uniform_share: float = 0.0,
        keep_output_layer: bool = True,
        coupled: bool = True,
        log_every_n_steps: int | None = None,
        print_table: bool = True,
        progress_bar: bool = True,
        mask_images_every_n_epochs: int = 1,
        log_model_artifact: bool = True,
        layer_table_every_n_epochs: int = 0,
    ) -> None:
        settings = {name: value for name, value in locals().items() if name in PRUNER_ARGUMENTS}
        super().__init__()
        check_choice("interval", interval, Interval)
        check_choice("aux_lr_mode", aux_lr_mode, AuxLrMode)
        if log_every_n_steps is not None and log_every_n_steps < 1:
            raise ValueError(f"log_every_n_steps={log_every_n_steps} must be >= 1 (or None for the Trainer's).")
        self.pruner = AuxPruner(**settings)  # the method's arguments (listed above for LightningCLI and docs)
        self.interval: Interval = interval
        self.aux_lr_mode: AuxLrMode = aux_lr_mode
        self.log_every_n_steps = log_every_n_steps
        self.print_table = print_table
        self.progress_bar = progress_bar
        if mask_images_every_n_epochs < 0:
            raise ValueError(f"mask_images_every_n_epochs={mask_images_every_n_epochs} must be >= 0 (0: never).")
        self.mask_images_every_n_epochs = mask_images_every_n_epochs
        self.log_model_artifact = log_model_artifact
        if layer_table_every_n_epochs < 0:
            raise ValueError(
                f"layer_table_every_n_epochs={layer_table_every_n_epochs} must be >= 0 (0: at the end only)."
            )
        self.layer_table_every_n_epochs = layer_table_every_n_epochs
        self.last_table = ""
        self._last_metrics: dict[str, float] = {}
        self._aux_param_names: list[str] = []
        self._loaded_aux_param_names: list[str] | None = None
        self._last_logged_step = -1
        self._batch_idx = 0
        self._stepped = False
        self._warned_nonfinite = False
        self._warned_collapse = False
        self._resume_differences: list[str] = []
        self._wrapped: list[str] = []
        self._epochs_from_trainer = False  # a recipe without max_epochs: scheduled in setup
        self._scheduled_for: int | None = None  # the max_epochs it was scheduled for

    def __repr__(self) -> str:
        """The resolved settings: what a preset chose, the schedule and the target, in one line."""
        pruner = self.pruner
        target = ""
        if pruner.controller is not None:
            kind = "target_sparsity" if pruner.target_metric == "sparsity" else "target_flops"
            value = pruner.controller.final if kind == "target_sparsity" else 1.0 - pruner.controller.final
            bound = f"kept >= {1.0 - pruner.target_tolerance:g}x the target's"
            if pruner.ramp_tolerance is not None:
                bound += f" and {1.0 - pruner.ramp_tolerance:g}x the ramp's"
            target = f", {kind}={value:g} reached at {pruner.controller.end:g} ({bound})"
        schedule = self.schedule
        if self._epochs_from_trainer and self._scheduled_for is None:
            return (
                f"AuxMaskPruning({self.pruner.options.granularity} masks, strength={pruner.strength:g}, "
                f"aux_optimizer={pruner.aux_optimizer!r}, aux_lr={pruner.aux_lr:g}, recipe scheduled on the "
                f"Trainer's max_epochs when fit starts{target.split(' reached')[0]})"
            )
        return (
            f"AuxMaskPruning({self.pruner.options.granularity} masks, strength={pruner.strength:g}, "
            f"regularizer={pruner.regularizer!r}, ste={pruner.options.ste!r}, rule={pruner.options.rule!r}, "
            f"aux_optimizer={pruner.aux_optimizer!r}, aux_lr={pruner.aux_lr:g} ({self.aux_lr_mode}), "
            f"{self.interval}s: warmup={schedule.warmup:g}, ramp={schedule.ramp:g}, freeze={schedule.freeze}{target})"
        )

    # The pruner's parts, read by users and tests.
    @property
    def masks(self) -> dict[str, AuxMask]:
        """``{layer_name: AuxMask}`` of the model being pruned."""
        return self.pruner.masks

    @property
    def events(self) -> MaskEvents:
        """Prune and recovery event counters."""
        return self.pruner.events

    @property
    def controller(self) -> TargetController | None:
        """The lambda controller (``None`` without a target)."""
        return self.pruner.controller

    @property
    def options(self) -> MaskOptions:
        """Mask granularity, STE, gradient rules and init."""
        return self.pruner.options

    @property
    def schedule(self) -> PruningSchedule:
        """Warm-up, ramp and freeze positions (in ``interval``)."""
        return self.pruner.schedule

    @classmethod
    def paper(cls, strength: float = 1e-4, aux_lr: float = 1e-2, **overrides: Any) -> AuxMaskPruning:
        """The method as the paper describes it, nothing added.

        Constant lambda, ``R = sum h(M)``, leaky-ReLU STE, correlation-consistent sign rule for M,
        masked W gradient, constant M init, M trained by your optimizer, no warm-up, no freeze,
        no target ([`presets.PAPER_FIXED`][lightning_auxprune.presets.PAPER_FIXED]).

        The choices are spelled out there, so they stay the paper's even if the defaults change.
        ``overrides`` are any other constructor arguments (layer selection, logging, ...); the
        fixed ones are refused.

        Examples:
            >>> cb = AuxMaskPruning.paper(strength=3e-4, exclude=["fc2"])
            >>> cb.options.rule, cb.controller is None, cb.schedule.freeze
            ('sign', True, None)

        """
        check_overrides("paper", overrides, PAPER_FIXED, CALLBACK_ARGUMENTS)
        return cls(**paper_settings(strength, aux_lr, overrides))

    @classmethod
    def recipe(
        cls,
        *,
        target_sparsity: float | None = None,
        target_flops: float | None = None,
        max_epochs: int | None = None,
        **overrides: Any,
    ) -> AuxMaskPruning:
        """The benchmarked recipe: prune to a target within the run's epochs.

        Give exactly one target: ``target_sparsity`` (fraction of the masked weights to prune) or
        ``target_flops`` (fraction of the dense FLOPs to keep).

        One dense warm-up epoch; lambda (from 1e-3, never below 1e-5) is steered so that the
        pruned fraction (or the kept FLOPs) follows a cubic ramp that reaches the target 2 epochs
        before the masks freeze at 3/4 of the budget. Weight masks are stepped by plain SGD at lr
        1; neuron masks by SGD with each layer's gradient divided by its RMS at lr 0.05, their kept
        FLOPs held within 5% of the ramp, and every layer keeps a quarter of its units and at least
        the share a uniform cut to the ramp's target leaves it (``min_uniform_share=1``). The rest
        as [`paper`][lightning_auxprune.callback.AuxMaskPruning.paper]
        ([`lightning_auxprune.presets`][lightning_auxprune.presets]). The budget is the Trainer's
        ``max_epochs``, read when ``fit`` starts, unless ``max_epochs`` is given here.
        ``overrides`` replace the defaults (``strength``, ``aux_lr``, ...) and add other settings;
        the schedule and the target are the recipe's (an override of them is refused).
        docs/benchmarks.md has what the recipe and its variants measured.

        Examples:
            >>> cb = AuxMaskPruning.recipe(target_sparsity=0.99, max_epochs=16)
            >>> cb.schedule.warmup, cb.schedule.ramp, cb.schedule.freeze, cb.controller.final
            (1.0, 9, 12, 0.99)
            >>> neuron = AuxMaskPruning.recipe(target_flops=0.5, granularity="neuron")
            >>> neuron.controller.final, neuron.pruner.min_uniform_share, neuron.pruner.min_unit_fraction
            (0.5, 1.0, 0.25)

        """
        check_overrides("recipe", overrides, RECIPE_FIXED, CALLBACK_ARGUMENTS)
        callback = cls(**recipe_settings(max_epochs or 2, target_sparsity, target_flops, overrides))
        callback._epochs_from_trainer = max_epochs is None
        return callback

    # ------------------------------------------------------------------ set-up
    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit" and self._epochs_from_trainer:
            self._schedule_from(trainer)
        if stage == "fit" and not pl_module.automatic_optimization:
            raise MisconfigurationException(
                "AuxMaskPruning needs automatic optimization: it adds the regularizer's gradient and "
                "restores pruned weights around Lightning's optimizer step. Set "
                "`self.automatic_optimization = True` in your LightningModule."
            )
        self._check_launcher(trainer, pl_module)
        if any(isinstance(c, ModelPruning) for c in getattr(trainer, "callbacks", [])):
            raise MisconfigurationException(
                "AuxMaskPruning cannot be combined with Lightning's ModelPruning in one Trainer: both rewrite the "
                "layers' weights (parametrizations vs torch.nn.utils.prune hooks). Use one of them."
            )
        try:
            self.pruner.attach(pl_module, pl_module.example_input_array)
        except UnreachableTargetError as err:
            raise MisconfigurationException(str(err)) from err
        except ValueError as err:
            if "has no prunable layer" in str(err) and is_overridden("configure_model", pl_module, LightningModule):
                raise MisconfigurationException(
                    f"{err} Layers created in configure_model do not exist yet when AuxMaskPruning.setup runs: "
                    "create the layers to prune in __init__."
                ) from err
            raise
        if stage == "fit":
            self._wrap_configure_optimizers(pl_module)
            self._wrap_on_load_checkpoint(pl_module)
        param_names = {id(p): n for n, p in pl_module.named_parameters()}
        self._aux_param_names = [param_names[id(p)] for p in self.pruner.aux_parameters()]

    @override
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        missing = [n for n in self.pruner.select(pl_module) if n not in self.masks and n not in self.pruner.left_dense]
        if missing:
            raise MisconfigurationException(
                f"Layers {missing} appeared after AuxMaskPruning.setup (created in configure_model?) and "
                "would stay dense. Create them in __init__, or pass exclude=[...] to leave them dense."
            )
        optimizers = [o for o in trainer.optimizers if not isinstance(o, _MockOptimizer)]
        if not optimizers:
            raise MisconfigurationException(
                "AuxMaskPruning found no optimizer: configure_optimizers must return one, since the "
                "masks are trained in an extra parameter group of it."
            )
        if any(isinstance(o, torch.optim.LBFGS) for o in optimizers):
            raise MisconfigurationException(
                "AuxMaskPruning does not work with LBFGS: it evaluates the closure several times per step, while "
                "the masks' push and the restore of pruned weights happen once around it. Use a first-order "
                "optimizer (SGD, Adam, AdamW, ...)."
            )
        self._check_weights_in_optimizers(optimizers)
        if self._resume_differences:
            rank_zero_warn("Resuming with different pruning settings: " + "; ".join(self._resume_differences) + ".")
            self._resume_differences = []
        if self._loaded_aux_param_names is not None and self._loaded_aux_param_names != self._aux_param_names:
            raise MisconfigurationException(
                "The checkpoint's aux parameter group does not match this model's masks: "
                f"{self._loaded_aux_param_names} vs {self._aux_param_names}. Resume with the same "
                "include/exclude/layer_types settings."
            )
        self._check_epoch_fractions(trainer)
        schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
        for optimizer in optimizers:
            attach_aux_group(optimizer, self.pruner.aux_parameters(), self.pruner.aux_lr)
            align_schedulers(schedulers, optimizer, self.pruner.aux_lr)
        self._apply_aux_lr(trainer)
        self.pruner.reset()  # weights and masks may have come from a checkpoint since setup
        self._log_hparams(trainer)

    # ------------------------------------------------------------- per batch
    @override
    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        self._batch_idx = batch_idx
        self._apply_aux_lr(trainer)  # before LearningRateMonitor reads it and before the step

    @override
    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        lr = aux_lr(optimizer, self.pruner.aux_lr, self.aux_lr_mode)  # written at batch start
        try:
            self.pruner.before_optimizer_step(self._position(trainer), lr)
        except UnreachableTargetError as err:
            raise MisconfigurationException(str(err)) from err
        self._stepped = True

    @override
    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._stepped:  # not on batches that only accumulate gradients
            self.pruner.after_optimizer_step()
            self._stepped = False
        self._apply_aux_lr(trainer)  # LR schedulers stepped just before this hook
        every = self.log_every_n_steps or int(getattr(trainer, "log_every_n_steps", 50) or 50)
        step = trainer.global_step
        if step != self._last_logged_step and step % every == 0 and step > 0:
            self._log(trainer)

    @override
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        logged = trainer.global_step == self._last_logged_step
        metrics = self._last_metrics if logged else self._log(trainer, on_step=False)
        for key in ("auxprune/sparsity", "auxprune/compression", "auxprune/flops_ratio"):
            if key in metrics:
                pl_module.log(key, metrics[key], logger=False)
        every = self.mask_images_every_n_epochs
        if every and (trainer.current_epoch + 1) % every == 0:
            self._log_mask_pictures(trainer)
        every = self.layer_table_every_n_epochs
        if every and (trainer.current_epoch + 1) % every == 0:
            self._log_layer_table(trainer, suffix=f"_epoch{trainer.current_epoch}")

    @override
    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.pruner.finish()
        self.last_table = self.pruner.table()
        if self.print_table:
            rank_zero_info("AuxMaskPruning per-layer result:\n" + self.last_table)
        self._log_layer_table(trainer)
        self._log_artifact(trainer, pl_module)
        self._check_target_reached(trainer)

    # ---------------------------------------------------------------- helpers
    def _schedule_from(self, trainer: Trainer) -> None:
        """Schedule a recipe made without ``max_epochs`` on the Trainer's ``max_epochs``."""
        epochs = trainer.max_epochs
        if epochs is None or epochs < 2:
            raise MisconfigurationException(
                f"AuxMaskPruning.recipe() schedules itself on the Trainer's max_epochs, which is {epochs}: set "
                "Trainer(max_epochs=...) (at least 2), or pass max_epochs=... to recipe()."
            )
        self.pruner.reschedule(**recipe_schedule(epochs))
        self._scheduled_for = epochs

    def attach(self, model: nn.Module) -> dict[str, AuxMask]:
        """Give ``model`` its masks now, before ``trainer.fit`` (needed with ``strategy="ddp_spawn"``).

        ``setup`` does this otherwise; a model attached beforehand keeps its masks there.
        """
        return self.pruner.attach(model, getattr(model, "example_input_array", None))

    @staticmethod
    def _check_launcher(trainer: Trainer, pl_module: LightningModule) -> None:
        """Sharded strategies are untested; workers started by multiprocessing lose their masks."""
        strategy = getattr(trainer, "strategy", None)
        if isinstance(strategy, (FSDPStrategy, DeepSpeedStrategy, ModelParallelStrategy)):
            raise MisconfigurationException(
                f"AuxMaskPruning does not support {type(strategy).__name__} yet: it shards or flattens parameters, "
                "while the masks, their parameter group and the restore of pruned weights assume whole tensors, "
                "and no GPU was available to test it. Use strategy='ddp' (or a single device)."
            )
        launcher = getattr(strategy, "launcher", None)
        if not isinstance(launcher, _MultiProcessingLauncher):
            return
        if launcher._start_method != "fork":
            raise MisconfigurationException(
                f"strategy with start method {launcher._start_method!r} (ddp_spawn) cannot train masks: setup runs "
                "only in the workers, the masks made there are dropped with the trained weights when Lightning "
                "copies the workers' state back (strict=False), and a model with masks cannot be pickled to the "
                "workers. Use strategy='ddp' (one process per device, started as scripts)."
            )
        if not find_masks(pl_module):
            raise MisconfigurationException(
                "With strategy='ddp_fork'/'ddp_notebook' setup runs only in the workers: masks created there would "
                "be dropped, and the trained weights with them, when Lightning copies the workers' state back into "
                "your model. Call `pruning.attach(model)` before `trainer.fit(model)`, or use strategy='ddp'."
            )

    @override
    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        for name in self._wrapped:  # the class's methods again
            pl_module.__dict__.pop(name, None)
        self._wrapped = []

    def _wrap(self, pl_module: LightningModule, name: str, method: Any) -> None:
        """Override a LightningModule method on this instance until ``teardown``."""
        setattr(pl_module, name, method)
        self._wrapped.append(name)

    def _wrap_on_load_checkpoint(self, pl_module: LightningModule) -> None:
        """A ``ckpt_path`` without masks (a dense run) would fail Lightning's strict load with a key list."""
        original = pl_module.on_load_checkpoint

        def on_load_checkpoint(checkpoint: dict[str, Any]) -> None:
            state = checkpoint.get("state_dict", {})
            if state and not any(".parametrizations.weight." in key for key in state):
                raise MisconfigurationException(
                    "ckpt_path holds a model without masks (a dense run), which cannot be resumed as a pruning run. "
                    "To prune from its weights, load them and start a new fit without ckpt_path: "
                    "model.load_state_dict(torch.load(path)['state_dict']); trainer.fit(model)."
                )
            original(checkpoint)

        self._wrap(pl_module, "on_load_checkpoint", on_load_checkpoint)

    def _wrap_configure_optimizers(self, pl_module: LightningModule) -> None:
        """Let ``configure_optimizers`` see the parameter names it was written for.

        While it runs, ``named_parameters()`` gives a masked layer's stored weight its original
        name (``fc1.weight``, not ``fc1.parametrizations.weight.original``) and leaves the masks
        out (they get their own group in ``on_fit_start``), so groups built by name (no weight
        decay on biases and norms, ...) come out as intended. A masked weight passed directly
        (``self.fc1.weight``) is now a computed tensor: that error gets advice.
        """
        original = pl_module.configure_optimizers
        named_parameters = pl_module.named_parameters
        masks = {id(p) for p in self.pruner.aux_parameters()}

        def unpatched_names(*args: Any, **kwargs: Any) -> Any:
            for name, param in named_parameters(*args, **kwargs):
                if id(param) not in masks:
                    yield _STORED.sub(r"\g<layer>\g<tensor>", name), param

        def configure_optimizers() -> Any:
            pl_module.named_parameters = unpatched_names  # type: ignore[method-assign]
            try:
                return original()
            except ValueError as err:
                if "non-leaf" not in str(err):
                    raise
                raise MisconfigurationException(
                    "configure_optimizers passed a masked weight such as `self.fc1.weight`: after AuxMaskPruning "
                    "patched the layer that is a computed tensor W * h(M). Pass `self.parameters()`, or "
                    "`self.fc1.parametrizations.weight.original` for the stored weight."
                ) from err
            finally:
                del pl_module.named_parameters  # the class's method again

        self._wrap(pl_module, "configure_optimizers", configure_optimizers)

    def _check_weights_in_optimizers(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        """Masked weights missing from every optimizer (groups built from old parameter names) would not train."""
        in_optimizers = {id(p) for o in optimizers for g in o.param_groups for p in g["params"]}
        missing = []
        for name in self.masks:
            layer = self.pruner.layer(name)
            stacks = cast(nn.ModuleDict, layer.parametrizations)
            stored = cast(torch.Tensor, stacks[masked_tensors(layer)[0]].original)
            if stored.requires_grad and id(stored) not in in_optimizers:
                missing.append(name)
        if missing:
            raise MisconfigurationException(
                f"The weights of {missing} are in no optimizer group, so they would not train. After patching they "
                "are named '<layer>.parametrizations.weight.original' (not '<layer>.weight'): build parameter "
                "groups from self.parameters() or self.named_parameters() after setup, or freeze the layers "
                "(requires_grad=False) if that is intended."
            )

    def _check_epoch_fractions(self, trainer: Trainer) -> None:
        """Fractions of an epoch need the epoch's length, which an IterableDataset does not have."""
        if self.interval != "epoch" or isinstance(trainer.num_training_batches, int):
            return
        schedule = self.schedule
        fractional = {
            name: value
            for name, value in (("warmup", schedule.warmup), ("ramp", schedule.ramp), ("freeze", schedule.freeze))
            if value is not None and value != int(value)
        }
        if fractional:
            raise MisconfigurationException(
                f"{fractional} are fractions of an epoch, but the training data has no length (an "
                "IterableDataset?), so positions within an epoch are unknown. Use interval='step' with step counts, "
                "or whole epochs."
            )

    def _position(self, trainer: Trainer) -> float:
        """Where training is, in ``interval``: optimizer steps, or epochs with the fraction of this one."""
        if self.interval == "step":
            return float(trainer.global_step)
        batches = trainer.num_training_batches
        fraction = self._batch_idx / batches if isinstance(batches, int) and batches > 0 else 0.0
        return trainer.current_epoch + fraction

    def _apply_aux_lr(self, trainer: Trainer) -> float:
        """Write the aux lr (fixed, or following the user's scheduler) into every aux group; return it."""
        lr = self.pruner.aux_lr
        for optimizer in trainer.optimizers:
            lr = aux_lr(optimizer, self.pruner.aux_lr, self.aux_lr_mode)
            set_aux_lr(optimizer, lr)
        return lr

    def _check_target_reached(self, trainer: Trainer) -> None:
        """Warn when the controlled share ended above its target (by > 5%) or far below it (> 20%)."""
        controller = self.controller
        if controller is None or self.pruner.phase(self._position(trainer)) == "warmup":
            return
        kept, wanted = self.pruner.kept_fraction(), 1.0 - controller.final
        miss = target_miss(kept, wanted)
        if miss is not None:
            what = "weights" if self.pruner.target_metric == "sparsity" else "FLOPs"
            rank_zero_warn(
                f"AuxMaskPruning kept {percent(kept)} of the {what} instead of the target {percent(wanted)}, "
                f"{miss} (lambda ended at {controller.output:.3g}). Give the controller more steps "
                "(a longer ramp, a later freeze), or change target_gain: smaller if it overshot, larger if "
                "it lagged. Masks the data gradient alone closes cannot be reopened by lowering lambda."
            )

    def metrics(self, trainer: Trainer) -> dict[str, float]:
        """The statistics now (consumes the event counts since the last log); warns once about NaN masks."""
        metrics = self.pruner.metrics(self._position(trainer))
        closed = [name for name in self.pruner.collapsed if name not in self.pruner.nonfinite]
        if closed and not self._warned_collapse:
            self._warned_collapse = True
            rank_zero_warn(
                f"AuxMaskPruning closed every mask of {closed} at step {trainer.global_step}: those layers output "
                "nothing. Lower the target or lambda, exclude them, or keep a floor of open units (neuron "
                "granularity: min_units, min_unit_fraction)."
            )
        if self.pruner.nonfinite and not self._warned_nonfinite:
            self._warned_nonfinite = True
            rank_zero_warn(
                f"AuxMaskPruning: the masks of {self.pruner.nonfinite} are NaN or infinite at step "
                f"{trainer.global_step}: a non-finite loss or gradient reached them. They read as pruned, so "
                "sparsity, compression and events are not meaningful from here on. Find the NaN (e.g. "
                "Trainer(detect_anomaly=True)), lower the learning rate, or clip gradients, and restart from a "
                "checkpoint before it."
            )
        return metrics

    def _log(self, trainer: Trainer, on_step: bool = True) -> dict[str, float]:
        metrics = self.metrics(trainer)
        self._last_logged_step = trainer.global_step
        self._last_metrics = metrics
        step = trainer.fit_loop.epoch_loop._batches_that_stepped
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
        if self.progress_bar:  # kept on the bar until the next log: no device read on other steps
            module = trainer.lightning_module
            for key in ("sparsity", "lambda"):
                module.log(
                    key, metrics[f"auxprune/{key}"], prog_bar=True, logger=False, on_step=on_step, on_epoch=not on_step
                )
        return metrics

    def _log_hparams(self, trainer: Trainer) -> None:
        """The resolved settings, namespaced ``auxprune/``, in every logger's run config."""
        params = {f"auxprune/{key}": value for key, value in self.pruner.hparams().items()}
        params.update({"auxprune/interval": self.interval, "auxprune/aux_lr_mode": self.aux_lr_mode})
        for logger in trainer.loggers:
            logger.log_hyperparams(params)
            if isinstance(logger, TensorBoardLogger) and trainer.global_rank == 0:
                logger.experiment.add_custom_scalars(TENSORBOARD_LAYOUT)

    def _log_artifact(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """The pruned model as a W&B artifact (baked, and exported as CSR or shrunk), with its figures."""
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if not self.log_model_artifact or not loggers or trainer.global_rank != 0:
            return
        import wandb

        metrics = self._last_metrics or self.pruner.metrics(self._position(trainer))
        metadata: dict[str, Any] = {
            key: metrics[f"auxprune/{key}"]
            for key in ("sparsity", "compression", "flops_ratio")
            if f"auxprune/{key}" in metrics
        }
        metadata.update({k: float(v) for k, v in trainer.callback_metrics.items() if "acc" in k and v.numel() == 1})
        metadata["granularity"] = self.options.granularity
        with tempfile.TemporaryDirectory() as folder:
            files = {"baked_state_dict.pt": Path(folder) / "baked_state_dict.pt"}
            torch.save(bake(pl_module).state_dict(), files["baked_state_dict.pt"])
            if self.options.granularity == "weight":
                files["sparse.pt"] = Path(folder) / "sparse.pt"
                save_sparse(pl_module, files["sparse.pt"])
            elif pl_module.example_input_array is not None:
                example = pl_module.example_input_array
                if isinstance(example, torch.Tensor):
                    example = example.to(pl_module.device)
                try:
                    shrunk = shrink(pl_module, example, on_unsafe="skip").model
                except (ValueError, RuntimeError) as err:
                    rank_zero_warn(f"AuxMaskPruning: the W&B artifact holds no shrunk model, shrink failed: {err}")
                else:
                    files["shrunk.pt"] = Path(folder) / "shrunk.pt"
                    save_shrunk(shrunk, str(files["shrunk.pt"]))
            else:
                rank_zero_warn(
                    "AuxMaskPruning: the W&B artifact holds the baked model only; set example_input_array on "
                    "your LightningModule to add the shrunk model."
                )
            for logger in loggers:
                artifact = wandb.Artifact(f"auxprune-model-{logger.experiment.id}", type="model", metadata=metadata)
                for name, path in files.items():
                    artifact.add_file(str(path), name=name)
                logger.experiment.log_artifact(artifact)

    def _log_mask_pictures(self, trainer: Trainer) -> None:
        """Each layer's h(M) as an image and M as a histogram, through each logger's own media API."""
        loggers = [lg for lg in trainer.loggers if isinstance(lg, (WandbLogger, TensorBoardLogger))]
        if not loggers or trainer.global_rank != 0:
            return
        step = trainer.fit_loop.epoch_loop._batches_that_stepped
        pictures = {name: (mask_image(mask), mask_values(mask)) for name, mask in self.masks.items()}
        for logger in loggers:
            if isinstance(logger, WandbLogger):
                import wandb

                for name, (image, _) in pictures.items():  # one key per layer: the images differ in size
                    logger.log_image(key=f"auxprune/masks/{name}", images=[image.numpy()], step=step)
                histograms = {}
                for name, (_, values) in pictures.items():
                    counts, edges = torch.histogram(values, bins=64)
                    histograms[f"auxprune/m/{name}"] = wandb.Histogram(np_histogram=(counts.numpy(), edges.numpy()))
                logger.experiment.log({**histograms, "trainer/global_step": step})
            else:
                for name, (image, values) in pictures.items():
                    logger.experiment.add_image(f"auxprune/masks/{name}", image, step, dataformats="HW")
                    logger.experiment.add_histogram(f"auxprune/m/{name}", values, step)

    def _log_layer_table(self, trainer: Trainer, suffix: str = "") -> None:
        """The per-layer table at the end of fit: a W&B table, TensorBoard text, a CSV file next to the logs."""
        rows = self.pruner.layer_rows()
        if not rows or trainer.global_rank != 0:
            return
        columns = list(rows[0])
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_table(key="auxprune/layers", columns=columns, data=[list(r.values()) for r in rows])
            elif isinstance(logger, TensorBoardLogger):
                lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
                lines += ["| " + " | ".join(str(v) for v in r.values()) + " |" for r in rows]
                logger.experiment.add_text("auxprune/layers", "\n".join(lines), global_step=trainer.global_step)
            elif isinstance(logger, CSVLogger):
                path = Path(logger.log_dir) / f"auxprune_layers{suffix}.csv"
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("w", newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=columns)
                    writer.writeheader()
                    writer.writerows(rows)

    # ----------------------------------------------------------------- state
    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            **self.pruner.state_dict(),
            "interval": self.interval,
            "aux_param_names": list(self._aux_param_names),
            "last_logged_step": self._last_logged_step,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # "unit" is this setting's name in states written before 0.2
        saved = state_dict.get("interval", state_dict.get("unit", state_dict.get("schedule", {}).get("unit")))
        try:
            differences = self.pruner.load_state_dict(state_dict)
        except ValueError as err:
            raise MisconfigurationException(str(err)) from err
        if saved is not None and saved != self.interval:
            differences.append(f"interval: checkpoint {saved!r}, now {self.interval!r}")
        self._loaded_aux_param_names = list(state_dict["aux_param_names"])
        self._last_logged_step = int(state_dict["last_logged_step"])
        self._resume_differences = differences  # reported in on_fit_start: irrelevant to test/predict


CALLBACK_ARGUMENTS = frozenset(inspect.signature(AuxMaskPruning).parameters)
"""Every constructor argument (what a preset's overrides may name)."""
