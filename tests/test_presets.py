"""The presets: one source for the callback and the benchmarks, overrides checked alike, epochs from the Trainer."""

import pytest
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_auxprune import AuxMaskPruning
from lightning_auxprune.presets import PAPER_FIXED, RECIPE_FIXED, recipe_schedule
from tests.conftest import TinyNet, tiny_trainer, toy_loader


def test_a_recipe_without_max_epochs_is_scheduled_on_the_trainers(tmp_path):
    from_trainer = AuxMaskPruning.recipe(target_sparsity=0.5, print_table=False)
    given = AuxMaskPruning.recipe(target_sparsity=0.5, max_epochs=4, print_table=False)
    assert "scheduled on the Trainer's max_epochs" in repr(from_trainer)
    tiny_trainer(tmp_path, 4, [from_trainer]).fit(TinyNet(), toy_loader())
    assert from_trainer.schedule == given.schedule
    assert from_trainer.controller.end == given.controller.end == 2.0
    assert repr(from_trainer) == repr(given)


def test_a_recipe_needs_the_trainers_epochs(tmp_path):
    cb = AuxMaskPruning.recipe(target_sparsity=0.5, print_table=False)
    trainer = tiny_trainer(tmp_path, 1, [cb])
    trainer.fit_loop.max_epochs = -1
    with pytest.raises(MisconfigurationException, match=r"pass max_epochs=\.\.\. to recipe"):
        trainer.fit(TinyNet(), toy_loader())


@pytest.mark.parametrize(
    ("preset", "fixed"),
    [
        (lambda **o: AuxMaskPruning.paper(**o), sorted(PAPER_FIXED)[0]),
        (lambda **o: AuxMaskPruning.recipe(target_sparsity=0.5, **o), RECIPE_FIXED[0]),
    ],
)
def test_both_presets_check_their_overrides_alike(preset, fixed):
    with pytest.raises(ValueError, match=r"are fixed by the (paper|recipe) preset; use AuxMaskPruning\(...\)"):
        preset(**{fixed: 1})
    with pytest.raises(TypeError, match=r"\['strenght'\] are not AuxMaskPruning settings"):
        preset(strenght=1e-3)
    assert preset(exclude=["fc2"]).pruner.exclude == ["fc2"]  # anything else passes through


def test_the_recipe_schedule_is_the_one_the_benchmarks_use():
    from benchmarks.compare import callbacks_for
    from examples.classifier import ImageClassifier

    gmp = callbacks_for("gmp", 0.9, ImageClassifier(arch="lenet300100"), epochs=16, steps=1600)[0]
    assert gmp.end == recipe_schedule(16)["freeze"] * 100
    with pytest.raises(ValueError, match="at least 2 epochs"):
        recipe_schedule(1)
