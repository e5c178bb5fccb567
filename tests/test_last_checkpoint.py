"""last.ckpt holds the state after the latest validation and at the end of fit, not the best one."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.run_folder import RunConfig, make_callbacks


class WorseningModel(L.LightningModule):
    """A BoringModel whose validation loss grows every epoch, so the first validation is the best."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", float(self.trainer.global_step))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=2)  # 4 steps an epoch


def fit(tmp_path, callbacks_extra=(), **trainer_args) -> L.Trainer:
    run = RunConfig(name="x", root=str(tmp_path), monitor="val/loss", monitor_mode="min")
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        callbacks=[*make_callbacks(run, tmp_path, with_loggers=False), *callbacks_extra],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_args,
    )
    trainer.fit(WorseningModel(), loader(), loader())
    return trainer


def saved_step(path) -> int:
    return torch.load(path, map_location="cpu", weights_only=False)["global_step"]


@pytest.mark.parametrize(
    "trainer_args, final_step",
    [
        (dict(max_epochs=3), 12),  # fit ends on a validation that is not the best
        (dict(max_steps=6, max_epochs=-1), 6),  # fit ends between validations, mid-epoch
    ],
)
def test_last_checkpoint_is_the_final_state_not_the_best(tmp_path, trainer_args, final_step):
    trainer = fit(tmp_path, **trainer_args)
    assert trainer.global_step == final_step
    checkpoints = tmp_path / "checkpoints"
    assert saved_step(checkpoints / "last.ckpt") == final_step
    (best,) = checkpoints.glob("best-*.ckpt")
    assert saved_step(best) == 4  # the first validation, the lowest val/loss


class Interrupt(L.Callback):
    """Stops fit with an error after `step` optimizer steps, as a killed or crashed run would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError("interrupted")


def test_a_fit_that_ended_is_marked_and_an_interrupted_one_is_not(tmp_path):
    from lightning_modules.run_folder import LastCheckpoint, finished_checkpoint

    finished, interrupted = tmp_path / "finished" / "version_0", tmp_path / "interrupted" / "version_0"
    fit(finished, max_epochs=2)
    with pytest.raises(RuntimeError, match="interrupted"):
        fit(interrupted, max_epochs=3, callbacks_extra=[Interrupt(6)])
    assert (interrupted / "checkpoints" / "last.ckpt").is_file()  # from the validation after epoch 1
    assert not (interrupted / "checkpoints" / LastCheckpoint.FIT_COMPLETE).exists()
    assert finished_checkpoint(tmp_path / "interrupted") is None
    assert finished_checkpoint(tmp_path / "finished") == finished / "checkpoints" / "last.ckpt"
    marker = json.loads((finished / "checkpoints" / LastCheckpoint.FIT_COMPLETE).read_text())
    assert marker["global_step"] == 8 == saved_step(finished / "checkpoints" / "last.ckpt")
