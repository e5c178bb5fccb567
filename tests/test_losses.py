"""The four cross-domain losses and their sum (losses/): equations, gradients, frozen nets, DDP."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from losses import (
    ConsistencyLoss,
    ContrastiveLoss,
    CrossDomainObjective,
    DomainBatch,
    DomainLoss,
    Frozen,
    ObjectiveSettings,
    RestoredLoss,
    linear_mmd2,
    mmd2,
)
from losses.domain import BANDWIDTH_SCALES
from models.regressor import Regressor
from models.vqvae2 import VQVAE2


class TinyImitator(nn.Module):
    """A random stand-in for G: (B, 267) -> (B, 3, S, S) in [0, 1], with BatchNorm like the real one."""

    def __init__(self, size: int = 64) -> None:
        super().__init__()
        self.fc = nn.Linear(267, 3 * 8 * 8)
        nn.init.normal_(self.fc.weight, std=1.5 / math.sqrt(267))  # every pixel depends clearly on p
        self.norm = nn.BatchNorm2d(3)
        self.size = size

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        low = torch.sigmoid(self.norm(self.fc(p).view(-1, 3, 8, 8)))
        return F.interpolate(low, size=self.size, mode="bilinear", align_corners=False)


class TinyExtractor(nn.Module):
    """A random stand-in for F_3d / F_id: images (B, 3, H, W) in [0, 1] -> (B, dim), with BN and dropout."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(128, dim),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def no_grads(module: nn.Module) -> bool:
    return all(p.grad is None and not p.requires_grad for p in module.parameters())


# ---------------------------------------------------------------- Frozen


def test_frozen_stays_in_eval_and_passes_gradients_through():
    extractor = TinyExtractor()
    frozen = Frozen(extractor)
    nn.Sequential(frozen).train()
    assert not extractor.training and not any(p.requires_grad for p in extractor.parameters())
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    torch.testing.assert_close(frozen(images), frozen(images))  # dropout off
    frozen(images).sum().backward()
    assert images.grad.abs().sum() > 0 and no_grads(extractor)
    extractor.train()
    with pytest.raises(RuntimeError, match="training mode"):
        frozen(images)


# ---------------------------------------------------------------- domain (MMD, eq. 6-7)


@pytest.mark.parametrize("sigma", [None, 1.5])
def test_mmd_is_zero_for_identical_sets(sigma):
    x = torch.randn(32, 8)
    assert mmd2(x, x.clone(), sigma).abs() < 1e-6


@pytest.mark.parametrize("sigma", [None, 3.0])
def test_mmd_grows_with_the_shift(sigma):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 8, generator=g), torch.randn(64, 8, generator=g)
    same, small, large = mmd2(x, y, sigma), mmd2(x, y + 0.5, sigma), mmd2(x, y + 2.0, sigma)
    assert 0 <= same < small < large


@pytest.mark.parametrize("sigma", [None, 2.0])
def test_mmd_gradient_reaches_both_sets(sigma):
    x, y = torch.randn(16, 4, requires_grad=True), torch.randn(16, 4, requires_grad=True)
    mmd2(x, y + 1, sigma).backward()
    assert x.grad.abs().sum() > 0 and y.grad.abs().sum() > 0
    assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()


def test_fixed_sigma_is_eq7_and_multi_bandwidth_sums_them_around_the_median():
    x, y = torch.randn(5, 3), torch.randn(7, 3) + 1

    def k(a, b, s):
        return torch.exp(-torch.cdist(a, b).pow(2) / (2 * s**2))  # eq. 7

    sigma = 1.3
    by_hand = k(x, x, sigma).mean() + k(y, y, sigma).mean() - 2 * k(x, y, sigma).mean()
    torch.testing.assert_close(mmd2(x, y, sigma), by_hand)
    z = torch.cat([x, y])
    d2 = torch.cdist(z, z).pow(2)
    median = d2[~torch.eye(12, dtype=torch.bool)].median()
    multi = sum(mmd2(x, y, math.sqrt(s * median)) for s in BANDWIDTH_SCALES)
    torch.testing.assert_close(mmd2(x, y), multi, rtol=1e-4, atol=1e-5)


def test_domain_loss_sums_features_and_parameters():
    f_s, f_t, p_s, p_t = torch.randn(8, 1024), torch.randn(8, 1024) + 0.3, torch.randn(8, 267), torch.randn(8, 267)
    loss, terms = DomainLoss()(f_s, f_t, p_s, p_t)
    torch.testing.assert_close(loss, terms["features"] + terms["params"])
    torch.testing.assert_close(terms["features"], mmd2(f_s, f_t))
    _, fixed = DomainLoss(sigma_features=10.0, sigma_params=5.0)(f_s, f_t, p_s, p_t)
    torch.testing.assert_close(fixed["params"], mmd2(p_s, p_t, 5.0))


def test_domain_loss_on_parameters_only_leaves_the_features_alone():
    f_s = torch.randn(8, 1024, requires_grad=True)
    f_t, p_s, p_t = torch.randn(8, 1024) + 0.3, torch.randn(8, 267, requires_grad=True), torch.randn(8, 267)
    loss, terms = DomainLoss(on_features=False)(f_s, f_t, p_s, p_t)
    loss.backward()
    assert terms["features"] == 0 and f_s.grad is None
    torch.testing.assert_close(loss, mmd2(p_s.detach(), p_t))
    assert p_s.grad.abs().sum() > 0


def test_linear_mmd_is_the_squared_distance_of_the_means_per_dimension():
    x, y = torch.tensor([[0.0, 2.0], [2.0, 2.0]]), torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # means (1, 2) and (1, 0.5): ((1 - 1)^2 + (2 - 0.5)^2) / 2 dimensions
    torch.testing.assert_close(linear_mmd2(x, y), torch.tensor(1.125))
    spread = torch.randn(64, 16)
    assert linear_mmd2(spread, spread.flip(0)) < 1e-10  # same set, any order: the spread does not count


def test_linear_kernel_domain_loss_moves_only_the_means():
    p_s = (torch.randn(16, 267) + 0.5).requires_grad_()
    p_t, f_s, f_t = torch.randn(16, 267), torch.randn(16, 1024), torch.randn(16, 1024)
    loss, terms = DomainLoss(kernel="linear")(f_s, f_t, p_s, p_t)
    torch.testing.assert_close(terms["params"], linear_mmd2(p_s.detach(), p_t))
    loss.backward()
    # Every photo gets the same push (towards the screenshots' mean): the loss cannot reward a collapse.
    torch.testing.assert_close(p_s.grad, p_s.grad[:1].expand_as(p_s.grad))
    with pytest.raises(ValueError, match="kernel"):
        DomainLoss(kernel="laplace")


# ---------------------------------------------------------------- contrastive (InfoNCE, eq. 8)


def eq8_by_hand(p: torch.Tensor, labels: list[int], tau: float, normalize: bool) -> torch.Tensor:
    """Eq. 8 averaged over every (query, positive) pair, written out loop by loop."""
    if normalize:
        p = F.normalize(p, dim=1)
    losses = []
    for q in range(len(labels)):
        for pos in range(len(labels)):
            if pos == q or labels[pos] != labels[q]:
                continue
            numerator = torch.exp(p[q] @ p[pos] / tau)
            negatives = sum(torch.exp(p[q] @ p[n] / tau) for n in range(len(labels)) if labels[n] != labels[q])
            losses.append(-torch.log(numerator / (numerator + negatives)))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("normalize", [True, False])
def test_infonce_matches_eq8_by_hand(normalize):
    torch.manual_seed(0)
    p = torch.randn(4, 267) * (1 if normalize else 0.02)  # raw dot products kept small enough not to saturate
    labels = [0, 0, 1, 1]
    loss, _ = ContrastiveLoss(temperature=0.07, normalize=normalize)(p, torch.tensor(labels))
    torch.testing.assert_close(loss, eq8_by_hand(p, labels, 0.07, normalize), rtol=1e-4, atol=1e-5)


def test_infonce_is_lower_for_separated_identities_than_for_shuffled_labels():
    torch.manual_seed(0)
    centres = torch.randn(8, 267) * 2.5
    identities = torch.arange(8).repeat_interleave(2)  # P = 8 people x 2 photos
    p = centres[identities] + 0.3 * torch.randn(16, 267)
    loss = ContrastiveLoss()
    separated, _ = loss(p, identities)
    shuffled, _ = loss(p, identities[torch.randperm(16)])
    assert separated < 0.1 < shuffled


def test_infonce_gradient_and_missing_positives():
    p = torch.randn(6, 267, requires_grad=True)
    loss, _ = ContrastiveLoss()(p, torch.tensor([0, 0, 1, 1, 2, 2]))
    loss.backward()
    assert p.grad.abs().sum(1).gt(0).all()
    with pytest.raises(ValueError, match="2 photos"):
        ContrastiveLoss()(p, torch.arange(6))


# ---------------------------------------------------------------- restored (eq. 3-5)


def test_restored_gradient_reaches_parameters_not_the_imitator():
    torch.manual_seed(0)
    imitator = TinyImitator()
    loss_fn = RestoredLoss(imitator, beta=0.25)
    loss_fn.train()  # as Lightning does every epoch
    assert not imitator.training and not any(p.requires_grad for p in imitator.parameters())
    running_mean = imitator.norm.running_mean.clone()
    params = torch.randn(4, 267, requires_grad=True)
    images = torch.rand(4, 3, 64, 64)
    vq_loss = torch.tensor(0.4, requires_grad=True)
    loss, terms = loss_fn(params, images, vq_loss)
    loss.backward()
    assert params.grad.abs().sum(1).gt(0).all() and vq_loss.grad == 0.25
    assert no_grads(imitator)
    assert torch.equal(running_mean, imitator.norm.running_mean)  # BN statistics untouched
    with torch.no_grad():
        expected = F.mse_loss(imitator(params), images)
    torch.testing.assert_close(terms["param"], expected)
    torch.testing.assert_close(loss.detach(), expected + 0.25 * 0.4)


def test_restored_rejects_a_thawed_imitator_and_wrong_sizes():
    imitator = TinyImitator()
    loss_fn = RestoredLoss(imitator)
    with pytest.raises(ValueError, match="image_size"):
        loss_fn(torch.zeros(2, 267), torch.zeros(2, 3, 128, 128), torch.tensor(0.0))
    imitator.requires_grad_(True)
    with pytest.raises(RuntimeError, match="frozen TinyImitator"):
        loss_fn(torch.zeros(2, 267), torch.zeros(2, 3, 64, 64), torch.tensor(0.0))


@pytest.mark.parametrize("mode", ["mse", "norm"])
def test_restored_l2_modes(mode):
    imitator = TinyImitator()
    params, images = torch.randn(3, 267), torch.rand(3, 3, 64, 64)
    _, terms = RestoredLoss(imitator, mode=mode)(params, images, torch.tensor(0.0))
    with torch.no_grad():
        diff = imitator.eval()(params) - images
    expected = diff.pow(2).mean() if mode == "mse" else diff.flatten(1).norm(dim=1).mean()
    torch.testing.assert_close(terms["param"], expected)


# ---------------------------------------------------------------- consistency (eq. 9-11)


def test_consistency_is_zero_when_the_render_is_the_photo():
    photos = torch.rand(3, 3, 64, 64)
    loss, terms = ConsistencyLoss(TinyExtractor(), TinyExtractor())(photos, photos.clone())
    assert loss.abs() < 1e-6 and terms["3d"].abs() < 1e-6 and terms["id"].abs() < 1e-6


def test_consistency_gradient_reaches_the_render_not_the_extractors():
    torch.manual_seed(0)
    f3d, fid = TinyExtractor(), TinyExtractor()
    loss_fn = ConsistencyLoss(f3d, fid, weight_3d=1.0, weight_id=0.5).train()
    renders = torch.rand(3, 3, 64, 64, requires_grad=True)
    loss, terms = loss_fn(torch.rand(3, 3, 64, 64), renders)
    loss.backward()
    assert loss > 0 and renders.grad.abs().sum() > 0
    assert no_grads(f3d) and no_grads(fid) and not f3d.training and not fid.training
    torch.testing.assert_close(loss.detach(), terms["3d"] + 0.5 * terms["id"])


def test_consistency_terms_switch_off_only_by_weight_zero():
    with pytest.raises(ValueError, match="fid is None"):
        ConsistencyLoss(TinyExtractor(), None)
    only_3d = ConsistencyLoss(TinyExtractor(), None, weight_id=0)
    loss, terms = only_3d(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))
    assert terms.keys() == {"3d"} and loss > 0


# ---------------------------------------------------------------- the full objective (eq. 12)


def pipeline(size: int = 64):
    vqvae = VQVAE2(image_size=size, channel=32, n_res_block=1, n_res_channel=8, embed_dim=16, n_embed=32)
    return vqvae, Regressor(image_size=size, in_channels=vqvae.feature_channels)


def run(vqvae, regressor, images, identities=None) -> DomainBatch:
    out = vqvae(images)
    output = regressor(out.features)
    return DomainBatch(images, output.features, output.parameters, out.loss, identities)


def test_objective_weights_and_gradients_through_the_whole_pipeline():
    torch.manual_seed(0)
    vqvae, regressor = pipeline()
    imitator, f3d, fid = TinyImitator(), TinyExtractor(), TinyExtractor()
    objective = CrossDomainObjective(imitator, f3d, fid)
    assert objective.lambdas == {"restored": 1.0, "domain": 0.01, "contrastive": 0.02, "consistency": 0.02}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="dead_code_threshold")
        target = run(vqvae, regressor, torch.rand(4, 3, 64, 64))
        source = run(vqvae, regressor, torch.rand(4, 3, 64, 64), torch.tensor([3, 3, 7, 7]))
    total, terms = objective(target, source)
    weighted = terms["restored"] + 0.01 * terms["domain"] + 0.02 * terms["contrastive"] + 0.02 * terms["consistency"]
    torch.testing.assert_close(terms["total"], weighted)
    assert {
        "restored/param",
        "restored/differ",
        "domain/features",
        "domain/params",
        "consistency/3d",
        "consistency/id",
    } <= terms.keys()
    total.backward()
    for name, p in [*vqvae.named_parameters(), *regressor.named_parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert no_grads(imitator) and no_grads(f3d) and no_grads(fid)


def test_objective_skips_losses_with_lambda_zero():
    settings = ObjectiveSettings(lambda_consistency=0, lambda_contrastive=0)
    objective = CrossDomainObjective(TinyImitator(), settings=settings)
    assert objective.consistency is None and objective.contrastive is None
    batch = DomainBatch(torch.rand(4, 3, 64, 64), torch.randn(4, 1024), torch.randn(4, 267), torch.tensor(0.0))
    _, terms = objective(batch, batch)
    assert "consistency" not in terms and "contrastive" not in terms and "domain" in terms


def test_tiny_overfit_drives_the_restored_loss_down():
    torch.manual_seed(0)
    vqvae, regressor = pipeline()
    imitator = TinyImitator()
    with torch.no_grad():
        targets = imitator.eval()(torch.rand(2, 267) * 5 - 2.5)  # screenshots the imitator can reproduce
    loss_fn = RestoredLoss(imitator)
    optimizer = torch.optim.Adam([*vqvae.parameters(), *regressor.parameters()], lr=3e-4)
    history = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="dead_code_threshold")
        for _ in range(30):
            out = vqvae(targets)
            p = regressor(out.features).parameters
            loss, terms = loss_fn(p, targets, out.loss)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history.append(terms["param"].item())
    # Seeds 0-5 end at 0.02-0.31 of the start after 30 steps; 0.5 leaves room for thread-count noise.
    assert history[-1] < 0.5 * history[0], history
    assert no_grads(imitator)


# ---------------------------------------------------------------- DDP: gathered losses, correct gradients


def _ddp_data():
    g = torch.Generator().manual_seed(7)
    # Uneven rows on purpose (3 + 5 screenshots): a last, short batch must gather correctly.
    f_s, f_t = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g) + 0.5
    p_s, p_t = torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g)
    identities = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])  # positives sit on the other rank
    return f_s, f_t, p_s, p_t, identities


def _ddp_loss(f_s, f_t, p_s, p_t, identities):
    domain, _ = DomainLoss()(f_s, f_t, p_s, p_t)
    contrastive, _ = ContrastiveLoss()(p_s, identities)
    return domain + contrastive


def _ddp_worker(rank: int, world: int, port: int, results) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        f_s, f_t, p_s, p_t, identities = _ddp_data()
        source = slice(rank * 4, rank * 4 + 4)
        target = slice(0, 3) if rank == 0 else slice(3, 8)
        local = [f_s[source], f_t[target], p_s[source], p_t[target]]
        local = [t.clone().requires_grad_() for t in local]
        loss = _ddp_loss(*local, identities[source])
        loss.backward()
        results.put((rank, loss.item(), [t.grad.tolist() for t in local]))  # lists: tensors die with us
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned gloo processes: ~11 s on a shared 2-core CPU
def test_ddp_gather_gives_the_global_loss_and_its_gradient(free_port):
    results = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_ddp_worker, args=(2, free_port, results), nprocs=2)
    by_rank = {rank: (loss, grads) for rank, loss, grads in (results.get(), results.get())}
    full = [t.clone().requires_grad_() for t in _ddp_data()[:4]]
    loss = _ddp_loss(*full, _ddp_data()[4])
    loss.backward()
    world = 2
    for _rank, (rank_loss, _) in by_rank.items():
        assert rank_loss == pytest.approx(loss.item(), rel=1e-5)
    for i, tensor in enumerate(full):
        # DDP averages over ranks, so each rank's gradient / world is what DDP applies.
        gathered = torch.cat([torch.tensor(by_rank[r][1][i]) for r in range(world)]) / world
        torch.testing.assert_close(gathered, tensor.grad, rtol=1e-4, atol=1e-6)


def test_mmd_is_not_negative_for_nearly_collapsed_features():
    """Regression: |a|^2 + |b|^2 - 2ab in fp32 made MMD^2 negative for near-identical samples (it rewarded collapse)."""
    from losses.domain import mmd2

    torch.manual_seed(0)
    base = torch.rand(1, 1024)
    for _ in range(20):
        value = mmd2(*(base + 5e-8 * torch.randn(16, 1024)).split(8))
        assert value >= 0 and value < 1e-3
