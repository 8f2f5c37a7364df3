"""What the callback writes to each logger besides metrics: run config, per-layer table, progress bar."""

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from lightning_auxprune import AuxMaskPruning
from tests.conftest import TinyNet, tiny_trainer, toy_loader


def fit_with(tmp_path, loggers, **kwargs):
    torch.manual_seed(0)
    cb = AuxMaskPruning(strength=2e-3, aux_lr=0.05, target_sparsity=0.5, freeze=3, print_table=False, **kwargs)
    trainer = tiny_trainer(tmp_path, 3, [cb], logger=loggers, log_every_n_steps=4)
    trainer.fit(TinyNet(), toy_loader())
    return cb, trainer


def test_csv_gets_the_settings_and_the_layer_table(tmp_path):
    logger = CSVLogger(tmp_path, name="csv")
    fit_with(tmp_path, [logger])
    hparams = yaml.safe_load((Path(logger.log_dir) / "hparams.yaml").read_text())
    assert hparams["auxprune/target_sparsity"] == 0.5
    assert hparams["auxprune/granularity"] == "weight" and hparams["auxprune/freeze"] == 3
    assert hparams["auxprune/include"] == "None" and hparams["auxprune/interval"] == "epoch"
    with open(Path(logger.log_dir) / "auxprune_layers.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["layer"] for r in rows] == ["conv", "fc1", "fc2"]
    assert int(rows[1]["weights"]) == 32 * 64 and 0 < int(rows[1]["kept"]) <= 32 * 64


def test_tensorboard_gets_hparams_and_the_table_as_text(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path, name="tb")
    fit_with(tmp_path, [logger])
    events = EventAccumulator(logger.log_dir, size_guidance={"tensors": 0})
    events.Reload()
    tags = events.Tags()["tensors"]
    assert "auxprune/layers/text_summary" in tags
    text = events.Tensors("auxprune/layers/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| layer | shape | weights |" in text and "| fc1 |" in text
    assert (Path(logger.log_dir) / "hparams.yaml").exists()
    assert "auxprune/target_sparsity" in (Path(logger.log_dir) / "hparams.yaml").read_text()


def test_wandb_offline_run_holds_config_and_table(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = WandbLogger(project="auxprune-test", save_dir=str(tmp_path))
    fit_with(tmp_path, [logger])
    run_dir = Path(logger.experiment.dir)
    assert logger.experiment.config["auxprune/target_sparsity"] == 0.5
    assert logger.experiment.config["auxprune/granularity"] == "weight"
    logger.experiment.finish()
    tables = list((run_dir / "media" / "table").glob("auxprune/layers_*.table.json"))
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    assert table["columns"][:3] == ["layer", "shape", "weights"]
    assert [row[0] for row in table["data"]] == ["conv", "fc1", "fc2"]


def test_progress_bar_shows_sparsity_and_lambda_and_can_be_off(tmp_path):
    _, trainer = fit_with(tmp_path, False)
    assert {"sparsity", "lambda"} <= set(trainer.progress_bar_metrics)
    assert 0.0 <= float(trainer.progress_bar_metrics["sparsity"]) <= 1.0
    _, quiet = fit_with(tmp_path, False, progress_bar=False)
    assert not {"sparsity", "lambda"} & set(quiet.progress_bar_metrics)


def test_mask_images_and_histograms_reach_tensorboard_and_wandb(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = TensorBoardLogger(tmp_path, name="tb")
    fit_with(tmp_path, [tb], mask_images_every_n_epochs=2)
    events = EventAccumulator(tb.log_dir, size_guidance={"images": 0, "histograms": 0})
    events.Reload()
    assert "auxprune/masks/fc1" in events.Tags()["images"]
    assert len(events.Images("auxprune/masks/fc1")) == 1  # 3 epochs, every 2nd: once
    image = events.Images("auxprune/masks/fc1")[0]
    assert (image.height, image.width) == (32, 64)  # fc1's weight matrix, one pixel per weight
    assert "auxprune/m/conv" in events.Tags()["histograms"]

    pytest.importorskip("wandb")
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    wandb_logger = WandbLogger(project="auxprune-test", save_dir=str(tmp_path / "wb"))
    fit_with(tmp_path, [wandb_logger])
    run_dir = Path(wandb_logger.experiment.dir)
    wandb_logger.experiment.finish()
    for layer in ("conv", "fc1", "fc2"):
        images = list((run_dir / "media" / "images" / "auxprune" / "masks").glob(f"{layer}_*.png"))
        assert len(images) == 3  # 3 epoch ends


def test_mask_images_can_be_off(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = TensorBoardLogger(tmp_path, name="tb")
    fit_with(tmp_path, [tb], mask_images_every_n_epochs=0)
    events = EventAccumulator(tb.log_dir)
    events.Reload()
    assert not events.Tags()["images"]
    with pytest.raises(ValueError, match="mask_images_every_n_epochs=-1"):
        AuxMaskPruning(mask_images_every_n_epochs=-1)


@pytest.mark.parametrize(
    ("granularity", "files"),
    [("weight", {"baked_state_dict.pt", "sparse.pt"}), ("neuron", {"baked_state_dict.pt", "shrunk.pt"})],
)
def test_the_pruned_model_is_logged_as_a_wandb_artifact(tmp_path, monkeypatch, granularity, files):
    pytest.importorskip("wandb")
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = WandbLogger(project="auxprune-test", save_dir=str(tmp_path))
    logged = []
    monkeypatch.setattr(type(logger.experiment), "log_artifact", lambda run, artifact, *a, **k: logged.append(artifact))
    torch.manual_seed(0)
    model = TinyNet()
    model.example_input_array = torch.zeros(2, 16)
    cb = AuxMaskPruning(strength=2e-3, aux_lr=0.05, granularity=granularity, print_table=False)
    tiny_trainer(tmp_path, 2, [cb], logger=[logger]).fit(model, toy_loader())
    logger.experiment.finish()
    (artifact,) = [a for a in logged if a.type == "model"]  # (the layer table is a run_table artifact)
    assert artifact.type == "model" and artifact.name.startswith("auxprune-model-")
    assert set(artifact.manifest.entries) == files
    assert 0.0 <= artifact.metadata["sparsity"] < 1.0 and artifact.metadata["granularity"] == granularity


def test_the_wandb_workspace_builds_offline_with_one_density_chart():
    pytest.importorskip("wandb_workspaces")
    from lightning_auxprune.wandb_dashboard import build_workspace, main

    workspace = build_workspace("team", "pruning", accuracy_key="val/acc")
    names = [s.name for s in workspace.sections]
    assert names == [
        "Pruning progress",
        "Density by layer",
        "Prune and recovery events",
        "Accuracy vs compression",
        "Masks",
    ]
    (density,) = workspace.sections[1].panels
    assert density.metric_regex == "auxprune/density/.*"  # every layer in one chart
    scatter = workspace.sections[3].panels[0]
    assert (scatter.x.name, scatter.y.name, scatter.log_x) == ("auxprune/compression", "val/acc", True)
    assert [s.name for s in main(["--entity", "t", "--project", "p", "--dry-run"]).sections] == names


def test_tensorboard_gets_the_custom_scalars_layout(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2

    tb = TensorBoardLogger(tmp_path, name="tb")
    fit_with(tmp_path, [tb])
    events = EventAccumulator(tb.log_dir, size_guidance={"tensors": 0})
    events.Reload()
    (event,) = events.Tensors("custom_scalars__config__")
    layout = layout_pb2.Layout()
    layout.ParseFromString(event.tensor_proto.string_val[0])
    charts = {chart.title: list(chart.multiline.tag) for c in layout.category for chart in c.chart}
    assert charts["density by layer"] == ["auxprune/density/.*"]


def test_the_layer_table_can_also_go_out_every_epoch(tmp_path):
    logger = CSVLogger(tmp_path, name="csv")
    fit_with(tmp_path, [logger], layer_table_every_n_epochs=1)
    files = sorted(p.name for p in Path(logger.log_dir).glob("auxprune_layers*.csv"))
    assert files == ["auxprune_layers.csv"] + [f"auxprune_layers_epoch{e}.csv" for e in range(3)]
    with pytest.raises(ValueError, match="layer_table_every_n_epochs=-1"):
        AuxMaskPruning(layer_table_every_n_epochs=-1)
