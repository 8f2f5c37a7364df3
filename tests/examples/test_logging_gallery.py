import json

from examples.logging_gallery import main


def test_gallery_writes_pictures_from_an_offline_wandb_run(tmp_path, fake_data_dir, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "img"
    argv = ["--data-dir", str(fake_data_dir), "--out", str(out), "--runs", str(tmp_path / "runs")]
    gallery = main([*argv, "--epochs", "2", "--train-subset", "400", "--val-size", "100"])
    assert [p.rsplit("/", 1)[-1] for p in gallery["images"]] == [
        "mask_net_conv1.png",
        "mask_net_conv2.png",
        "mask_net_fc1.png",
        "mask_net_fc2.png",
    ]
    assert all((out / name.rsplit("/", 1)[-1]).stat().st_size > 0 for name in gallery["images"])
    assert (out / "density_by_layer.png").stat().st_size > 5000
    assert json.loads((out / "gallery.json").read_text()) == gallery
