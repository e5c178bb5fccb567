"""Cross-domain regression (paper eq. 12): E, D and R learn from screenshots and photos through the frozen imitator.

Batches, train and val alike (datamodules.CrossDomainDataModule with `source`):
    {"target": {"image": (B, 3, S, S) [0, 1], "parameters": (B, 267), ...},
     "source": {"image": (P*K, 3, S, S) [0, 1], "identity": (P*K,) int64,
                "parameters": (P*K, 267) ground truth of a synthetic set, NaN for real photos}}
The frozen networks (imitator G, F_3d, F_id) come from their own files on every start and never enter this
module's checkpoints; `imitator_checkpoint` names an imitator run's checkpoint (see `find_checkpoint`).
One file (~380 lines): one LightningModule for eq. 12: its checks, shared step, extra terms, frozen-net hooks.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics import MeanMetric, MeanSquaredError

from game.parameters import check_same_table
from lightning_modules.checkpoint_trust import CheckedLoading
from losses import PAPER_OBJECTIVE, CrossDomainObjective, DomainBatch, Frozen, ObjectiveSettings
from models.checkpoints import build_network, find_checkpoint, load_network, network_spec
from models.face_geometry import build_face_geometry
from models.face_id import build_face_id
from models.regressor import Regressor
from models.vqvae2 import VQVAE2, Quantizer, VQVAE2Output

log = logging.getLogger(__name__)


class RegressionModule(CheckedLoading, LightningModule):
    """Trains an injected encoder (E, D) and regressor R on (screenshot, photo) batches with eq. 12."""

    def __init__(
        self,
        encoder: VQVAE2,
        regressor: Regressor,
        imitator_checkpoint: str,
        face_geometry: str | None = "landmarks",
        face_id: str | None = "dlib",
        face_geometry_checkpoint: str | None = None,
        face_id_checkpoint: str | None = None,
        objective: ObjectiveSettings = PAPER_OBJECTIVE,
        reconstruction_weight: float = 0.0,
        parameter_prior_weight: float = 0.0,
        screenshot_supervision_weight: float = 0.0,
        restore_against: Literal["screenshot", "imitator"] = "screenshot",
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
        **flat_objective: Any,
    ) -> None:
        """`flat_objective`: eq. 12's settings as top-level keys, as checkpoints from before `objective` hold them."""
        super().__init__()
        objective = ObjectiveSettings.of(objective, flat_objective)
        # {"class_path", "init_args"}: load_from_checkpoint of a module whose nets were saved as specs.
        encoder = build_network(encoder, "hyper_parameters['encoder']") if isinstance(encoder, dict) else encoder
        regressor = (
            build_network(regressor, "hyper_parameters['regressor']") if isinstance(regressor, dict) else regressor
        )
        # Networks as class path + init args (never pickled), so load_network(path, "encoder") rebuilds them
        # alone; optimizer and scheduler live in the run's config.yaml.
        self.save_hyperparameters(
            ignore=["encoder", "regressor", "objective", "optimizer", "scheduler", *flat_objective]
        )
        self.save_hyperparameters(
            {"encoder": network_spec(encoder), "regressor": network_spec(regressor), "objective": asdict(objective)}
        )
        if restore_against not in ("screenshot", "imitator"):
            raise ValueError(
                f"restore_against must be 'screenshot' (eq. 3) or 'imitator' (G(p_true)), got {restore_against!r}"
            )
        if reconstruction_weight > 0 and encoder.decoder is None:
            raise ValueError(
                "reconstruction_weight > 0 needs an image decoder: set "
                "model.init_args.encoder.init_args.reconstruct: true"
            )
        if reconstruction_weight == 0 and encoder.decoder is not None:
            raise ValueError(
                "the encoder has an image decoder (reconstruct: true) but reconstruction_weight is 0: "
                "its weights would never train (and DDP would stop on them); set one or the other"
            )
        self.encoder = encoder
        self.regressor = regressor
        self.optimizer = optimizer
        self.scheduler = scheduler

        self.imitator_file = find_checkpoint(imitator_checkpoint)
        imitator = load_network(self.imitator_file, "net")
        log.info("imitator G (frozen) from %s", self.imitator_file)
        sizes = {"encoder": encoder.image_size, "regressor": regressor.image_size, "imitator": imitator.image_size}
        if len(set(sizes.values())) != 1:
            raise ValueError(
                f"image sizes differ: {sizes} (imitator from {self.imitator_file}); the encoder and "
                f"regressor must work at the size the imitator renders"
            )
        # An extractor is built only for a term that is on: switching a loss off is an explicit weight 0.
        on = objective.lambda_consistency > 0
        f3d = self._extractor(
            "face_geometry",
            face_geometry,
            face_geometry_checkpoint,
            on and objective.weight_3d > 0,
            "weight_3d",
            build_face_geometry,
        )
        fid = self._extractor(
            "face_id", face_id, face_id_checkpoint, on and objective.weight_id > 0, "weight_id", build_face_id
        )
        self.objective = CrossDomainObjective(imitator, f3d, fid, objective)
        self.quantizers = [m for m in encoder.modules() if isinstance(m, Quantizer)]  # plain list: not submodules
        self.train_loss, self.val_loss = MeanMetric(), MeanMetric()
        # Parameter RMSE against ground truth where a set has it: screenshots always, synthetic photos too.
        self.param_rmse = nn.ModuleDict(
            {
                f"{stage}_{domain}": MeanSquaredError(squared=False)
                for stage in ("train", "val")
                for domain in ("source", "target")
            }
        )
        # DDP would broadcast every buffer from rank 0 each step, frozen networks' weights included (MBs of
        # identical data); they are identical on every rank already, so DDP is told to leave them alone.
        prefixes = tuple(self._frozen_prefixes())
        self._ddp_params_and_buffers_to_ignore = [
            name for name, _ in list(self.named_parameters()) + list(self.named_buffers()) if name.startswith(prefixes)
        ]

    @staticmethod
    def _extractor(key: str, name: str | None, checkpoint: str | None, needed: bool, weight: str, build):
        if not needed:
            return None
        if name is None:
            raise ValueError(
                f"model.init_args.{key} is null but L_consistency uses it (objective.{weight} > 0 and "
                f"objective.lambda_consistency > 0): name an extractor, or switch its term off with {weight}: 0"
            )
        return build(name, checkpoint)  # a file that does not load stops here, naming it and the alternatives

    # ---------------------------------------------------------------------------------------------- the networks

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Regress game parameters (B, 267) from images (B, 3, S, S) in [0, 1]."""
        return self.regressor(self.encoder(images).features).parameters

    def render(self, images: torch.Tensor) -> torch.Tensor:
        """The imitator's render of the parameters regressed from images: G(R(D(E(I))))."""
        return self.objective.restored.imitator(self(images)).float()

    def encode(self, images: torch.Tensor, split: int) -> tuple[VQVAE2Output, torch.Tensor, torch.Tensor]:
        """One encoder pass over [screenshots; photos] and L_differ of each part (eq. 4 is over screenshots).

        One pass, so the codebooks take ONE EMA / dead-code step per iteration from both domains together
        (k-means initialised on both). The encoder returns L_differ of the whole batch; each level's
        commitment alpha ||sg[e] - z||^2 is recomputed here on each part from the quantisers' inputs and codes.
        """
        kept: list[tuple[torch.Tensor, torch.Tensor]] = []
        hooks = [
            q.register_forward_hook(lambda module, args, out: kept.append((args[0], out[0]))) for q in self.quantizers
        ]
        try:
            encoded = self.encoder(images)
        finally:
            for hook in hooks:
                hook.remove()
        parts = []
        for rows in (slice(None, split), slice(split, None)):
            parts.append(
                sum(
                    q.alpha * F.mse_loss(codes[rows].detach().float(), z[rows].float())
                    for q, (z, codes) in zip(self.quantizers, kept)
                )
            )
        return encoded, parts[0], parts[1]

    # -------------------------------------------------------------------------------------- the shared step

    def model_step(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Train and val: encode both domains, regress, eq. 12. Returns total, named terms, p_target, p_source."""
        target, source = batch["target"], batch["source"]
        split = target["image"].shape[0]
        images = torch.cat([target["image"], source["image"]])
        encoded, differ_target, differ_source = self.encode(images, split)
        f, p = self.regressor(encoded.features)  # RegressorOutput(features, parameters)
        reference = target["image"]
        if self.hparams.restore_against == "imitator":
            # Not in the paper (eq. 3 compares with the screenshot): G(p_true) as the reference, so the
            # imitator's own error cancels out of L_restored.
            truth = self._truth(target, "restore_against: imitator")
            with torch.no_grad():
                reference = self.objective.restored.imitator(truth.to(p.dtype))
        total, terms = self.objective(
            DomainBatch(reference, f[:split], p[:split], differ_target),
            DomainBatch(source["image"], f[split:], p[split:], differ_source, source.get("identity")),
        )
        for name, (weight, value) in self.extra_terms(encoded, images, p, target).items():
            total = total + weight * value
            terms |= {name: value.detach(), "total": total.detach()}
        terms |= {f"codebook/{name}": value.detach().float() for name, value in encoded.stats.items()}
        return total, terms, p[:split], p[split:]

    def extra_terms(
        self, encoded: VQVAE2Output, images: torch.Tensor, p: torch.Tensor, target: dict
    ) -> dict[str, tuple[float, torch.Tensor]]:
        """The terms outside eq. 12, each off at weight 0 (the paper's setting): name -> (weight, value)."""
        h, split, extras = self.hparams, target["image"].shape[0], {}
        if h.reconstruction_weight > 0:  # E/D also reconstruct both domains' images
            reconstruction = F.mse_loss(self.encoder.decode(encoded.features).float(), images.float())
            extras["reconstruction"] = (h.reconstruction_weight, reconstruction)
        if h.parameter_prior_weight > 0:
            # A Gaussian prior pulling parameters the images say little about towards the neutral face, instead
            # of letting imitator error push them to the range limits.
            extras["parameter_prior"] = (
                h.parameter_prior_weight,
                (p.float() / self.regressor.parameter_range).pow(2).mean(),
            )
        if h.screenshot_supervision_weight > 0:
            # The screenshots' true parameters are free: an MSE on them teaches R the conditional mean (the
            # prior's mean for what a picture cannot show). Photos stay unsupervised.
            truth = self._truth(target, "screenshot_supervision_weight > 0").float()
            error = (p[:split].float() - truth) / self.regressor.parameter_range
            extras["screenshot_supervision"] = (h.screenshot_supervision_weight, error.pow(2).mean())
        return extras

    @staticmethod
    def _truth(target: dict, option: str) -> torch.Tensor:
        truth = target.get("parameters")
        if truth is None:
            raise ValueError(
                f"{option} needs the screenshots' true parameters in batch['target']['parameters'] "
                f"(a game set's parameters.npy or parameters.csv)"
            )
        return truth

    def _log_step(self, stage: str, batch: dict, total, terms, p_target, p_source) -> None:
        size = batch["target"]["image"].shape[0]
        loss = self.train_loss if stage == "train" else self.val_loss
        loss(total.detach(), weight=size)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, batch_size=size)
        for name, value in terms.items():
            if name != "total":  # the loss above
                self.log(
                    f"{stage}/{name}",
                    value,
                    on_step=stage == "train",
                    on_epoch=True,
                    batch_size=size,
                    sync_dist=stage == "val",
                )
        for domain, params, name in (("target", p_target, "target_param_rmse"), ("source", p_source, "param_rmse")):
            truth = batch[domain].get("parameters")
            valid = torch.isfinite(truth).all(1) if truth is not None else None
            if valid is not None and valid.any():  # real photos have NaN: no ground truth
                metric = self.param_rmse[f"{stage}_{domain}"]
                metric(params.detach()[valid].float(), truth[valid].float())
                self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True, batch_size=int(valid.sum()))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """One optimisation step on eq. 12."""
        total, terms, p_target, p_source = self.model_step(batch)
        self._log_step("train", batch, total, terms, p_target, p_source)
        return total

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Every term of eq. 12 and the parameter RMSE on held-out screenshots and photos."""
        if not ("target" in batch and "source" in batch):
            raise ValueError(
                "RegressionModule validates on paired batches {'target': ..., 'source': ...} "
                f"(CrossDomainDataModule with data.source); got keys {sorted(batch)}"
            )
        self._log_step("val", batch, *self.model_step(batch))

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """Game parameters (B, 267) of photos: an image tensor, {"image": ...} or a paired batch's source."""
        if isinstance(batch, dict):
            batch = batch.get("source", batch)
            batch = batch["image"]
        return self(batch)

    def sample_images(self, batch: dict) -> dict[str, torch.Tensor]:
        """Grid columns (Fig. 3/7): photo | imitator render | ENGINE render of its regressed parameters;
        screenshot | its G(R(D(E(I))))."""
        columns = {}
        # Moved here: the grid callback moves only a batch's top-level tensors to the device.
        if "source" in batch:
            photos = batch["source"]["image"].to(self.device)
            columns |= {
                "photo": photos,
                "photo_render": self.render(photos),
                "photo_engine": self._engine_render(self(photos), photos.shape[-1]),
            }
        target = batch.get("target", batch if "image" in batch else None)
        if target is not None:
            screenshots = target["image"].to(self.device)
            columns |= {"screenshot": screenshots, "screenshot_render": self.render(screenshots)}
        rows = min(images.shape[0] for images in columns.values())
        return {name: images[:rows] for name, images in columns.items()}

    def _engine_render(self, parameters: torch.Tensor, size: int) -> torch.Tensor:
        """What the player gets: the game engine's screenshots of the parameters (CPU rendering)."""
        from game.engine import engine_renders  # imported here: training must not need the renderer

        return engine_renders(parameters.detach().float().cpu().numpy(), size).to(self.device)

    # -------------------------------------------------------------------------------- setup and checkpoints

    def setup(self, stage: str) -> None:
        """Fail early when the data's image size or parameter table differs from the imitator's."""
        datamodule = getattr(self.trainer, "datamodule", None)
        data_size = getattr(datamodule, "image_size", None)
        if data_size is not None and data_size != self.encoder.image_size:
            raise ValueError(
                f"the data gives {data_size} px images but the imitator, encoder and regressor work at "
                f"{self.encoder.image_size} px: set data.init_args.image_size alike"
            )
        imitator_table = self._imitator_table()
        data_table, data = None, "the data"
        if datamodule is not None and hasattr(datamodule, "state_dict"):
            try:
                state = datamodule.state_dict()
            except (OSError, ValueError):  # no set on disk yet (prepare_data makes it): nothing to compare
                state = {}
            data_table, data = state.get("parameter_table_version"), state.get("target_root", data)
        check_same_table(self.imitator_file, imitator_table, data, data_table)

    def _imitator_table(self) -> str | None:
        checkpoint = torch.load(self.imitator_file, map_location="cpu", weights_only=True, mmap=True)
        return (checkpoint.get("CrossDomainDataModule") or {}).get("parameter_table_version")

    def _frozen_prefixes(self) -> list[str]:
        return [f"{name}." for name, module in self.named_modules() if isinstance(module, Frozen)]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Drop the frozen networks' weights (they are reloaded from their own files) and record those files."""
        prefixes = tuple(self._frozen_prefixes())
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith(prefixes)}
        checkpoint["frozen_sources"] = {
            "imitator": str(self.imitator_file),
            "face_geometry": [self.hparams.face_geometry, self.hparams.face_geometry_checkpoint],
            "face_id": [self.hparams.face_id, self.hparams.face_id_checkpoint],
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Put the frozen networks' current weights (from their files) back, so strict loading checks the rest."""
        prefixes = tuple(self._frozen_prefixes())
        frozen = {k: v for k, v in self.state_dict().items() if k.startswith(prefixes)}
        checkpoint["state_dict"] = {**checkpoint["state_dict"], **frozen}

    def configure_optimizers(self):
        """The injected optimizer over E, D and R only, and the injected scheduler stepped per epoch."""
        optimizer = self.optimizer([*self.encoder.parameters(), *self.regressor.parameters()])
        if self.scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler(optimizer), "interval": "epoch"}}
