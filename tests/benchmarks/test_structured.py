"""The structured benchmark: its quick mode, the Torch-Pruning peer hitting its budget, the summary."""

import json
import subprocess
import sys
import time
from operator import attrgetter
from pathlib import Path

import lightning as L
import pytest
import torch

from benchmarks import structured
from benchmarks.peers import TorchPruningFlops
from examples.classifier import ImageClassifier
from lightning_auxprune import AuxMaskPruning
from lightning_auxprune.flops import count_flops


class EpochOne:
    """What TorchPruningFlops reads of a Trainer at the start of epoch 1."""

    current_epoch = 1
    strategy = type("S", (), {"setup_optimizers": staticmethod(lambda trainer: None)})()


def test_quick_grid_writes_records_summary_and_plots(tmp_path, fake_data_dir):
    out, summary, md, plots = tmp_path / "runs.jsonl", tmp_path / "s.json", tmp_path / "s.md", tmp_path / "img"
    argv = ["--quick", "--models", "vgg", "--seeds", "0", "--methods", "autoprune", "tp_l1_oneshot"]
    argv += ["--data-dir", str(fake_data_dir), "--out", str(out), "--summary", str(summary)]
    argv += ["--markdown", str(md), "--plots", str(plots)]
    records = structured.main(argv)
    assert [(r.method, r.setting) for r in records] == [("dense", 0.0), ("autoprune", 0.5), ("tp_l1_oneshot", 0.5)]
    tp = records[2]
    assert tp.flops_ratio <= 0.5  # the peer is cut to its budget
    saved = json.loads(summary.read_text())["vgg"]
    assert set(saved["methods"]) == {"autoprune", "tp_l1_oneshot"}
    assert "| tp_l1_oneshot | 0.50 |" in md.read_text()
    assert (plots / "structured_vgg.png").stat().st_size > 0
    assert "![vgg: test accuracy against FLOPs kept](img/structured_vgg.png)" in md.read_text()  # next to its page
    again = structured.main(argv)  # resumes: nothing is run twice
    assert [r.accuracy for r in again] == [r.accuracy for r in records]
    assert len(out.read_text().splitlines()) == 3


@pytest.mark.parametrize("importance", ["l2", "group_norm", "taylor"])
def test_torch_pruning_reaches_each_scheduled_budget(importance):
    L.seed_everything(0)
    model = ImageClassifier(arch="resnet20")
    example = torch.zeros(1, 1, 28, 28)
    dense = count_flops(model, example)
    callback = TorchPruningFlops(importance, {1: 0.6}, example, keep=["net.fc"])
    callback._batch = (torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,)))

    callback.on_train_epoch_start(EpochOne(), model)
    assert count_flops(model, example) <= 0.6 * dense
    assert count_flops(model, example) > 0.45 * dense  # small steps: it stops near the budget
    assert model.net.fc.out_features == 10


def test_flops_at_half_a_point_is_the_cheapest_budget_within_it():
    common = {"model": "m", "train_images": 100, "epochs": 2, "seed": 0}
    rows = [{**common, "method": "dense", "setting": 0.0, "accuracy": 0.90, "flops_ratio": 1.0}]
    rows += [
        {**common, "method": "autoprune", "setting": b, "accuracy": a, "flops_ratio": f}
        for b, a, f in [(0.5, 0.899, 0.49), (0.35, 0.896, 0.34), (0.25, 0.89, 0.24)]
    ]
    summary = structured.aggregate(rows)
    assert summary["m"]["methods"]["autoprune"]["flops_at_0.5pt"] == pytest.approx(0.34)


def test_points_are_compared_with_dense_on_their_own_seeds():
    common = {"model": "m", "train_images": 100, "epochs": 2}
    rows = [
        {**common, "seed": 0, "method": "dense", "setting": 0.0, "accuracy": 0.90, "flops_ratio": 1.0},
        {**common, "seed": 1, "method": "dense", "setting": 0.0, "accuracy": 0.86, "flops_ratio": 1.0},
        # seed 1 only: 0.87 beats its own dense (0.86), though not the mean over both seeds (0.88)
        {**common, "seed": 1, "method": "tp_l1", "setting": 0.5, "accuracy": 0.87, "flops_ratio": 0.5},
        # both seeds: mean 0.874 is within 0.5 pt of neither seed's mean dense (0.88)
        {**common, "seed": 0, "method": "autoprune", "setting": 0.5, "accuracy": 0.888, "flops_ratio": 0.4},
        {**common, "seed": 1, "method": "autoprune", "setting": 0.5, "accuracy": 0.86, "flops_ratio": 0.4},
    ]
    methods = structured.aggregate(rows)["m"]["methods"]
    assert methods["tp_l1"]["points"][0]["dense_accuracy"] == pytest.approx(0.86)
    assert methods["tp_l1"]["flops_at_0.5pt"] == pytest.approx(0.5)
    assert methods["autoprune"]["points"][0]["seeds"] == [0, 1]
    assert methods["autoprune"]["flops_at_0.5pt"] is None


def test_the_benchmarked_autoprune_uniform_is_the_neuron_recipe():
    """The grid pins its settings so records stay reproducible; a recipe change must rename the method."""
    from benchmarks.structured import NEURON_M
    from lightning_auxprune.presets import RECIPE_DEFAULTS

    assert RECIPE_DEFAULTS["neuron"] == NEURON_M | {"min_uniform_share": 1.0}
    model = ImageClassifier(arch="vgg")
    benchmarked = structured.METHODS["autoprune_uniform"].callbacks(model, 0.35, 8)[0].pruner.hparams()
    recipe = AuxMaskPruning.recipe(max_epochs=8, target_flops=0.35, granularity="neuron", print_table=False)
    assert benchmarked == recipe.pruner.hparams()


def test_the_spread_variants_change_only_what_they_name():
    model = ImageClassifier(arch="vgg")
    recipe, uniform, early, late = (
        structured.METHODS[name].callbacks(model, 0.35, 8)[0].pruner.hparams()
        for name in ("autoprune", "autoprune_uniform", "autoprune_early_freeze", "autoprune_late")
    )
    assert {k for k in recipe if recipe[k] != uniform[k]} == {"min_uniform_share"}
    assert uniform["min_uniform_share"] == 1.0
    assert {k for k in recipe if recipe[k] != early[k]} == {"ramp", "freeze", "target_end"}
    assert (early["warmup"], early["ramp"], early["freeze"]) == (recipe["warmup"], 2, 4)
    assert {k for k in recipe if recipe[k] != late[k]} == {"warmup", "ramp", "freeze"}  # the target at 4 as before
    assert (late["warmup"], late["ramp"], late["freeze"]) == (3, 1, 5)


def _stored(out, model, method, setting, seed, epochs, train_images):
    from benchmarks.harness import Record, append_record

    base = {"dense_accuracy": None, "accuracy": 0.9, "val_accuracy": 0.9, "compression": 2.0, "flops_ratio": 0.5}
    base |= {"step_time_ratio": None, "step_ms": 1.0, "train_images": train_images, "variant": "structured"}
    append_record(out, Record(model, method, setting, seed, epochs, **base))


def test_reverse_runs_the_same_grid_last_to_first():
    argv = ["--models", "vgg", "vit", "--methods", "autoprune", "tp_l1", "--budgets", "0.5", "0.25"]
    argv += ["--seeds", "0", "1"]
    forward = structured.jobs(structured.parse_args(argv))
    backward = structured.jobs(structured.parse_args([*argv, "--reverse"]))
    assert backward == forward[::-1] and len(set(forward)) == 2 * 2 * (1 + 2 * 2)
    assert forward[0] == ("vgg", "dense", 0.0, 0, 8) and forward[5] == ("vgg", "dense", 0.0, 1, 8)


def _quick_argv(tmp_path, data_dir, name, *extra):
    argv = ["--quick", "--models", "vgg", "--seeds", "0", "--methods", "tp_l1_oneshot", "--data-dir", str(data_dir)]
    argv += ["--out", str(tmp_path / f"{name}.jsonl"), "--summary", str(tmp_path / f"{name}.json")]
    return [*argv, "--markdown", str(tmp_path / f"{name}.md"), "--plots", str(tmp_path / "img"), *extra]


@pytest.mark.slow
def test_workers_train_the_same_runs_as_one_process(tmp_path, fake_data_dir):
    alone = structured.main(_quick_argv(tmp_path, fake_data_dir, "alone"))
    pooled = structured.main(_quick_argv(tmp_path, fake_data_dir, "pooled", "--workers", "2"))
    key = attrgetter("method", "setting", "seed")  # the pool appends in the order runs finish
    assert sorted(map(key, pooled)) == sorted(map(key, alone)) == [("dense", 0.0, 0), ("tp_l1_oneshot", 0.5, 0)]
    assert {key(r): r.accuracy for r in pooled} == {key(r): r.accuracy for r in alone}
    assert len((tmp_path / "pooled.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
def test_pooled_runs_that_fail_are_named_and_nothing_is_recorded_for_them(tmp_path):
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("")  # every run fails to prepare its data
    with pytest.raises(SystemExit, match="2 runs failed") as failure:
        structured.main(_quick_argv(tmp_path, not_a_folder, "pooled", "--workers", "2"))
    assert "('vgg', 'dense', 0.0, 0): " in str(failure.value)
    assert "('vgg', 'tp_l1_oneshot', 0.5, 0): " in str(failure.value)
    assert not (tmp_path / "pooled.jsonl").exists()


def test_the_pool_hands_out_dense_runs_first_then_whole_points():
    argv = [
        "--models",
        "vit",
        "vgg",
        "--methods",
        "tp_l1",
        "autoprune",
        "--budgets",
        "0.25",
        "0.5",
        "--seeds",
        "0",
        "1",
    ]
    args = structured.parse_args(argv)
    order = structured.pool_order(structured.jobs(args), args.methods, args.models)
    assert sorted(order) == sorted(structured.jobs(args))
    assert [job[1] for job in order[:4]] == ["dense"] * 4
    assert order[4:6] == [("vit", "tp_l1", 0.5, 0, 8), ("vit", "tp_l1", 0.5, 1, 8)]  # method, model, budget as asked
    assert order[-1] == ("vgg", "autoprune", 0.25, 1, 8)


def test_stored_runs_are_reused_only_for_the_same_training_set(tmp_path, fake_data_dir, monkeypatch):
    out = tmp_path / "runs.jsonl"
    argv = ["--quick", "--models", "vgg", "--seeds", "0", "--methods", "autoprune", "--data-dir", str(fake_data_dir)]
    argv += ["--out", str(out), "--summary", str(tmp_path / "s.json"), "--markdown", str(tmp_path / "s.md")]
    argv += ["--plots", str(tmp_path / "img")]
    monkeypatch.setattr(structured, "run", lambda *a, **k: pytest.fail("a stored run was trained again"))
    _stored(out, "vgg", "dense", 0.0, 0, 2, 400)  # --quick: 2 epochs on 400 images
    _stored(out, "vgg", "autoprune", 0.5, 0, 2, 400)
    assert [r.method for r in structured.main(argv)] == ["dense", "autoprune"]
    _stored(out, "vgg", "dense", 0.0, 0, 2, 10_000)  # the same run on the 10,000-image subset
    with pytest.raises(SystemExit, match="trained on 10,000 images; this command trains on 400"):
        structured.main(argv)


def test_a_summary_refuses_two_training_sets_of_one_model():
    rows = [
        {"model": "vgg", "method": "dense", "setting": 0.0, "seed": 0, "accuracy": 0.9, "train_images": n}
        for n in (10_000, 55_000)
    ]
    with pytest.raises(ValueError, match=r"\[10000, 55000\] training images"):
        structured.aggregate(rows)


def test_paired_prints_each_pair_and_the_mean(tmp_path, capsys):
    from benchmarks.harness import Record, append_record

    out = tmp_path / "runs.jsonl"
    base = {"epochs": 8, "dense_accuracy": None, "accuracy": 0.9, "compression": 2.0, "flops_ratio": 0.3}
    base |= {"step_time_ratio": None, "step_ms": 1.0, "train_images": 10, "variant": "structured"}
    for method, seed, val in (("a", 0, 0.90), ("b", 0, 0.88), ("a", 1, 0.86), ("b", 1, 0.87), ("a", 2, 0.5)):
        append_record(out, Record("vgg", method, 0.35, seed, val_accuracy=val, **base))
    assert structured.main(["--paired", "a", "b", "--out", str(out)]) == []
    printed = capsys.readouterr().out
    assert "vgg 0.35 seed 0: +2.00 pt" in printed and "vgg 0.35 seed 1: -1.00 pt" in printed
    assert "a - b: +0.50 pt over 2 paired runs (val_accuracy; sd 2.12, 1 below 0)" in printed  # seed 2: no partner
    structured.main(["--paired", "a", "b", "--paired-metric", "accuracy", "--out", str(out)])
    assert "a - b: +0.00 pt over 2 paired runs (accuracy; sd 0.00, 0 below 0)" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no run on the same"):
        structured.main(["--paired", "a", "c", "--out", str(out)])
    for method, val in (("a", 0.80), ("b", 0.70)):
        append_record(out, Record("resnet20", method, 0.35, 0, val_accuracy=val, **base))
    structured.main(["--paired", "a", "b", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "vgg: a - b: +0.50 pt over 2 paired runs" in printed and "resnet20: a - b: +10.00 pt over 1" in printed
    assert "\na - b: +3.67 pt over 3 paired runs" in printed
    structured.main(["--paired", "a", "b", "--models", "resnet20", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "vgg" not in printed and "\na - b: +10.00 pt over 1 paired runs (val_accuracy; 0 below 0)" in printed


def test_torch_pruning_keeps_a_vit_runnable():
    L.seed_everything(0)
    model = ImageClassifier(arch="vit")
    example = torch.zeros(1, 1, 28, 28)
    dense = count_flops(model, example)
    callback = TorchPruningFlops("l1", {1: 0.9}, example, keep=["net.head"])

    callback.on_train_epoch_start(EpochOne(), model)
    attention = model.net.blocks[0].attn
    assert (attention.num_heads, attention.embed_dim) == (4, 96)  # heads and width intact
    assert model.net.blocks[0].fc1.out_features < 192  # the MLP's hidden units go
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert 0.8 < count_flops(model, example) / dense <= 0.9


def test_the_recipe_ablations_change_only_what_they_name():
    model = ImageClassifier(arch="resnet20")
    recipe, uncoupled, costblind, adam = (
        structured.METHODS[name].callbacks(model, 0.35, 8)[0].pruner.hparams()
        for name in (
            "autoprune_uniform",
            "autoprune_uniform_uncoupled",
            "autoprune_uniform_costblind",
            "autoprune_uniform_adam",
        )
    )
    assert {k for k in recipe if recipe[k] != uncoupled[k]} == {"coupled"}
    assert (recipe["coupled"], uncoupled["coupled"]) == (True, False)
    assert {k for k in recipe if recipe[k] != costblind[k]} == {"cost_aware"}
    assert (recipe["cost_aware"], costblind["cost_aware"]) == (True, False)
    assert {k for k in recipe if recipe[k] != adam[k]} == {"aux_optimizer", "aux_lr", "strength", "target_min_strength"}
    assert (recipe["aux_optimizer"], adam["aux_optimizer"]) == ("normalized_sgd", "shared")


GRID_WITH_ONE_WORKER = """
import multiprocessing, os, time
from concurrent.futures import ProcessPoolExecutor
from benchmarks.structured import init_worker
context = multiprocessing.get_context("spawn")
with ProcessPoolExecutor(1, mp_context=context, initializer=init_worker, initargs=(1, os.getpid())) as pool:
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 120)
    time.sleep(120)
"""


def _running(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" not in status.read_text()
    except OSError:  # gone
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads process states from /proc")
def test_pool_workers_exit_when_the_grid_process_is_killed():
    grid = subprocess.Popen([sys.executable, "-c", GRID_WITH_ONE_WORKER], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(grid.stdout.readline())
        assert _running(worker)
    finally:
        grid.kill()  # no shutdown of the pool: what kill -9 or the out-of-memory killer does
        grid.wait()
    deadline = time.monotonic() + 30
    while _running(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(worker)
