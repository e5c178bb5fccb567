"""Command line for every likeness training: `python -m lightning_modules.cli fit --config experiments/imitator.yaml`.

A LightningCLI over any LightningModule and LightningDataModule (`class_path` in the YAML), plus a
`run:` section (lightning_modules/run_folder.py) that puts the resolved config, checkpoints,
metrics and logs of a run in one folder. Configs compose left to right:
    python -m lightning_modules.cli fit --config experiments/imitator.yaml \
        --config experiments/trainer/ddp.yaml --config experiments/trainer/bf16.yaml
Resume the latest run of an experiment exactly with `--ckpt_path last` (or pick `--run.version`).
"""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

from lightning_modules.checkpoint_trust import check_module_checkpoint
from lightning_modules.run_folder import RunConfig, make_callbacks, make_loggers, resolve_run_dir


class SaveConfigToRun(SaveConfigCallback):
    """Writes config.yaml into the run folder and gives the whole config to W&B (rank 0)."""

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Send the resolved config to W&B, so runs compare on every setting (batch size, lr, ...)."""
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_hyperparams({"config": self.config.as_dict()})


class LikenessCLI(LightningCLI):
    """LightningCLI whose trainer writes into the run folder named by the `run:` section."""

    def add_arguments_to_parser(self, parser) -> None:
        """Add the `run:` section."""
        parser.add_class_arguments(RunConfig, "run")

    def parse_arguments(self, parser, args) -> None:
        """Parse; then check a --ckpt_path FILE, whose hyper-parameters LightningCLI merges into the config and
        builds the model from (a run's own, or a crafted one), before anything in it is imported."""
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and Path(ckpt_path).is_file():  # "last" (resolved by the trainer) names a run's own file
            check_module_checkpoint(ckpt_path)

    def instantiate_trainer(self, **kwargs) -> Trainer:
        """Resolve the run folder, then build the trainer with its loggers and checkpointing."""
        if self.subcommand != "fit":  # validate/test/predict read checkpoints and write no run folder
            return super().instantiate_trainer(**kwargs)
        run: RunConfig = self._get(self.config_init, "run")
        trainer_init = self._get(self.config_init, "trainer", default={})
        if trainer_init.get("logger") not in (None, True):
            raise ValueError("set loggers through the run: section (run.wandb), not trainer.logger")
        run_dir = resolve_run_dir(run, self._get(self.config, "ckpt_path"))
        kwargs.update(
            default_root_dir=str(run_dir),
            logger=make_loggers(run, run_dir),
            callbacks=list(trainer_init.get("callbacks") or []) + make_callbacks(run, run_dir),
        )
        return super().instantiate_trainer(**kwargs)


def main(args=None) -> LikenessCLI:
    """Run the CLI (args as a list for tests; None reads sys.argv)."""
    return LikenessCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=SaveConfigToRun,
        # The run folder is new for a new run and the same one on resume: rewrite config.yaml there.
        save_config_kwargs={"overwrite": True},
        args=args,
    )


if __name__ == "__main__":
    main()
