from pathlib import Path

import pytest
import yaml

from examples.cli import main
from lightning_auxprune import AuxMaskPruning

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


def test_yaml_configs_build_the_callback(tmp_path, fake_data_dir):
    for config in sorted(CONFIGS.glob("*.yaml")):
        cli = main(["--config", str(config), "--data.data_dir", str(fake_data_dir)], run=False)
        callbacks = [c for c in cli.trainer.callbacks if isinstance(c, AuxMaskPruning)]
        expected = yaml.safe_load(config.read_text())["trainer"]["callbacks"][0]["init_args"]
        assert len(callbacks) == 1
        assert callbacks[0].pruner.strength == expected["strength"]
        assert callbacks[0].schedule.freeze == expected["freeze"]
        if "target_sparsity" in expected:
            assert callbacks[0].controller is not None
            assert callbacks[0].controller.final == expected["target_sparsity"]


def quick_fit(config, data_dir, root, strength, aux_lr, *extra):
    """`fit` from a config on the fake data: 3 epochs, pruning from the start, no logger."""
    overrides = {
        "--data.data_dir": str(data_dir),
        "--data.val_size": "100",
        "--trainer.max_epochs": "3",
        "--trainer.logger": "false",
        "--trainer.default_root_dir": str(root),
        "--trainer.enable_progress_bar": "false",
        "--trainer.callbacks.init_args.warmup": "0",
        "--trainer.callbacks.init_args.freeze": "null",
        "--trainer.callbacks.init_args.strength": str(strength),
        "--trainer.callbacks.init_args.aux_lr": str(aux_lr),
    }
    return main(["fit", "--config", str(config), *[x for kv in overrides.items() for x in kv], *extra])


def test_cli_fit_runs_with_the_callback(tmp_path, fake_data_dir):
    cli = quick_fit(CONFIGS / "lenet300100_autoprune.yaml", fake_data_dir, tmp_path, 0.01, 0.2)
    assert float(cli.trainer.callback_metrics["auxprune/sparsity"]) > 0


@pytest.mark.slow
def test_neuron_configs_train_and_shrink_exactly(tmp_path, fake_data_dir):
    import torch

    from lightning_auxprune import load_shrunk
    from lightning_auxprune.flops import count_flops

    for arch in ("vgg", "resnet20", "mobilenetv2"):
        small_data = ("--data.batch_size", "100", "--data.train_subset", "200")
        cli = quick_fit(CONFIGS / f"{arch}_neuron.yaml", fake_data_dir, tmp_path / arch, 0.05, 0.5, *small_data)
        model = cli.model
        assert float(cli.trainer.callback_metrics["auxprune/sparsity"]) > 0, arch
        assert cli.shrunk_path is not None and cli.shrunk_path.exists(), arch  # shrunk with on_unsafe="error"
        shrunk = load_shrunk(type(model)(arch=arch), str(cli.shrunk_path)).eval()
        x = torch.randn(4, 1, 28, 28)
        with torch.no_grad():
            torch.testing.assert_close(shrunk(x), model.eval()(x), rtol=1e-4, atol=1e-4)
        deployed = torch.load(cli.deployed_path, weights_only=False)  # the shrunk net, BatchNorm folded
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in deployed.modules()), arch
        with torch.no_grad():
            torch.testing.assert_close(deployed(x), shrunk(x), rtol=1e-4, atol=1e-4)
        ratio = count_flops(shrunk, x) / count_flops(model, x)
        assert ratio < 1.0, arch
        logged = float(cli.trainer.callback_metrics["auxprune/flops_ratio"])
        assert abs(logged - ratio) <= 0.005, (arch, logged, ratio)  # the logged ratio is the shrunk model's
