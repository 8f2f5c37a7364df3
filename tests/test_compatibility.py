"""Setups that used to give silently wrong results: each is now correct or refused with advice.

docs/compatibility.md lists them; every line there points at a test here.
"""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import BackboneFinetuning
from torch import nn

from lightning_auxprune import AuxMaskPruning, find_masks, layer_stats
from tests.conftest import TinyNet, tiny_trainer, toy_loader


class WithBackbone(TinyNet):
    def __init__(self):
        super().__init__()
        self.backbone = nn.ModuleList([self.conv])


def densities(cb):
    return {s.name: s.density for s in layer_stats(cb.masks)}


def test_layers_frozen_by_backbone_finetuning_are_not_pruned(tmp_path):
    torch.manual_seed(0)
    model = WithBackbone()
    cb = AuxMaskPruning(strength=5e-3, aux_lr=0.05, include=["conv", "fc1"], print_table=False)
    freezer = BackboneFinetuning(unfreeze_backbone_at_epoch=10)
    tiny_trainer(tmp_path, 3, [cb, freezer]).fit(model, toy_loader())
    assert densities(cb)["conv"] == 1.0
    assert torch.equal(cb.masks["conv"].aux.detach(), torch.ones_like(cb.masks["conv"].aux))
    assert densities(cb)["fc1"] < 1.0  # the trainable layer was pruned


def test_layers_frozen_before_fit_keep_their_masks_open(tmp_path):
    torch.manual_seed(0)
    model = TinyNet()
    model.fc1.requires_grad_(False)
    cb = AuxMaskPruning(strength=5e-3, aux_lr=0.05, print_table=False)
    tiny_trainer(tmp_path, 3, [cb]).fit(model, toy_loader())
    assert densities(cb)["fc1"] == 1.0 and not cb.masks["fc1"].aux.requires_grad
    assert densities(cb)["fc2"] < 1.0


class SkipsEveryBatch(TinyNet):
    def training_step(self, batch, batch_idx):
        return None


@pytest.mark.parametrize("aux_optimizer", ["shared", "sgd"])
def test_skipped_batches_do_not_prune(tmp_path, aux_optimizer):
    cb = AuxMaskPruning(strength=5e-2, aux_lr=0.5, aux_optimizer=aux_optimizer, target_sparsity=0.9, freeze=3)
    with pytest.warns(UserWarning, match="kept 100% of the weights"):  # and says that the target was missed
        tiny_trainer(tmp_path, 2, [cb]).fit(SkipsEveryBatch(), toy_loader())
    assert all(d == 1.0 for d in densities(cb).values())
    assert cb.controller.output == 5e-2  # lambda did not grow on batches that carried no gradient
    assert all(bool((m.aux == 1.0).all()) for m in find_masks(cb.pruner._model).values())


def test_bf16_true_keeps_masks_float32_and_prunes(tmp_path):
    torch.manual_seed(0)
    model = TinyNet(optimizer="adam", lr=1e-2)
    cb = AuxMaskPruning(strength=2e-3, aux_lr=1e-3, print_table=False)
    tiny_trainer(tmp_path, 3, [cb], precision="bf16-true").fit(model, toy_loader())
    assert model.fc1.parametrizations.weight.original.dtype == torch.bfloat16
    assert all(m.aux.dtype == torch.float32 for m in cb.masks.values())
    assert any(not bool((m.aux == 1.0).all()) for m in cb.masks.values())  # Adam's 1e-3 steps did not round away


def test_with_lightning_modelpruning_is_refused(tmp_path):
    from lightning.pytorch.callbacks import ModelPruning

    other = ModelPruning("l1_unstructured", amount=0.5)
    for callbacks in ([AuxMaskPruning(print_table=False), other], [other, AuxMaskPruning(print_table=False)]):
        with pytest.raises(Exception, match="cannot be combined with Lightning's ModelPruning"):
            tiny_trainer(tmp_path, 1, callbacks).fit(TinyNet(), toy_loader())


def test_epoch_fractions_without_a_length_are_refused(tmp_path):
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield from toy_loader().dataset

    loader = torch.utils.data.DataLoader(Stream(), batch_size=32)
    cb = AuxMaskPruning(warmup=0.5, freeze=2, print_table=False)
    with pytest.raises(Exception, match="interval='step'"):
        tiny_trainer(tmp_path, 2, [cb], max_steps=20).fit(TinyNet(), loader)
    whole = AuxMaskPruning(warmup=1, freeze=2, print_table=False)  # whole epochs are fine
    tiny_trainer(tmp_path, 2, [whole], max_steps=20).fit(TinyNet(), loader)
    L.seed_everything(0)


def test_a_compiled_submodule_is_masked_once_and_bakes_to_its_own_keys():
    from lightning_auxprune import AuxPruner, bake

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    model[0] = torch.compile(model[0], backend="eager")
    keys = list(model.state_dict())
    assert keys[0] == "0._orig_mod.weight"
    pruner = AuxPruner(strength=0.05, aux_lr=1.0, aux_optimizer="sgd", init_scale=0.2)
    assert list(pruner.attach(model)) == ["0._orig_mod", "2"]
    assert list(find_masks(model)) == ["0._orig_mod", "2"]
    optimizer = torch.optim.SGD(pruner.parameter_groups(model), lr=0.1)
    x = torch.randn(32, 8)
    for step in range(5):
        model(x).pow(2).mean().backward()
        pruner.before_optimizer_step(float(step))
        optimizer.step()
        pruner.after_optimizer_step()
        optimizer.zero_grad()
    assert pruner.metrics(5.0)["auxprune/sparsity"] > 0
    baked = bake(model)
    assert list(baked.state_dict()) == keys
    torch.testing.assert_close(baked(x), model(x), rtol=0, atol=0)


class TiedDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.hidden = nn.Linear(8, 8)
        self.decoder = nn.Linear(8, 10, bias=False)
        self.decoder.weight = self.embed.weight


def test_tied_weights_are_refused_with_what_to_exclude():
    from lightning_auxprune import AuxPruner

    model = TiedDecoder()
    with pytest.raises(ValueError, match=r"'decoder.weight' is also \['embed.weight'\].*exclude=\['decoder'\]"):
        AuxPruner().attach(model)
    assert find_masks(model) == {}  # nothing was patched
    assert list(AuxPruner(exclude=["decoder"]).attach(model)) == ["hidden"]
    pair = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    pair[1].weight = pair[0].weight
    with pytest.raises(ValueError, match=r"exclude=\['0', '1'\]"):
        AuxPruner().attach(pair)


class NaNOnce(TinyNet):
    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        return loss * float("nan") if self.global_step == 5 else loss


def test_a_nan_batch_is_reported_not_counted_as_pruning(tmp_path):
    cb = AuxMaskPruning(strength=1e-3, aux_lr=0.05, log_every_n_steps=4, print_table=False)
    with pytest.warns(UserWarning, match=r"masks of \['conv', 'fc1', 'fc2'\] are NaN or infinite"):
        tiny_trainer(tmp_path, 2, [cb]).fit(NaNOnce(), toy_loader())
    metrics = cb.pruner.metrics(2.0)
    assert metrics["auxprune/nonfinite_layers"] == 3.0
    assert cb.pruner.nonfinite == ["conv", "fc1", "fc2"]


def test_narrowing_include_on_a_refit_is_refused(tmp_path):
    model = TinyNet()
    tiny_trainer(tmp_path, 1, [AuxMaskPruning(print_table=False)]).fit(model, toy_loader())
    narrowed = AuxMaskPruning(include=["fc1"], print_table=False)
    with pytest.raises(ValueError, match=r"\['conv', 'fc2'\] carry masks from an earlier attach/fit"):
        tiny_trainer(tmp_path, 1, [narrowed]).fit(model, toy_loader())


class NamesItsWeight(TinyNet):
    def configure_optimizers(self):
        return torch.optim.SGD([self.fc1.weight, self.fc2.weight], lr=0.1)


class GroupsByName(TinyNet):
    def configure_optimizers(self):
        decay = [p for n, p in self.named_parameters() if n.endswith(".weight")]
        rest = [p for n, p in self.named_parameters() if not n.endswith(".weight")]
        return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}])


class ListsSomeWeights(TinyNet):
    def configure_optimizers(self):
        return torch.optim.SGD([p for n, p in self.named_parameters() if n.startswith("fc2")], lr=0.1)


def test_optimizer_groups_built_by_name_see_the_original_names(tmp_path):
    model = GroupsByName()
    trainer = tiny_trainer(tmp_path, 1, [AuxMaskPruning(print_table=False)])
    trainer.fit(model, toy_loader())
    decay, rest, aux = trainer.optimizers[0].param_groups
    stored = {id(m.parametrizations.weight.original) for m in (model.conv, model.fc1, model.fc2)}
    assert {id(p) for p in decay["params"]} == stored and decay["weight_decay"] == 0.1
    assert {id(p) for p in rest["params"]} == {id(model.conv.bias), id(model.fc1.bias), id(model.fc2.bias)}
    assert aux["name"] == "auxprune"
    assert "fc1.parametrizations.weight.original" in dict(model.named_parameters())  # only while configuring
    assert "configure_optimizers" not in model.__dict__  # the class's method again after fit


def test_optimizers_missing_masked_weights_get_advice(tmp_path):
    with pytest.raises(Exception, match=r"passed a masked weight such as `self.fc1.weight`"):
        tiny_trainer(tmp_path, 1, [AuxMaskPruning(print_table=False)]).fit(NamesItsWeight(), toy_loader())
    with pytest.raises(Exception, match=r"The weights of \['conv', 'fc1'\] are in no optimizer group"):
        tiny_trainer(tmp_path, 1, [AuxMaskPruning(print_table=False)]).fit(ListsSomeWeights(), toy_loader())


class Lazy(TinyNet):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.LazyLinear(32)
        self.example_input_array = None  # nothing to run a forward pass on before pruning


def test_a_lazy_layer_is_materialized_by_the_example_input(tmp_path):
    model = Lazy()
    model.example_input_array = torch.zeros(1, 16)  # traced at setup: the lazy layer gets its weight
    cb = AuxMaskPruning(print_table=False)
    tiny_trainer(tmp_path, 1, [cb]).fit(model, toy_loader())
    assert "fc1" in cb.masks and cb.masks["fc1"].weight_shape == (32, 64)


class LBFGSNet(TinyNet):
    def configure_optimizers(self):
        return torch.optim.LBFGS(self.parameters(), lr=0.1)


class BuiltLate(L.LightningModule):
    def configure_model(self):
        self.fc = nn.Linear(16, 2)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self.fc(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class PartlyLate(BuiltLate):
    def __init__(self):
        super().__init__()
        self.early = nn.Linear(16, 16)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self.fc(self.early(batch[0])), batch[1])


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (Lazy, "a lazy layer\\): run one forward pass"),
        (PartlyLate, r"Layers \['fc'\] appeared after AuxMaskPruning.setup"),
        (LBFGSNet, "does not work with LBFGS"),
        (BuiltLate, "Layers created in configure_model do not exist yet"),
    ],
)
def test_unsupported_models_and_optimizers_get_advice(tmp_path, model, match):
    with pytest.raises(Exception, match=match):
        tiny_trainer(tmp_path, 1, [AuxMaskPruning(print_table=False)]).fit(model(), toy_loader())


def test_a_dense_checkpoint_is_refused_and_validate_with_a_checkpoint_does_not_warn(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    dense = TinyNet()
    trainer = tiny_trainer(tmp_path / "dense", 1, [ModelCheckpoint(dirpath=tmp_path / "d")], enable_checkpointing=True)
    trainer.fit(dense, toy_loader())
    ckpt = next((tmp_path / "d").glob("*.ckpt"))
    with pytest.raises(Exception, match="holds a model without masks"):
        tiny_trainer(tmp_path, 2, [AuxMaskPruning(print_table=False)]).fit(TinyNet(), toy_loader(), ckpt_path=ckpt)

    pruned = TinyNet()
    callbacks = [AuxMaskPruning(strength=2e-3), ModelCheckpoint(dirpath=tmp_path / "p")]
    saving = tiny_trainer(tmp_path / "p", 1, callbacks, enable_checkpointing=True)
    saving.fit(pruned, toy_loader())
    ckpt = next((tmp_path / "p").glob("*.ckpt"))
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        other = AuxMaskPruning(strength=5e-3, print_table=False)  # another schedule: irrelevant to validate
        tiny_trainer(tmp_path, 1, [other]).validate(pruned, toy_loader(), ckpt_path=ckpt)
    assert not [w for w in caught if "pruning schedule" in str(w.message)]


def test_bake_state_dict_refuses_neuron_masks_with_batchnorm():
    from lightning_auxprune import AuxPruner, bake_state_dict

    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    AuxPruner(granularity="neuron", include=["0"]).attach(net, torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="use bake\\(model\\) instead"):
        bake_state_dict(net.state_dict())


@pytest.mark.parametrize("name", ["FSDPStrategy", "DeepSpeedStrategy", "ModelParallelStrategy"])
def test_sharded_strategies_are_refused(name):
    """Lightning runs FSDP only on GPUs, so the refusal is checked on the hook itself."""
    import lightning.pytorch.strategies as strategies

    strategy = object.__new__(getattr(strategies, name))  # not set up: only its type matters here

    from types import SimpleNamespace

    trainer = SimpleNamespace(strategy=strategy, callbacks=[])
    with pytest.raises(Exception, match=f"does not support {name} yet.*Use strategy='ddp'"):
        AuxMaskPruning(print_table=False).setup(trainer, TinyNet(), "fit")


def test_deterministic_training_repeats_neuron_pruning_exactly(tmp_path):
    """``Trainer(deterministic=True)`` turns on ``torch.use_deterministic_algorithms``: no op of the
    masks' step, floor, bound or FLOPs count may refuse it, and two runs of one seed agree bit for bit."""

    def run(folder):
        L.seed_everything(0)
        cb = AuxMaskPruning(
            granularity="neuron",
            target_flops=0.5,
            warmup=2,
            ramp=8,
            aux_optimizer="normalized_sgd",
            aux_lr=0.2,
            strength=1e-2,
            min_uniform_share=0.5,
            interval="step",
            print_table=False,
        )
        tiny_trainer(tmp_path / folder, 2, [cb], deterministic=True).fit(TinyNet(), toy_loader())
        assert torch.are_deterministic_algorithms_enabled()
        return [mask.aux.detach().clone() for mask in cb.masks.values()], cb.pruner.metrics(16.0)

    try:
        first, metrics = run("a")
        second, _ = run("b")
    finally:
        torch.use_deterministic_algorithms(False)  # Lightning leaves it on after fit
    assert metrics["auxprune/flops_ratio"] < 0.9  # it pruned
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
