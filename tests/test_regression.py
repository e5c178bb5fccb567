"""RegressionModule: gradients only where they belong, a tiny overfit, checkpoints without frozen nets, ablations,
the demo config through the CLI, and DDP over 2 CPU processes."""

import functools
import sys
import warnings
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fakes import TinyExtractor, write_imitator_checkpoint, write_screenshot_set
from PIL import Image
from torch.utils.data import DataLoader

import lightning_modules.regression as regression
from callbacks.tsne import TSNECallback, draw_embedding
from lightning_modules.regression import RegressionModule
from losses import ObjectiveSettings
from models.checkpoints import FIT_COMPLETE, find_checkpoint, load_network
from models.regressor import Regressor
from models.vqvae2 import VQVAE2

REPO = Path(__file__).resolve().parents[1]
SIZE = 64


# --------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def imitator_file(tmp_path_factory):
    return write_imitator_checkpoint(tmp_path_factory.mktemp("imitator") / "last.ckpt")


@pytest.fixture
def built(monkeypatch):
    """Stand-in extractor factories; records which ones the module asked for."""
    calls = []

    def factory(kind):
        def build(name, checkpoint=None):
            calls.append((kind, name, checkpoint))
            torch.manual_seed(len(calls))
            return TinyExtractor()

        return build

    monkeypatch.setattr(regression, "build_face_geometry", factory("face_geometry"))
    monkeypatch.setattr(regression, "build_face_id", factory("face_id"))
    return calls


def tiny_module(imitator_file, **kwargs) -> RegressionModule:
    torch.manual_seed(0)
    encoder = VQVAE2(SIZE, channel=16, n_res_block=1, n_res_channel=8, embed_dim=8, n_embed=16)
    regressor = Regressor(SIZE, in_channels=16, channels=(8, 8, 16, 16, 16))
    return RegressionModule(encoder, regressor, str(imitator_file), **kwargs)


def fake_batch(seed: int = 0, targets: int = 8, people: int = 4, photos: int = 2, ground_truth: bool = True) -> dict:
    """One batch in the DataModule's layout: screenshots and P x K photos (K adjacent photos per person)."""
    g = torch.Generator().manual_seed(seed)
    count = people * photos
    truth = torch.rand(count, 267, generator=g) * 5 - 2.5 if ground_truth else torch.full((count, 267), float("nan"))
    return {
        "target": {
            "image": torch.rand(targets, 3, SIZE, SIZE, generator=g),
            "parameters": torch.rand(targets, 267, generator=g) * 5 - 2.5,
            "index": torch.arange(targets),
        },
        "source": {
            "image": torch.rand(count, 3, SIZE, SIZE, generator=g),
            "identity": torch.arange(people).repeat_interleave(photos),
            "parameters": truth,
            "index": torch.arange(count),
        },
    }


def rendered_batch(imitator_file: Path, seed: int = 0, targets: int = 8, people: int = 4, photos: int = 2) -> dict:
    """A batch whose images the imitator can restore: screenshots G(p), photos G(p_person) + a little noise."""
    g = torch.Generator().manual_seed(seed)
    batch, imitator = fake_batch(seed, targets, people, photos), load_network(imitator_file)
    with torch.no_grad():
        batch["target"]["image"] = imitator(batch["target"]["parameters"])
        people_params = torch.rand(people, 267, generator=g) * 5 - 2.5
        renders = imitator(people_params).repeat_interleave(photos, 0)
        batch["source"]["image"] = (renders + 0.03 * torch.randn(renders.shape, generator=g)).clamp(0, 1)
        batch["source"]["parameters"] = people_params.repeat_interleave(photos, 0)
    return batch


class PairedData(L.LightningDataModule):
    """A stand-in CrossDomainDataModule: a few fixed paired batches for train and val, preview_batch for grids."""

    image_size = SIZE

    def __init__(self, batches: int = 3, ground_truth: bool = True):
        super().__init__()
        self.batches = [fake_batch(seed, ground_truth=ground_truth) for seed in range(batches)]

    def train_dataloader(self):
        return DataLoader(self.batches, batch_size=None)

    def val_dataloader(self):
        return DataLoader(self.batches[:1], batch_size=None)

    def preview_batch(self, num_samples: int) -> dict:
        return {side: {k: v[:num_samples] for k, v in self.batches[0][side].items()} for side in ("target", "source")}


def trainer(tmp_path, **kwargs) -> L.Trainer:
    options = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        num_sanity_val_steps=0,
        limit_val_batches=1,
    )
    return L.Trainer(**(options | kwargs))


# ------------------------------------------------------------------------------------------------------ tests


def test_gradients_reach_encoder_and_regressor_but_no_frozen_network(imitator_file, built):
    module = tiny_module(imitator_file).train()
    imitator = module.objective.restored.imitator.module
    statistics = {k: v.clone() for k, v in imitator.state_dict().items() if "running" in k}
    total, terms, p_target, p_source = module.model_step(fake_batch())
    total.backward()
    assert {"restored", "domain", "contrastive", "consistency", "consistency/3d", "consistency/id"} <= set(terms)
    assert p_target.shape == (8, 267) and p_source.shape == (8, 267) and torch.isfinite(total)
    trainable = [*module.encoder.named_parameters(), *module.regressor.named_parameters()]
    assert [name for name, p in trainable if p.grad is None or not torch.isfinite(p.grad).all()] == []
    assert sum(p.grad.abs().sum() for _, p in trainable) > 0
    frozen = [module.objective.restored.imitator, module.objective.consistency.f3d, module.objective.consistency.fid]
    for wrapper in frozen:
        assert not any(m.training for m in wrapper.modules())
        assert all(p.grad is None and not p.requires_grad for p in wrapper.parameters())
    assert all(torch.equal(v, imitator.state_dict()[k]) for k, v in statistics.items())  # BN stats untouched
    assert {p for group in module.configure_optimizers().param_groups for p in group["params"]} == {
        p for _, p in trainable
    }


def test_one_pass_over_both_domains_splits_l_differ_per_domain(imitator_file, built):
    module = tiny_module(imitator_file).eval()
    batch = fake_batch()
    images = torch.cat([batch["target"]["image"], batch["source"]["image"]])
    with torch.no_grad():
        encoded, differ_target, differ_source = module.encode(images, 8)
    # The encoder's own L_differ is the mean over both parts (equal sizes): ours splits it exactly.
    assert torch.allclose(encoded.loss, (differ_target + differ_source) / 2, rtol=1e-5)
    assert not torch.allclose(differ_target, differ_source)


def test_tiny_overfit_drives_the_total_loss_down(imitator_file, built):
    # Screenshots the imitator rendered and photos of 4 people: every term can fall. The regressor starts at the
    # neutral face, with a head 100x smaller than PyTorch's default, hence the larger lr (measured: -36% in 30 steps).
    module = tiny_module(imitator_file, optimizer=functools.partial(torch.optim.Adam, lr=3e-3)).train()
    optimizer, batch, losses = module.configure_optimizers(), rendered_batch(imitator_file), []
    for _ in range(30):
        total, terms, *_ = module.model_step(batch)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        losses.append(float(total.detach()))
    assert all(np.isfinite(losses)) and np.mean(losses[-3:]) < 0.8 * losses[0], losses


def test_fit_logs_every_term_codebook_stats_and_parameter_rmse(imitator_file, built, tmp_path):
    module = tiny_module(imitator_file)
    run = trainer(tmp_path, max_epochs=1, enable_checkpointing=False)
    run.fit(module, PairedData())
    metrics = run.callback_metrics
    for stage in ("train", "val"):
        for name in (
            "loss",
            "restored",
            "restored/param",
            "restored/differ",
            "domain",
            "domain/features",
            "domain/params",
            "contrastive",
            "consistency",
            "consistency/3d",
            "consistency/id",
            "param_rmse",
            "target_param_rmse",
            "codebook/top/perplexity",
            "codebook/bottom/perplexity",
            "codebook/top/dead",
            "codebook/bottom/dead",
        ):
            assert torch.isfinite(metrics[f"{stage}/{name}"]), f"{stage}/{name}"
    assert 0 < metrics["val/param_rmse"] < 5


def test_real_photos_without_ground_truth_log_no_parameter_rmse(imitator_file, built, tmp_path):
    run = trainer(tmp_path, max_epochs=1, enable_checkpointing=False)
    run.fit(tiny_module(imitator_file), PairedData(ground_truth=False))
    assert "val/param_rmse" not in run.callback_metrics and "val/target_param_rmse" in run.callback_metrics


def test_bf16_mixed_fit_on_cpu(imitator_file, built, tmp_path):
    run = trainer(tmp_path, max_epochs=1, limit_train_batches=2, precision="bf16-mixed", enable_checkpointing=False)
    run.fit(tiny_module(imitator_file), PairedData())
    assert run.global_step == 2
    assert all(
        torch.isfinite(run.callback_metrics[f"val/{name}"]) for name in ("loss", "restored/differ", "param_rmse")
    )


def test_checkpoint_round_trip_without_frozen_weights(imitator_file, built, tmp_path):
    module = tiny_module(imitator_file)
    run = trainer(
        tmp_path, max_steps=2, callbacks=[L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True)]
    )
    run.fit(module, PairedData())
    path = tmp_path / "ck" / "last.ckpt"
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert not [k for k in checkpoint["state_dict"] if k.startswith("objective.")]  # no imitator, no extractors
    assert any(k.startswith("encoder.") for k in checkpoint["state_dict"])
    assert checkpoint["frozen_sources"]["imitator"] == str(imitator_file)
    # The bare networks come back without Lightning or the training config (contracts section 6) ...
    encoder, regressor_net = load_network(path, "encoder"), load_network(path, "regressor")
    assert isinstance(encoder, VQVAE2) and isinstance(regressor_net, Regressor)
    for net, trained in ((encoder, module.encoder), (regressor_net, module.regressor)):
        assert all(torch.equal(v, trained.state_dict()[k]) for k, v in net.state_dict().items())
    # ... the whole module too (the frozen nets reloaded from their files, strict on the rest) ...
    restored = RegressionModule.load_from_checkpoint(path)
    assert torch.equal(restored.encoder.enc_b[0].weight, module.encoder.enc_b[0].weight)
    imitator = load_network(imitator_file)
    assert torch.equal(restored.objective.restored.imitator.module.layers[0].weight, imitator.layers[0].weight)
    # ... and training resumes from it.
    resumed = trainer(tmp_path, max_steps=3, enable_checkpointing=False)
    resumed.fit(tiny_module(imitator_file), PairedData(), ckpt_path=path)
    assert resumed.global_step == 3


@pytest.mark.parametrize(
    "switch, term, builds",
    [
        ({"lambda_domain": 0.0}, "domain", {"face_geometry", "face_id"}),
        ({"lambda_contrastive": 0.0}, "contrastive", {"face_geometry", "face_id"}),
        ({"lambda_consistency": 0.0}, "consistency", set()),
        ({"weight_3d": 0.0}, "consistency/3d", {"face_id"}),
        ({"weight_id": 0.0}, "consistency/id", {"face_geometry"}),
    ],
)
def test_a_zero_weight_removes_its_term_and_its_extractor(imitator_file, built, switch, term, builds):
    module = tiny_module(imitator_file, objective=ObjectiveSettings(**switch))
    assert {kind for kind, *_ in built} == builds
    _, terms, *_ = module.model_step(fake_batch())
    assert term not in terms and "restored" in terms


def test_extractor_settings_are_checked(imitator_file, built, tmp_path):
    with pytest.raises(ValueError, match="face_geometry is null but L_consistency uses it.*weight_3d: 0"):
        tiny_module(imitator_file, face_geometry=None)
    tiny_module(imitator_file, face_geometry=None, objective=ObjectiveSettings(weight_3d=0.0))  # explicitly off: fine
    tiny_module(imitator_file, face_id=None, face_geometry=None, objective=ObjectiveSettings(lambda_consistency=0.0))
    tiny_module(imitator_file, face_geometry="deep3d", face_geometry_checkpoint="d3d.pth")
    assert built[-2:] == [("face_geometry", "deep3d", "d3d.pth"), ("face_id", "dlib", None)]


def test_an_unloadable_extractor_stops_with_the_file_and_the_alternatives(imitator_file, tmp_path):
    torch.save({"something": torch.zeros(1)}, tmp_path / "epoch_20.pth")
    with pytest.raises(ValueError, match=r"epoch_20\.pth.*net_recon.*alternatives: 'landmarks'"):
        tiny_module(
            imitator_file,
            face_geometry="deep3d",
            face_geometry_checkpoint=str(tmp_path / "epoch_20.pth"),
            objective=ObjectiveSettings(weight_id=0.0),
        )


def test_imitator_checkpoint_conventions(tmp_path, built):
    runs = tmp_path / "runs" / "imitator"
    for version in (0, 2, 10):
        write_imitator_checkpoint(runs / f"version_{version}" / "checkpoints" / "last.ckpt")
        if version:  # version_0's fit was killed mid-run: last.ckpt from a validation, no marker
            (runs / f"version_{version}" / "checkpoints" / FIT_COMPLETE).write_text("{}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # finished fits resolve without a word
        assert find_checkpoint(runs) == runs / "version_10" / "checkpoints" / "last.ckpt"  # newest, numerically
        assert find_checkpoint(runs / "version_2") == runs / "version_2" / "checkpoints" / "last.ckpt"
    with pytest.warns(UserWarning, match=r"version_0/checkpoints/last.ckpt: its fit did not end"):
        assert find_checkpoint(runs / "version_0") == runs / "version_0" / "checkpoints" / "last.ckpt"
    assert find_checkpoint(runs / "version_0" / "checkpoints" / "last.ckpt").parent.parent.name == "version_0"
    with pytest.raises(FileNotFoundError, match=r"runs/nothing.*make train-imitator"):
        find_checkpoint(tmp_path / "runs" / "nothing")
    with pytest.raises(ValueError, match=r"image sizes differ.*'imitator': 128"):
        tiny_module(write_imitator_checkpoint(tmp_path / "big.ckpt", image_size=128))


def test_sample_images_and_predict(imitator_file, built):
    module = tiny_module(imitator_file).eval()
    batch = fake_batch()
    with torch.no_grad():
        columns = module.sample_images(batch)
        params = module.predict_step(batch, 0)
    assert list(columns) == ["photo", "photo_render", "photo_engine", "screenshot", "screenshot_render"]
    assert columns["photo_engine"].min() >= 0 and columns["photo_engine"].std() > 0  # real engine screenshots
    assert all(images.shape == (8, 3, SIZE, SIZE) for images in columns.values())
    assert params.shape == (8, 267) and params.abs().max() <= 2.5
    assert torch.equal(params, module.predict_step(batch["source"]["image"], 0))


@pytest.mark.parametrize("matplotlib", [True, False])
def test_tsne_picture_with_or_without_matplotlib(monkeypatch, matplotlib):
    if not matplotlib:
        monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    points = np.random.default_rng(0).normal(size=(40, 2))
    picture = draw_embedding(points, np.repeat([0, 1], 20), "epoch 3")
    assert picture.dtype == np.uint8 and picture.shape == (512, 512, 3) and picture.std() > 0


def test_tsne_callback_writes_one_png_per_chosen_epoch(imitator_file, built, tmp_path):
    run = trainer(
        tmp_path,
        max_epochs=3,
        enable_checkpointing=False,
        limit_train_batches=1,
        callbacks=[TSNECallback(every_n_epochs=2, num_samples=8)],
    )
    run.fit(tiny_module(imitator_file), PairedData())
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["tsne-epoch000.png", "tsne-epoch002.png"]


# --------------------------------------------------------------------------------- the CLI with the real data


def demo_args(tmp_path, imitator_file, rendered_set, *extra) -> list[str]:
    target = write_screenshot_set(tmp_path / "target", count=24, size=SIZE)
    # Its own copy: the DataModule writes the set's split.json.
    photos = rendered_set(24, SIZE, style="photo", seed=1, renders_per_identity=2, into=tmp_path / "photos")
    return [
        "fit",
        "--config",
        "experiments/demo/main.yaml",
        "--model.init_args.imitator_checkpoint",
        str(imitator_file),
        "--data.init_args.target_root",
        str(target),
        "--data.init_args.batch_size",
        "4",
        "--data.init_args.num_workers",
        "0",
        "--data.init_args.val_fraction",
        "0.2",
        "--data.init_args.source",
        f"{{kind: synthetic, root: {photos}, identities_per_batch: 2, photos_per_identity: 2, val_fraction: 0.34}}",
        "--run.root",
        str(tmp_path / "runs"),
        "--run.wandb",
        "false",
        "--trainer.limit_train_batches",
        "2",
        "--trainer.limit_val_batches",
        "1",
        "--trainer.max_epochs",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        *extra,
    ]


def test_demo_config_runs_two_steps_through_the_cli(imitator_file, tmp_path, monkeypatch, rendered_set):
    pytest.importorskip("datamodules.photos", reason="the DataModule's source side is not in this tree yet")
    from lightning_modules.cli import main

    monkeypatch.chdir(REPO)  # configs are repo-relative
    monkeypatch.setattr(sys, "argv", ["lightning_modules.cli"])
    monkeypatch.setenv("WANDB_MODE", "offline")
    cli = main(demo_args(tmp_path, imitator_file, rendered_set))
    assert cli.trainer.global_step == 2 and torch.isfinite(cli.trainer.callback_metrics["val/param_rmse"])
    run_dir = tmp_path / "runs" / "demo-main" / "version_0"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and (run_dir / "config.yaml").is_file()
    with Image.open(next((run_dir / "images").glob("step*.png"))) as grid:
        assert grid.width == 5 * SIZE  # photo | imitator render | engine render | screenshot | its render
    assert (run_dir / "images" / "tsne-epoch000.png").is_file()
    # The shrinkage calibration ran after validation and travels in the checkpoint, inside R.
    shrinkage = cli.model.regressor.shrinkage
    assert ((shrinkage >= 0) & (shrinkage <= 1)).all() and not torch.equal(shrinkage, torch.ones_like(shrinkage))
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert torch.equal(saved["state_dict"]["regressor.shrinkage"], shrinkage)


def test_supervised_demo_overlay_trains_its_terms_and_no_others(imitator_file, tmp_path, monkeypatch, rendered_set):
    """experiments/demo/supervised.yaml on top of the demo: its terms are the ones logged, L_consistency is off."""
    from lightning_modules.cli import main

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "argv", ["lightning_modules.cli"])
    cli = main(
        demo_args(
            tmp_path,
            imitator_file,
            rendered_set,
            "--config",
            "experiments/demo/supervised.yaml",
            "--trainer.callbacks",
            "null",
        )
    )
    logged = set(cli.trainer.callback_metrics)
    assert {
        "val/screenshot_supervision",
        "val/domain/params",
        "val/contrastive",
        "val/parameter_prior",
        "val/restored",
    } <= logged
    assert "val/consistency" not in logged
    assert cli.model.objective.domain.kernel == "linear" and not cli.model.objective.domain.on_features
    assert (tmp_path / "runs" / "demo-supervised" / "version_0" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_ddp_two_cpu_processes_through_the_cli(imitator_file, tmp_path, rendered_set, run_cli):
    """The real path: the demo config with the ddp overlay, 2 gloo processes launched by Lightning."""
    pytest.importorskip("datamodules.photos", reason="the DataModule's source side is not in this tree yet")
    run_cli(
        "-m",
        "lightning_modules.cli",
        *demo_args(
            tmp_path,
            imitator_file,
            rendered_set,
            "--config",
            "experiments/trainer/ddp.yaml",
            "--trainer.accelerator",
            "cpu",
            "--trainer.devices",
            "2",
            "--trainer.max_steps",
            "2",
        ),
        timeout=400,
        repo_on_path=True,
    )
    runs = list((tmp_path / "runs" / "demo-main").iterdir())
    assert [r.name for r in runs] == ["version_0"]  # both ranks wrote into one run folder
    checkpoint = torch.load(runs[0] / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 2 and not [k for k in checkpoint["state_dict"] if k.startswith("objective.")]


def test_ddp_leaves_frozen_networks_alone(imitator_file, built):
    """Frozen weights are identical on every rank: DDP must not broadcast them each step, and must sync the rest."""
    module = tiny_module(imitator_file)
    ignored = set(module._ddp_params_and_buffers_to_ignore)
    trainable = {name for name, p in module.named_parameters() if p.requires_grad}
    assert any(name.startswith("objective.") or "imitator" in name for name in ignored)
    assert ignored and not ignored & trainable


def test_parameter_prior_is_off_by_default_and_adds_its_term_when_on(imitator_file, built):
    batch = fake_batch()
    _, terms_off, _, _ = tiny_module(imitator_file).model_step(batch)
    assert "parameter_prior" not in terms_off
    module = tiny_module(imitator_file, parameter_prior_weight=0.5)
    total, terms, p_target, p_source = module.model_step(batch)
    p = torch.cat([p_target, p_source]) / 2.5
    assert torch.allclose(terms["parameter_prior"], p.pow(2).mean(), atol=1e-6)


def test_screenshot_supervision_is_the_target_parameter_mse_and_never_sees_photo_truth(imitator_file, built):
    batch = fake_batch()
    _, terms_off, _, _ = tiny_module(imitator_file).model_step(batch)
    assert "screenshot_supervision" not in terms_off
    module = tiny_module(imitator_file, screenshot_supervision_weight=2.0)
    torch.manual_seed(1)  # the codebooks' k-means initialisation draws from it
    total, terms, p_target, _ = module.model_step(batch)
    expected = ((p_target - batch["target"]["parameters"]) / 2.5).pow(2).mean()
    assert torch.allclose(terms["screenshot_supervision"], expected, atol=1e-6)
    # Photos carry no usable truth in real data: changing theirs must not change the term.
    batch["source"]["parameters"] = torch.full_like(batch["source"]["parameters"], float("nan"))
    module = tiny_module(imitator_file, screenshot_supervision_weight=2.0)
    torch.manual_seed(1)
    _, terms_nan, _, _ = module.model_step(batch)
    assert torch.allclose(terms_nan["screenshot_supervision"], terms["screenshot_supervision"])


def test_screenshot_supervision_without_target_parameters_names_what_is_missing(imitator_file, built):
    batch = fake_batch()
    del batch["target"]["parameters"]
    with pytest.raises(ValueError, match="screenshot_supervision_weight"):
        tiny_module(imitator_file, screenshot_supervision_weight=1.0).model_step(batch)


def test_restoring_against_the_imitator_compares_with_its_picture_of_the_true_parameters(imitator_file, built):
    batch = fake_batch()
    module = tiny_module(imitator_file, restore_against="imitator")
    torch.manual_seed(1)
    _, terms, p_target, _ = module.model_step(batch)
    imitator = module.objective.restored.imitator
    with torch.no_grad():
        expected = F.mse_loss(imitator(p_target), imitator(batch["target"]["parameters"]))
    torch.testing.assert_close(terms["restored/param"], expected, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="restore_against"):
        tiny_module(imitator_file, restore_against="engine")


def test_an_imitator_on_another_parameter_table_is_refused_naming_its_file(tmp_path, built):
    imitator = write_imitator_checkpoint(tmp_path / "other" / "last.ckpt", table="v1-000000000000")
    module = tiny_module(imitator)
    data = SimpleNamespace(image_size=SIZE, state_dict=lambda: {"parameter_table_version": "v1-111111111111"})
    module.trainer = SimpleNamespace(datamodule=data)
    with pytest.raises(ValueError, match=rf"{imitator} uses parameter table v1-000000000000, but the data uses v1-1"):
        module.setup("fit")


def test_the_objective_settings_are_one_dataclass_saved_as_a_plain_dict(imitator_file, built, tmp_path):
    module = tiny_module(imitator_file, objective=ObjectiveSettings(lambda_domain=0.0, l2_mode="norm"))
    assert module.objective.settings == ObjectiveSettings(lambda_domain=0.0, l2_mode="norm")
    assert module.hparams.objective == {**asdict(ObjectiveSettings()), "lambda_domain": 0.0, "l2_mode": "norm"}
    assert "lambda_domain" not in module.hparams  # one place
    # A checkpoint's hyper-parameters hold the dict; checkpoints from before `objective` hold flat keys.
    assert tiny_module(imitator_file, objective=dict(module.hparams.objective)).objective.settings.l2_mode == "norm"
    old = tiny_module(imitator_file, lambda_domain=0.0, weight_id=0.0)
    assert (
        old.objective.settings == ObjectiveSettings(lambda_domain=0.0, weight_id=0.0) and old.objective.domain is None
    )
    assert "lambda_domain" not in old.hparams and old.hparams.objective["weight_id"] == 0.0
    with pytest.raises(TypeError, match=r"unexpected arguments \['lambda_domian'\]"):
        tiny_module(imitator_file, lambda_domian=0.0)


def test_the_held_out_judge_cannot_be_a_training_loss(imitator_file):
    with pytest.raises(ValueError, match="faceres"):
        tiny_module(imitator_file, face_id="faceres")
