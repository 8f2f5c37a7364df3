"""``AuxPruner``: AutoPrune's training-time engine in plain torch (no Lightning).

The pruner owns everything the method does around an optimizer step: the masks, lambda (a
constant with an optional ramp, or the target controller's state), the regularizer's gradient,
the optional plain-SGD step of M, the restore of pruned weights, prune/recovery events and the
statistics. A training loop calls it at two points of every optimizer step::

    pruner = AuxPruner(target_sparsity=0.9, warmup=100, ramp=2_000, freeze=3_000)
    pruner.attach(model)                          # masks in, before the optimizer is built
    optimizer = torch.optim.AdamW(pruner.parameter_groups(model), lr=1e-3, weight_decay=1e-2)
    for step, (x, y) in enumerate(loader):
        loss_fn(model(x), y).backward()
        pruner.before_optimizer_step(position=step)   # lambda * dR/dM into M.grad
        optimizer.step()
        pruner.after_optimizer_step()                 # restore pruned weights, count events
        optimizer.zero_grad()
        if step % 100 == 0:
            print(pruner.metrics(position=step))      # the only host sync

Positions are numbers in the unit of ``warmup``, ``ramp`` and ``freeze`` (steps above; the
Lightning callback uses epochs or steps). Nothing in a step reads the device: statistics, event
counts and lambda stay device tensors until [`AuxPruner.metrics`][lightning_auxprune.pruner.AuxPruner.metrics] reads
them all at once, and
every per-layer operation is one multi-tensor kernel over all masks.

Examples:
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> pruner = AuxPruner(strength=1e-2)
    >>> sorted(pruner.attach(net))
    ['0', '2']
    >>> net(torch.randn(3, 4)).sum().backward()
    >>> pruner.before_optimizer_step(position=0.0)
    >>> with torch.no_grad():
    ...     for p in net.parameters():
    ...         p -= 10.0 * p.grad
    >>> pruner.after_optimizer_step()
    >>> round(pruner.metrics(0.0)["auxprune/sparsity"], 3) > 0
    True

"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import torch
from torch import nn

from lightning_auxprune.attention import is_attention, masked_tensors
from lightning_auxprune.aux_group import AUX_GROUP
from lightning_auxprune.aux_sgd import AuxOptimizer, aux_sgd_step
from lightning_auxprune.controller import TargetController
from lightning_auxprune.coupling import ChannelCoupling, channel_coupling
from lightning_auxprune.events import MaskEvents
from lightning_auxprune.export.bake import bake
from lightning_auxprune.floor import UnitFloor
from lightning_auxprune.flops import LayerFlops
from lightning_auxprune.kept_flops import KeptFlops, layer_flops
from lightning_auxprune.layer_selection import (
    check_untied,
    compile_patterns,
    output_layer,
    select_layers,
)
from lightning_auxprune.layer_selection import layer_types as layer_types_of
from lightning_auxprune.mask_set import MaskSet
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
from lightning_auxprune.patch import find_masks, patch_model
from lightning_auxprune.regularizer import add_regularizer_grad, regularizer_total
from lightning_auxprune.restore import PrunedWeights
from lightning_auxprune.schedule import PHASE_CODE, Phase, PruningSchedule, check_finite
from lightning_auxprune.statistics import layer_stats, layer_table
from lightning_auxprune.target_bound import StructuredBound, TargetBound
from lightning_auxprune.uniform_share import UniformShare

CONTROLLER_DEFAULTS: dict[str, float] = {"target_gain": 0.01, "target_p_gain": 2.0, "target_min_strength": 1e-9}
STATE_VERSION = 2


class UnreachableTargetError(ValueError):
    """A FLOPs target below what the layers left dense already cost."""


@dataclass
class _StepState:
    """What the pruner keeps on the masks' device between steps (rebuilt after ``reset``)."""

    gates: list[torch.Tensor]  # h(M) in force for the next optimizer step
    open: torch.Tensor  # open entries per layer, [L] float64
    keeper: PrunedWeights | None
    flops: KeptFlops | None  # the kept-FLOPs ratio of the gates
    bound: TargetBound | StructuredBound | None = None  # no pruning far past the target
    bound_units: tuple[float, float] = (1.0, 0.0)  # the bound's kept quantity = total * (fraction - base)
    position: float | None = None  # of the latest optimizer step
    costs: list[float] | None = None  # cost-aware push: FLOPs saved per entry, relative to the mean


class AuxPruner:
    r"""Learn recoverable pruning masks while a model trains: AutoPrune in plain torch.

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
        aux_lr: Learning rate of M (the aux parameter group's, or the plain-SGD step's).
        aux_optimizer: What steps M: ``"shared"`` (the caller's optimizer, through a parameter
            group of [`aux_parameters`][lightning_auxprune.pruner.AuxPruner.aux_parameters]), ``"sgd"`` (plain SGD at
            the aux lr, applied in
            [`before_optimizer_step`][lightning_auxprune.pruner.AuxPruner.before_optimizer_step]; M's gradients are
            then cleared, so the caller's
            optimizer skips them) or ``"normalized_sgd"`` (the same with each layer's M gradient
            divided by its RMS).
        include: Regexes (full match on module names); only matching layers are pruned.
        exclude: Regexes (full match) of layers to leave dense.
        layer_types: Layer type names to prune; default ``["Linear", "Conv1d", "Conv2d", "Conv3d"]``.
        warmup: Dense warm-up length before masks start to move.
        ramp: Length of the linear lambda ramp after warm-up (0: constant lambda); with a
            target, the length of the target's cubic ramp (0: it ramps until ``freeze``).
        freeze: When masks freeze for a final W-only fine-tune (``None``: never).
        restore_pruned_weights: With ``weight_grad="masked"``, put pruned weights back to their
            parked values after each optimizer step, so weight decay and momentum cannot move
            them and a recovered weight returns with its old value.
        target_sparsity: Fraction of the masked weights to prune; lambda is then controlled so
            that the pruned fraction follows a cubic ramp from 0 at ``warmup`` to this value.
        target_flops: Fraction of the model's dense FLOPs to keep (e.g. ``0.25``); controlled the
            same way. At most one of ``target_sparsity`` and ``target_flops``.
        target_gain: The controller's integral gain.
        target_p_gain: The controller's proportional gain.
        target_min_strength: The lowest lambda the controller goes to, in (0, ``strength``].
        target_tolerance: How far past a target pruning may go at most: the kept fraction never
            falls below ``(1 - tolerance)`` times the target's (see
            [`lightning_auxprune.target_bound`][lightning_auxprune.target_bound]), in [0, 1).
        ramp_tolerance: Bound pruning along the target's ramp too: the kept fraction never falls
            below ``(1 - ramp_tolerance)`` times the ramp's at the current step, in [0, 1);
            ``None``: only the final target bounds it.
        hysteresis: How far past zero a mask entry is moved when it changes state (closing:
            ``m - hysteresis``, reopening: ``m + hysteresis``), so it keeps its new state until the
            push or its data gradient has moved it that far back; ``0``: no hysteresis. In units
            of m (which starts at ``init_scale``), >= 0.
        cost_aware: With ``target_flops``, push each mask entry in proportion to the FLOPs its
            closing saves (relative to the average entry), so costly units close first; ``False``
            pushes every entry alike.
        min_units: Neuron granularity: units of each layer kept open at least (see
            [`lightning_auxprune.floor`][lightning_auxprune.floor]); 0 with ``min_unit_fraction=0`` lets a layer close.
        min_unit_fraction: Neuron granularity: fraction of each layer's units kept open at least.
        min_uniform_share: Neuron granularity with a target: each layer keeps at least this
            fraction of the units a uniform cut to the target at the current step would leave it
            (see [`lightning_auxprune.uniform_share`][lightning_auxprune.uniform_share]), so the
            layers' shares of the budget cannot drift far from run to run; in [0, 1], ``0``: the
            masks share the budget freely, ``1``: every layer is cut alike and the masks choose
            only which units.
        keep_output_layer: Neuron granularity: leave the model's output layer (its last
            Linear/Conv layer) dense, since its units are the model's outputs (classes).
        coupled: Neuron granularity: one mask per group of coupled layers (found by Torch-Pruning's
            dependency graph: residual additions, depthwise convolutions with their producer), so
            residual streams can be pruned and every closed unit can be removed by
            [`shrink`][lightning_auxprune.export.shrink.shrink]; ``False``: one mask per layer.

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
        aux_optimizer: AuxOptimizer = "shared",
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        layer_types: Sequence[str] | None = None,
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
    ) -> None:
        check_finite(
            strength=strength,
            alpha=alpha,
            beta=beta,
            init_scale=init_scale,
            aux_lr=aux_lr,
            target_sparsity=target_sparsity,
            target_flops=target_flops,
            target_gain=target_gain,
            target_p_gain=target_p_gain,
            target_min_strength=target_min_strength,
            hysteresis=hysteresis,
            min_uniform_share=min_uniform_share,
        )
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
        self.schedule = PruningSchedule(warmup=warmup, ramp=ramp, freeze=freeze)
        if strength < 0:
            raise ValueError(f"strength (lambda)={strength} must be >= 0; 0 disables the regularizer.")
        check_choice("regularizer", regularizer, RegularizerName)
        check_choice("aux_optimizer", aux_optimizer, AuxOptimizer)
        if aux_lr <= 0:
            raise ValueError(f"aux_lr={aux_lr} must be > 0; use freeze=... to stop the masks from moving.")
        compile_patterns(include, "include")  # a typo in a regex fails here, not at the first fit
        compile_patterns(exclude, "exclude")
        layer_types_of(layer_types)
        self.strength = strength
        self.regularizer: RegularizerName = regularizer
        self.aux_lr = aux_lr
        self.aux_optimizer: AuxOptimizer = aux_optimizer
        self.include = list(include) if include is not None else None
        self.exclude = list(exclude) if exclude is not None else None
        self.layer_types = list(layer_types) if layer_types is not None else None
        self.restore_pruned_weights = restore_pruned_weights
        self.controller = self._make_controller(
            target_sparsity, target_flops, target_gain, target_p_gain, target_min_strength
        )
        self.target_metric = "flops" if target_flops is not None else "sparsity"
        if min_units < 0 or not 0.0 <= min_unit_fraction < 1.0:
            raise ValueError(f"min_units={min_units} must be >= 0 and min_unit_fraction={min_unit_fraction} in [0, 1).")
        self.min_units, self.min_unit_fraction = min_units, min_unit_fraction
        if not 0.0 <= min_uniform_share <= 1.0:
            raise ValueError(f"min_uniform_share={min_uniform_share} must be in [0, 1] (0: off).")
        if min_uniform_share > 0 and (granularity != "neuron" or self.controller is None):
            raise ValueError(
                f"min_uniform_share={min_uniform_share} needs granularity='neuron' and a target (target_sparsity "
                "or target_flops): it keeps each layer near its share of the target's ramp. Set it to 0 otherwise."
            )
        self.min_uniform_share = min_uniform_share
        if not 0.0 <= target_tolerance < 1.0:
            raise ValueError(
                f"target_tolerance={target_tolerance} must be in [0, 1): the kept fraction's allowed shortfall."
            )
        self.target_tolerance = target_tolerance
        if ramp_tolerance is not None and not 0.0 <= ramp_tolerance < 1.0:
            raise ValueError(
                f"ramp_tolerance={ramp_tolerance} must be in [0, 1) (the kept fraction's allowed shortfall "
                "from the ramp) or None (no bound along the ramp)."
            )
        self.ramp_tolerance = ramp_tolerance
        if hysteresis < 0:
            raise ValueError(f"hysteresis={hysteresis} must be >= 0 (0: none).")
        self.hysteresis = hysteresis
        self.cost_aware = cost_aware
        self.keep_output_layer = keep_output_layer
        self.coupled = coupled
        self.coupling: ChannelCoupling | None = None
        """Coupled channel groups of the attached model (neuron granularity)."""
        self.left_dense: dict[str, str] = {}
        """Selected layers that [`attach`][lightning_auxprune.pruner.AuxPruner.attach] left without masks, with why."""
        self._floor: UnitFloor | None = None
        self._share: UniformShare | None = None
        self.collapsed: list[str] = []
        """Layers with no open mask entry at the last [`metrics`][lightning_auxprune.pruner.AuxPruner.metrics]."""

        self.masks: dict[str, AuxMask] = {}
        self.events = MaskEvents()
        self._calls = LayerFlops()  # layer input shapes of the first step, when no example input is known
        self._layer_flops: tuple[float, dict[str, float]] | None = None
        self._kept: KeptFlops | None = None
        self._model: nn.Module | None = None
        self._set = MaskSet({})
        self._state: _StepState | None = None
        self.nonfinite: list[str] = []
        """Layers whose masks held a NaN or an infinity at the last
        [`metrics`][lightning_auxprune.pruner.AuxPruner.metrics] (they read as pruned)."""

    def reschedule(self, warmup: float, ramp: float, freeze: float | None) -> None:
        """Replace the schedule (before training starts); a target is then reached on the new one.

        Examples:
            >>> pruner = AuxPruner(target_sparsity=0.9, warmup=1, ramp=1, freeze=2)
            >>> pruner.reschedule(warmup=1, ramp=9, freeze=12)
            >>> pruner.controller.end
            10

        """
        self.schedule = PruningSchedule(warmup=warmup, ramp=ramp, freeze=freeze)
        controller = self.controller
        if controller is not None:
            sparsity = controller.final if self.target_metric == "sparsity" else None
            flops = 1.0 - controller.final if self.target_metric == "flops" else None
            self.controller = self._make_controller(
                sparsity, flops, controller.gain, controller.p_gain, controller.min_strength
            )

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
        if self.strength <= 0:
            raise ValueError("With a target, strength is lambda's initial value and must be > 0 (e.g. 1e-4).")
        return TargetController(
            final=final,
            start=start,
            end=end,
            strength=self.strength,
            gain=gain,
            p_gain=p_gain,
            min_strength=min_strength,
        )

    # ------------------------------------------------------------------ set-up
    def select(self, model: nn.Module) -> list[str]:
        """Names of the layers of ``model`` this pruner masks (include/exclude/layer_types).

        With neuron granularity and ``keep_output_layer``, the model's last Linear/Conv layer
        (in registration order: the classifier of the usual models) is left out; an attention
        block's ``out_proj`` is left out when the block's heads are masked (its inputs are the heads).
        """
        names = select_layers(model, self.include, self.exclude, self.layer_types)
        if self.options.granularity != "neuron":
            return names
        heads = {n for n in names if is_attention(model.get_submodule(n))}
        names = [n for n in names if n.rpartition(".")[0] not in heads or not n.endswith(".out_proj")]
        if not self.keep_output_layer:
            return names
        output = output_layer(model)
        kept = [n for n in names if n != output]
        if kept and len(kept) < len(names) and self.include is not None:
            warnings.warn(
                f"include={self.include} matches {output!r}, the model's output layer, which neuron masks leave dense "
                "(its units are the outputs). Pass keep_output_layer=False to prune its units anyway.",
                UserWarning,
                stacklevel=2,
            )
        if not kept:
            raise ValueError(
                f"Only the output layer {output!r} is selected, and neuron masks leave it dense "
                "(keep_output_layer=True): select other layers, or pass keep_output_layer=False to prune its units."
            )
        return kept

    def attach(self, model: nn.Module, example_inputs: Any = None) -> dict[str, AuxMask]:
        """Give the selected layers of ``model`` their masks (idempotent); returns ``{name: AuxMask}``.

        Call before building the optimizer: the weights become
        ``<layer>.parametrizations.weight.original`` and the masks new parameters.

        Args:
            model: The model.
            example_inputs: One input of ``model`` (a tensor, a tuple of positional inputs or a
                dict of keyword inputs; a batch of one is enough). It is traced once to count
                the FLOPs of every layer call and, for neuron masks, to find coupled layers
                (required then). Without it, weight masks count FLOPs from the layers' input
                shapes in the first training step.

        Raises:
            ValueError: Neuron granularity without ``example_inputs``; stale masks; tied layers.
        """
        names = self.select(model)
        stale = sorted(set(find_masks(model)) - set(names))
        if stale:
            raise ValueError(
                f"Layers {stale} carry masks from an earlier attach/fit but are not selected now, so nothing would "
                "train or freeze their masks. Bake them first (lightning_auxprune.bake(model, inplace=True) bakes "
                "every mask), or select them again (include/exclude)."
            )
        check_untied(model, names)
        neuron = self.options.granularity == "neuron"
        if neuron and example_inputs is None:
            raise ValueError(
                "Neuron masks need an example input of the model, to find coupled layers and count the FLOPs that "
                "shrink removes: pass example_inputs to attach (with Lightning, set `self.example_input_array = "
                "torch.zeros(1, ...)` in your LightningModule's __init__)."
            )
        groups: list[list[str]] = []
        self.coupling, self.left_dense, self._layer_flops, self._kept = None, {}, None, None
        if example_inputs is not None:
            traced = bake(model) if find_masks(model) else model
            inputs = _on_device(example_inputs, model)
            self._layer_flops = layer_flops(traced, inputs)
            if neuron:
                self.coupling = channel_coupling(traced, inputs)
                names, groups = self._couple(names, self.coupling)
        self.masks = patch_model(model, names, self.options, groups)
        self._model = model
        self._set = MaskSet(self.masks)
        self._floor = None
        if neuron:
            floor = UnitFloor(
                self._set.entry_counts, self.min_units, self.min_unit_fraction, 1e-3 * self.options.init_scale
            )
            self._floor = floor if floor.enabled or self.min_uniform_share > 0 else None
        if self._layer_flops is None:
            self._calls.attach(model)
        else:
            self._check_reachable(cast(KeptFlops, self.kept_flops()))
        self._share = self._uniform_share() if self.min_uniform_share > 0 else None
        self.reset()
        return self.masks

    def _check_reachable(self, kept: KeptFlops) -> None:
        if self.controller is None or self.target_metric != "flops":
            return
        target = 1.0 - self.controller.final
        if kept.base > target:
            raise UnreachableTargetError(
                f"target_flops={target:g} cannot be reached: the layers left dense hold "
                f"{kept.base:.1%} of the FLOPs. Prune more layers (include/exclude) or raise target_flops."
            )
        if self._floor is not None:
            least = float(kept.batch(self._floor.floor_gates().to(self._set.device).unsqueeze(0))[0])
            if least > target:
                raise UnreachableTargetError(
                    f"target_flops={target:g} cannot be reached: with every layer at its floor (min_units="
                    f"{self.min_units}, min_unit_fraction={self.min_unit_fraction:g}) {least:.1%} of the FLOPs stay. "
                    "Lower min_unit_fraction/min_units, prune more layers (include/exclude) or raise target_flops."
                )

    def _couple(self, names: list[str], coupling: ChannelCoupling) -> tuple[list[str], list[list[str]]]:
        """The layers to mask and their coupled groups; warns about selected layers left dense."""
        chosen = set(names)
        for name in names:
            group = coupling.group_of(name)
            if group is None:
                self.left_dense[name] = (
                    "not in Torch-Pruning's dependency graph (a layer used through its weight, like attention's "
                    "out_proj), so shrink could not remove its units"
                )
            elif coupling.groups[group].blocker is not None:
                self.left_dense[name] = f"its channels cannot be removed exactly: {coupling.groups[group].blocker}"
            elif self.coupled:
                outside = [m for m in coupling.groups[group].layers if m not in chosen]
                if outside:
                    self.left_dense[name] = f"its channels are coupled with {outside}, which are not masked"
        if self.left_dense:
            reasons: dict[str, list[str]] = {}
            for name, why in self.left_dense.items():
                reasons.setdefault(why, []).append(name)
            warnings.warn(
                "Neuron masks leave these selected layers dense: "
                + "; ".join(f"{names} ({why})" for why, names in reasons.items())
                + ". Exclude them to silence this.",
                UserWarning,
                stacklevel=3,
            )
        kept = [n for n in names if n not in self.left_dense]
        if not kept:
            raise ValueError("No selected layer can carry neuron masks (see the warning): select other layers.")
        if not self.coupled:
            return kept, []
        by_group: dict[int, list[str]] = {}
        for name in kept:
            by_group.setdefault(cast(int, coupling.group_of(name)), []).append(name)
        return kept, [members for members in by_group.values() if len(members) > 1]

    def finish(self) -> None:
        """Remove what the pruner still has hooked into the model (FLOPs recorders of a run without example input)."""
        self._calls.detach()

    def layer(self, name: str) -> nn.Module:
        """The masked layer called ``name`` in the attached model."""
        if self._model is None:
            raise RuntimeError("AuxPruner has no masks: call attach(model) first.")
        return self._model.get_submodule(name)

    def aux_parameters(self) -> list[nn.Parameter]:
        """The masks' parameters M, one per layer, in layer order."""
        return list(self._set.aux)

    def parameter_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """Two parameter groups for an optimizer: the model's other parameters, and the masks.

        The masks' group is named ``"auxprune"``, has the aux lr and no weight decay (the
        regularizer is the masks' only penalty). Pass the result to any ``torch.optim`` optimizer;
        options given to the optimizer apply to the first group.

        Examples:
            >>> from torch import nn
            >>> net = nn.Sequential(nn.Linear(4, 2))
            >>> pruner = AuxPruner(aux_lr=0.05)
            >>> _ = pruner.attach(net)
            >>> groups = pruner.parameter_groups(net)
            >>> [len(g["params"]) for g in groups], groups[1]["name"], groups[1]["lr"]
            ([2, 1], 'auxprune', 0.05)

        """
        masks = {id(p) for p in self.aux_parameters()}
        if not masks:
            raise RuntimeError("AuxPruner has no masks: call attach(model) first.")
        others = [p for p in model.parameters() if id(p) not in masks]
        return [
            {"params": others},
            {"params": self.aux_parameters(), "lr": self.aux_lr, "weight_decay": 0.0, "name": AUX_GROUP},
        ]

    def reset(self) -> None:
        """Forget the device state; it is rebuilt from the masks and weights at the next step.

        Call after loading weights or masks into the model from outside (a checkpoint), or after
        moving it to another device mid-training.
        """
        self._state = None

    def _step_state(self) -> _StepState:
        state = self._state
        if state is not None and (not state.gates or state.gates[0].device == self._set.device):
            return state
        if not self.masks:
            raise RuntimeError("AuxPruner has no masks: call attach(model) first.")
        self._set.to(self._set.device)
        if self.controller is not None:
            self.controller.to(self._set.device)
        gates = self._set.hard_gates()
        keeper = None
        if self.restore_pruned_weights and self.options.weight_grad == "masked":
            keeper = self._weight_keeper()
            keeper.park(gates)
        self._state = _StepState(gates=gates, open=self._set.open_entries(gates), keeper=keeper, flops=None)
        if self.controller is not None and self.target_metric == "sparsity":
            self._state.bound = self._target_bound(self._set.fan_ins, float(self._set.total_weights), 0.0)
            self._state.bound_units = (float(self._set.total_weights), 0.0)
        return self._state

    def _uniform_share(self) -> UniformShare:
        """The uniform cuts' table of the controlled quantity (built once, when the masks are attached)."""
        if self.target_metric == "flops":
            kept = self.kept_flops()
            assert kept is not None  # neuron masks trace the model: the FLOPs are known
            return UniformShare(self._set.entry_counts, kept.batch, device=self._set.device)
        return UniformShare(self._set.entry_counts, self._open_weight_share, device=self._set.device)

    def _open_weight_share(self, gates: torch.Tensor) -> torch.Tensor:
        """Kept fraction of the masked weights for each row of ``gates`` (``[J, entries]``)."""
        parts = torch.split(gates, self._set.entry_counts, dim=1)
        per_layer = torch.stack([part.sum(dim=1) for part in parts], dim=1).to(torch.float64)
        return (per_layer @ self._set.fan_in.to(gates.device, torch.float64)) / self._set.total_weights

    def _floor_fraction(self, state: _StepState) -> float:
        """The moving floor's fraction of each layer's units at the latest step (0: none)."""
        if self._share is None or state.position is None or self.controller is None:
            return 0.0
        kept = 1.0 - self.controller.target_at(state.position)
        return self.min_uniform_share * self._share.fraction_for(kept)

    def _bound_fraction(self, position: float | None) -> float:
        """The least kept fraction allowed at ``position`` (``None``: after the ramp)."""
        assert self.controller is not None
        wanted = (1.0 - self.controller.final) * (1.0 - self.target_tolerance)
        if self.ramp_tolerance is not None and position is not None:
            ramp = (1.0 - self.controller.target_at(position)) * (1.0 - self.ramp_tolerance)
            wanted = max(wanted, ramp)
        return wanted

    def _target_bound(self, entry_weights: Sequence[float], total: float, base: float) -> TargetBound | None:
        """The bound on the kept quantity: ``total * (1 - final) * (1 - tolerance)``, less what stays dense."""
        if self.controller is None:
            return None
        bound = TargetBound(
            entry_weights,
            self._set.entry_counts,
            total * (self._bound_fraction(None) - base),
            1e-3 * self.options.init_scale,
        )
        return bound if bound.enabled or self.ramp_tolerance is not None else None

    def _weight_keeper(self) -> PrunedWeights:
        """The stored weights (and gated biases), each with the index of its layer."""
        tensors, layers = [], []
        modules = dict(cast(nn.Module, self._model).named_modules())
        rows = []
        for name, mask in self.masks.items():
            index = self._set.mask_of[name]
            stacks = cast(nn.ModuleDict, modules[name].parametrizations)
            for tensor_name in masked_tensors(modules[name]):  # a neuron mask gates the bias too
                if tensor_name in stacks:
                    tensors.append(cast(torch.Tensor, stacks[tensor_name].original))
                    layers.append(index)
                    rows.append(mask.rows if mask.heads else None)
        return PrunedWeights(tensors, layers, rows)

    # --------------------------------------------------------------- per step
    def phase(self, position: float) -> Phase:
        """The phase at ``position``: ``"warmup"``, ``"pruning"`` or ``"frozen"``."""
        return self.schedule.phase(position)

    def before_optimizer_step(self, position: float, lr: float | None = None) -> None:
        """Call after backward, before ``optimizer.step()``.

        In the pruning phase, adds ``lambda * dR/dM`` to M's gradients (lambda scheduled, or moved
        by the controller towards its target); outside it, drops M's gradients so the masks stay.
        With ``aux_optimizer="sgd"``/``"normalized_sgd"`` it also steps M. Masks without a
        gradient (frozen or unused layers) are not pushed; when no mask has one (a skipped batch)
        nothing happens, and the controller does not move lambda.

        Args:
            position: Where training is, in the unit of ``warmup``/``ramp``/``freeze``.
            lr: The aux learning rate for the SGD step of M (default ``aux_lr``).

        Raises:
            UnreachableTargetError: With ``target_flops`` below the share of layers left dense.

        """
        state = self._step_state()
        state.position = position
        if self._calls.ready:
            self._calls.detach()  # every layer call of the first forward(s) is recorded: stop recording
        if self.controller is not None and state.flops is None and self.target_metric == "flops":
            self._init_flops(state)
        if all(aux.grad is None for aux in self._set.aux):
            return  # a skipped batch or frozen layers: no data gradient, no push, lambda unchanged
        if self.phase(position) == "pruning":
            strength = self._lambda_for_step(position, state)
            add_regularizer_grad(self._set.masks, self.regularizer, strength, state.gates, state.costs)
        else:
            for aux in self._set.aux:
                aux.grad = None
        if self.aux_optimizer != "shared":
            aux_sgd_step(
                self._set.aux, self.aux_lr if lr is None else lr, normalize=self.aux_optimizer == "normalized_sgd"
            )

    def after_optimizer_step(self) -> None:
        """Call after ``optimizer.step()``: restore pruned weights, update gates and event counts."""
        state = self._step_state()
        if state.keeper is not None:
            state.keeper.restore(state.gates)
        if self._floor is not None:
            self._floor.apply(self._set.aux, self._floor_fraction(state))
        if state.bound is not None:
            if self.ramp_tolerance is not None and self.controller is not None:
                total, base = state.bound_units
                state.bound.set_required(total * (self._bound_fraction(state.position) - base))
            state.bound.apply(self._set.aux)
        gates = self._set.hard_gates()
        opened = self._set.open_entries(gates)
        with torch.no_grad():
            change = torch._foreach_sub(gates, state.gates)
            if self.hysteresis > 0:
                torch._foreach_add_(list[torch.Tensor](self._set.aux), change, alpha=self.hysteresis)
        self.events.record(state.gates, gates, state.open, opened, change)
        if state.keeper is not None:
            state.keeper.update(change)
        state.gates, state.open = gates, opened

    def _lambda_for_step(self, position: float, state: _StepState) -> float | torch.Tensor:
        if self.controller is None:
            return self.strength * self.schedule.ramp_factor(position)
        return self.controller.update(position, 1.0 - self._kept_fraction(state))

    def _kept_fraction(self, state: _StepState) -> torch.Tensor:
        """The controlled quantity, kept fraction of masked weights or of dense FLOPs, on the device."""
        if self.target_metric == "sparsity" or state.flops is None:
            return self._set.open_weights(state.open).sum() / self._set.total_weights
        return state.flops.ratio(state.gates, state.open)

    def kept_flops(self) -> KeptFlops | None:
        """The kept-FLOPs function of the masks (``None`` before the FLOPs of the layers are known)."""
        if self._kept is not None or self._model is None or not self.masks:
            return self._kept
        if self.coupling is not None and self._layer_flops is not None:
            total, per_layer = self._layer_flops
            self._kept = KeptFlops.units(total, per_layer, self.coupling, self._set.mask_of, self._set.entry_counts)
            return self._kept
        if self._layer_flops is not None:
            total, per_layer = self._layer_flops
        elif self._calls.ready:
            per_layer = {k: float(v) for k, v in self._calls.dense(self._model).items()}
            total = sum(per_layer.values())
        else:
            return None
        self._kept = KeptFlops.weights(total, per_layer, self._set.mask_of, self._set.entry_counts)
        return self._kept

    def _init_flops(self, state: _StepState) -> None:
        """What a FLOPs target needs: the kept ratio, the bound, the costs."""
        kept = self.kept_flops()
        if kept is None:
            raise RuntimeError("target_flops needs one forward pass of the model before the first optimizer step.")
        kept.to(self._set.device)
        self._check_reachable(kept)
        state.flops = kept
        if self.controller is not None:
            if self.coupling is not None:
                wanted = self._bound_fraction(None)
                bound = StructuredBound(kept, self._set.entry_counts, wanted, 1e-3 * self.options.init_scale)
                state.bound = bound if bound.enabled or self.ramp_tolerance is not None else None
            else:
                state.bound = self._target_bound(kept.savings, 1.0, kept.base)
                state.bound_units = (1.0, kept.base)
        entries = sum(self._set.entry_counts)
        saved = sum(c * n for c, n in zip(kept.savings, self._set.entry_counts, strict=True))
        if self.cost_aware and saved > 0:
            state.costs = [c * entries / saved for c in kept.savings]

    # ---------------------------------------------------------------- reading
    def lambda_at(self, position: float) -> float:
        """The lambda in force at ``position`` (the controller's last output while it is active)."""
        if self.controller is None or self.phase(position) != "pruning":
            return self.strength * self.schedule.ramp_factor(position)
        return self.controller.output

    def metrics(self, position: float) -> dict[str, float]:
        """Statistics now, read from the device in one go; event counts since the last call are consumed.

        Keys: ``auxprune/sparsity``, ``compression``, ``lambda``, ``phase``, ``regularizer``,
        ``pruned``/``recovered`` (since the last call), ``pruned_total``/``recovered_total``,
        ``target`` (with a target), ``flops_ratio`` (once a forward pass was seen),
        ``nonfinite_layers`` (layers whose M is NaN or infinite, listed in
        [`nonfinite`][lightning_auxprune.pruner.AuxPruner.nonfinite]:
        they read as pruned, so the other figures are then not meaningful) and ``density/<layer>``.
        """
        state = self._step_state()
        lam = self.controller.lam if self.controller is not None else torch.zeros((), dtype=torch.float64)
        if self._calls.ready:
            self._calls.detach()
        kept = self.kept_flops()
        flops_ratio = kept.ratio(state.gates, state.open) if kept is not None else torch.full((), math.nan)
        device_values = torch.cat(
            [
                state.open,
                self._set.nonfinite_layers().to(state.open.device),
                regularizer_total(self._set.masks, self.regularizer).reshape(1).to(state.open.device),
                self.events.counts.to(state.open.device),
                lam.reshape(1).to(state.open.device),
                flops_ratio.reshape(1).to(state.open.device, torch.float64),
            ]
        ).tolist()
        self.events.counts[2:] = 0.0
        count = len(self._set)
        opened, broken, rest = device_values[:count], device_values[count : 2 * count], device_values[2 * count :]
        self.nonfinite = [layer for layer, k in self._set.mask_of.items() if broken[k]]
        self.collapsed = [layer for layer, k in self._set.mask_of.items() if opened[k] == 0]
        regularizer, pruned_total, recovered_total, pruned, recovered, controller_lambda, kept_flops = rest
        densities = {layer: opened[k] / self._set.entry_counts[k] for layer, k in self._set.mask_of.items()}
        open_weights = sum(o * f for o, f in zip(opened, self._set.fan_ins, strict=True))
        total = float(self._set.total_weights)
        phase = self.phase(position)
        in_control = self.controller is not None and phase == "pruning"
        metrics: dict[str, float] = {
            "auxprune/sparsity": 1.0 - open_weights / total,
            "auxprune/compression": total / max(open_weights, 1.0),
            "auxprune/lambda": controller_lambda if in_control else self.strength * self.schedule.ramp_factor(position),
            "auxprune/phase": float(PHASE_CODE[phase]),
            "auxprune/regularizer": regularizer,
            "auxprune/pruned": float(round(pruned)),
            "auxprune/recovered": float(round(recovered)),
            "auxprune/pruned_total": float(round(pruned_total)),
            "auxprune/recovered_total": float(round(recovered_total)),
            "auxprune/nonfinite_layers": float(len(self.nonfinite)),
            "auxprune/closed_layers": float(len(self.collapsed)),
        }
        if self.controller is not None:
            metrics["auxprune/target"] = self.controller.target_at(position)
        for name, density in densities.items():
            metrics[f"auxprune/density/{name}"] = density
        if kept is not None:
            metrics["auxprune/flops_ratio"] = kept_flops
        return metrics

    def kept_fraction(self) -> float:
        """The controlled quantity now: kept fraction of the masked weights, or of the dense FLOPs."""
        state = self._step_state()
        if self.target_metric == "flops" and state.flops is None and self.kept_flops() is not None:
            self._init_flops(state)
        return float(self._kept_fraction(state))

    def table(self) -> str:
        """The per-layer table: weights, kept, density, units, FLOPs."""
        kept = self.kept_flops()
        if kept is None:
            return layer_table(layer_stats(self.masks))
        gates = self._set.hard_gates()
        opened = self._set.open_entries(gates)
        layers = kept.layers_kept(gates, opened)
        return layer_table(layer_stats(self.masks), kept.per_layer, layers, float(kept.ratio(gates, opened)))

    def hparams(self) -> dict[str, Any]:
        """Every resolved setting as a flat dict of numbers, strings and booleans (for run configs).

        Lists (``include``, ...) are joined with commas; ``None`` is written ``"None"``.

        Examples:
            >>> hp = AuxPruner(target_sparsity=0.9, ramp=10).hparams()
            >>> hp["target_sparsity"], hp["granularity"], hp["ramp"], hp["include"]
            (0.9, 'weight', 10, 'None')

        """
        controller = self.controller
        values: dict[str, Any] = {
            **asdict(self.options),
            **asdict(self.schedule),
            "strength": self.strength,
            "regularizer": self.regularizer,
            "aux_lr": self.aux_lr,
            "aux_optimizer": self.aux_optimizer,
            "include": self.include,
            "exclude": self.exclude,
            "layer_types": self.layer_types,
            "restore_pruned_weights": self.restore_pruned_weights,
            "target_sparsity": controller.final if controller and self.target_metric == "sparsity" else None,
            "target_flops": 1.0 - controller.final if controller and self.target_metric == "flops" else None,
            "target_gain": controller.gain if controller else None,
            "target_p_gain": controller.p_gain if controller else None,
            "target_min_strength": controller.min_strength if controller else None,
            "target_end": controller.end if controller else None,
            "target_tolerance": self.target_tolerance,
            "ramp_tolerance": self.ramp_tolerance,
            "hysteresis": self.hysteresis,
            "cost_aware": self.cost_aware,
            "min_units": self.min_units,
            "min_unit_fraction": self.min_unit_fraction,
            "min_uniform_share": self.min_uniform_share,
            "keep_output_layer": self.keep_output_layer,
            "coupled": self.coupled,
        }
        return {key: _loggable(value) for key, value in values.items()}

    def layer_rows(self) -> list[dict[str, Any]]:
        """The per-layer table as rows (layer, shape, weights, kept, density, units, FLOPs dense and kept)."""
        kept = self.kept_flops()
        dense = kept.per_layer if kept is not None else {}
        gates = self._set.hard_gates()
        kept_per_layer = kept.layers_kept(gates, self._set.open_entries(gates)) if kept is not None else {}
        rows = []
        for s in layer_stats(self.masks):
            flops = dense.get(s.name)
            rows.append(
                {
                    "layer": s.name,
                    "shape": "x".join(map(str, s.shape)),
                    "weights": s.total,
                    "kept": s.open,
                    "density": s.density,
                    "units": s.units,
                    "units_kept": s.open_units,
                    "flops_dense": None if flops is None else round(flops),
                    "flops_kept": None if flops is None else round(kept_per_layer[s.name]),
                }
            )
        return rows

    def settings(self) -> dict[str, Any]:
        """The resolved settings (what a checkpoint is compared against on resume)."""
        return {
            "options": asdict(self.options),
            "schedule": asdict(self.schedule),
            "strength": self.strength,
            "regularizer": self.regularizer,
        }

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Events, the controller's lambda and the settings; the masks themselves are model parameters."""
        return {
            "version": STATE_VERSION,
            "events": self.events.state_dict(),
            "controller": self.controller.state_dict() if self.controller is not None else None,
            **self.settings(),
            "hparams": self.hparams(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> list[str]:
        """Resume from ``state_dict`` (or from a version-0.1 callback state).

        Returns:
            Differences between the saved settings and this pruner's that change the run's
            course (schedule, strength, regularizer, target, floors, bounds, every setting of
            [`hparams`][lightning_auxprune.pruner.AuxPruner.hparams]), for the caller to report.

        Raises:
            ValueError: If the masks were trained with other
                [`MaskOptions`][lightning_auxprune.options.MaskOptions] (granularity, STE, gradient
                rules): such masks cannot be continued.

        """
        state = upgrade_state(state)
        if state["options"] != asdict(self.options):
            raise ValueError(
                f"The checkpoint was trained with mask options {state['options']}, this pruner has "
                f"{asdict(self.options)}. Resume with the same options."
            )
        self.events.load_state_dict(state["events"])
        differences = []
        saved = state.get("controller")
        if self.controller is not None and saved is not None:
            self.controller.load_state_dict(saved)
        elif (self.controller is None) != (saved is None):
            differences.append(
                "the checkpoint was trained "
                f"{'with' if saved is not None else 'without'} a lambda controller, this one "
                f"{'uses one' if self.controller is not None else 'does not'}"
            )
        mine = self.settings()
        for key in ("schedule", "strength", "regularizer"):
            if state[key] != mine[key]:
                differences.append(f"{key}: checkpoint {state[key]}, now {mine[key]}")
        covered = {*mine["options"], *mine["schedule"], "strength", "regularizer"}
        hparams = self.hparams()
        for key, saved_value in state.get("hparams", {}).items():  # older states have none
            if key not in covered and key in hparams and hparams[key] != saved_value:
                differences.append(f"{key}: checkpoint {saved_value}, now {hparams[key]}")
        self.reset()
        return differences


def _on_device(inputs: Any, model: nn.Module) -> Any:
    """``inputs`` (a tensor, tuple or dict of tensors) moved to the device of ``model``'s first parameter."""
    parameter = next(iter(model.parameters()), None)
    if parameter is None:
        return inputs
    if isinstance(inputs, torch.Tensor):
        return inputs.to(parameter.device)
    if isinstance(inputs, dict):
        return {k: _on_device(v, model) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return tuple(_on_device(v, model) for v in inputs)
    return inputs


def _loggable(value: Any) -> Any:
    """A value every logger's hyperparameter table takes: lists joined, ``None`` as a string."""
    if value is None:
        return "None"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return value


def upgrade_state(state: dict[str, Any]) -> dict[str, Any]:
    """Convert a version-0.1 callback state (``schedule`` holding ``strength`` and ``unit``) to the current one.

    Examples:
        >>> old = {"schedule": {"strength": 1e-3, "unit": "step", "warmup": 2, "ramp": 0.0, "freeze": 40},
        ...        "options": {}, "regularizer": "count", "controller": None,
        ...        "events": {"previous": {}, "pruned_total": 3, "recovered_total": 1,
        ...                   "pruned_since": 0, "recovered_since": 0}}
        >>> new = upgrade_state(old)
        >>> new["version"], new["strength"], new["schedule"]
        (2, 0.001, {'warmup': 2, 'ramp': 0.0, 'freeze': 40})

    """
    if state.get("version", 1) >= STATE_VERSION:
        return state
    required = {"schedule", "options", "regularizer", "events"}
    missing = required - set(state)
    if missing or "strength" not in state["schedule"]:
        raise ValueError(
            f"Unrecognised pruning state (missing {sorted(missing) or ['schedule.strength']}). It was not written "
            "by lightning-auxprune 0.1 or later; bake the checkpoint's model (lightning_auxprune.bake_state_dict) "
            "and start a new pruning run from it."
        )
    schedule = dict(state["schedule"])
    strength = schedule.pop("strength")
    schedule.pop("unit", None)
    return {**state, "version": STATE_VERSION, "schedule": schedule, "strength": strength}
