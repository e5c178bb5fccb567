"""ImitatorModule under a real Trainer: a tiny overfit, bf16-mixed, and DDP over 2 CPU processes."""

import functools

import lightning as L
import pytest
import torch
from fakes import small_fit_args

from datamodules import CrossDomainDataModule
from lightning_modules.imitator import ImitatorModule
from models.checkpoints import load_network
from models.imitator import Imitator


class RecordLosses(L.Callback):
    """Keeps the training loss of every step."""

    def __init__(self):
        self.losses = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))


def fit(root, tmp_path, max_steps, batch_size=8, lr=1e-3, **trainer_kwargs):
    L.seed_everything(0)
    module = ImitatorModule(Imitator(image_size=64), optimizer=functools.partial(torch.optim.Adam, lr=lr))
    data = CrossDomainDataModule(str(root), batch_size=batch_size, num_workers=0, pin_memory=False, val_fraction=0.2)
    recorder = RecordLosses()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=max_steps,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[recorder],
        limit_val_batches=1,
        num_sanity_val_steps=0,
        **trainer_kwargs,
    )
    trainer.fit(module, data)
    return trainer, recorder.losses


def test_tiny_overfit_drives_the_loss_down(tmp_path, screenshot_set):
    root = screenshot_set(count=10, size=64)  # 8 train rows = one batch
    trainer, losses = fit(
        root, tmp_path, max_steps=15, lr=3e-3, check_val_every_n_epoch=100, enable_checkpointing=False
    )
    assert len(losses) == 15 and torch.isfinite(torch.tensor(losses)).all()
    assert min(losses[-3:]) < 0.35 * losses[0], losses


def test_bf16_mixed_fit_on_cpu(tmp_path, screenshot_set):
    root = screenshot_set(count=20, size=64)
    trainer, losses = fit(root, tmp_path, max_steps=4, precision="bf16-mixed")
    assert trainer.global_step == 4 and all(torch.isfinite(torch.tensor(losses)))
    assert torch.isfinite(trainer.callback_metrics["val/psnr"])
    # The checkpoint alone rebuilds the net (float32 weights), without the training config.
    net = load_network(trainer.checkpoint_callback.last_model_path or trainer.checkpoint_callback.best_model_path)
    assert isinstance(net, Imitator) and net.image_size == 64
    assert next(net.parameters()).dtype == torch.float32


@pytest.mark.slow  # two DDP processes: ~14 s on a shared 2-core CPU
def test_ddp_two_cpu_processes_through_the_cli(tmp_path, screenshot_set, run_cli):
    """The real path: the CLI with the ddp + bf16 overlays, 2 gloo processes launched by Lightning."""
    root = screenshot_set(count=24, size=64)
    run_cli(
        "-m",
        "lightning_modules.cli",
        "fit",
        "--config",
        "experiments/demo/imitator.yaml",
        "--config",
        "experiments/trainer/ddp.yaml",
        "--config",
        "experiments/trainer/bf16.yaml",
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "2",
        "--trainer.max_steps",
        "2",
        "--trainer.limit_val_batches",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        *small_fit_args(root, tmp_path / "runs"),
        "--run.wandb",
        "false",
        timeout=240,
        repo_on_path=True,
    )
    runs = list((tmp_path / "runs" / "demo-imitator").iterdir())
    assert [r.name for r in runs] == ["version_0"]  # both ranks wrote into one run folder
    checkpoint = torch.load(runs[0] / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 2


def test_refuses_data_of_another_size_than_the_net_renders(tmp_path, screenshot_set):
    root = screenshot_set(count=12, size=32)
    module = ImitatorModule(Imitator(image_size=64))
    data = CrossDomainDataModule(str(root), batch_size=4, num_workers=0, pin_memory=False)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    with pytest.raises(ValueError, match="the data gives 32 px images but the imitator renders 64 px"):
        trainer.fit(module, data)
