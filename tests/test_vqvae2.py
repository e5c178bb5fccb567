"""VQ-VAE-2 encoder/decoder (models/vqvae2.py): shapes, gradients, EMA codebooks, fp32, dead codes, DDP."""

from __future__ import annotations

import socket
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from vector_quantize_pytorch import VectorQuantize
from vector_quantize_pytorch import vector_quantize_pytorch as vq_lib

from models.vqvae2 import VQVAE2, Quantizer

SMALL = dict(channel=32, n_res_block=1, n_res_channel=8, embed_dim=16, n_embed=32)


@pytest.fixture(autouse=True)
def _quiet():
    # The small-batch threshold warning is tested on its own; elsewhere it is noise.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="dead_code_threshold")
        yield


@pytest.mark.parametrize("size", [64, 128, 256])
def test_shapes_follow_the_paper(size):
    torch.manual_seed(0)
    model = VQVAE2(image_size=size)  # full width: 64x64 bottom / 32x32 top at 256 px
    out = model(torch.rand(2, 3, size, size))
    assert out.features.shape == (2, 128, size // 4, size // 4)
    assert (model.feature_size, model.feature_channels) == (size // 4, 128)
    assert out.loss.shape == () and torch.isfinite(out.loss)
    for level in ("top", "bottom"):
        assert {f"{level}/{k}" for k in ("perplexity", "usage", "dead")} <= out.stats.keys()
    assert 1 <= out.stats["top/perplexity"] <= 512 + 1e-3 and 0 < out.stats["bottom/usage"] <= 1


def test_top_and_bottom_latent_sizes():
    model = VQVAE2(image_size=256, **SMALL)
    seen = {}
    model.quantize_t.register_forward_hook(lambda m, i, o: seen.update(top=o[0].shape))
    model.quantize_b.register_forward_hook(lambda m, i, o: seen.update(bottom=o[0].shape))
    model(torch.rand(1, 3, 256, 256))
    assert seen == {"top": (1, 16, 32, 32), "bottom": (1, 16, 64, 64)}


@pytest.mark.parametrize("reconstruct", [False, True])
def test_every_parameter_gets_a_gradient(reconstruct):
    torch.manual_seed(0)
    model = VQVAE2(image_size=64, reconstruct=reconstruct, **SMALL)
    images = torch.rand(4, 3, 64, 64)
    out = model(images)
    loss = out.features.pow(2).mean() + out.loss
    if reconstruct:
        loss = loss + (model.decode(out.features) - images).pow(2).mean()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        assert torch.isfinite(p.grad).all(), name
    assert (model.decoder is None) is not reconstruct


def test_decode_gives_images_in_unit_range():
    model = VQVAE2(image_size=64, reconstruct=True, **SMALL)
    images = model.decode(model(torch.rand(2, 3, 64, 64)).features)
    assert images.shape == (2, 3, 64, 64) and images.min() >= 0 and images.max() <= 1
    with pytest.raises(RuntimeError, match="reconstruct=False"):
        VQVAE2(image_size=64, **SMALL).decode(torch.zeros(1, 32, 16, 16))


def test_codebooks_learn_by_ema_not_by_gradient():
    torch.manual_seed(0)
    model = VQVAE2(image_size=64, **SMALL)
    assert not any("embed" in name for name, _ in model.named_parameters())  # codebooks are buffers
    images = torch.rand(4, 3, 64, 64)
    model(images)  # k-means init
    before = model.quantize_b.codebook.clone()
    out = model(images)
    (out.features.sum() + out.loss).backward()
    after = model.quantize_b.codebook.clone()
    assert not torch.equal(before, after), "training forward should move the codebook by EMA"
    assert not model.quantize_b.codebook.requires_grad and model.quantize_b.codebook.grad is None
    model.eval()
    model(images)
    assert torch.equal(after, model.quantize_b.codebook), "eval forward must not touch the codebook"


def test_vq_loss_is_alpha_times_commitment_also_in_eval():
    torch.manual_seed(0)
    quantizer = Quantizer(8, 16, alpha=0.25, kmeans_init=False, dead_code_threshold=0)
    reference = VectorQuantize(
        dim=8,
        codebook_size=16,
        accept_image_fmap=True,
        commitment_weight=0.25,
        decay=0.99,
        rotation_trick=False,
        sync_codebook=False,
    )
    reference.load_state_dict(quantizer.vq.state_dict())
    z = torch.randn(2, 8, 4, 4)
    _, ours, _ = quantizer(z)
    _, _, theirs = reference(z)
    torch.testing.assert_close(ours, theirs)  # same number as the library's own commitment loss
    quantizer.eval()
    quantized, loss, _ = quantizer(z)
    torch.testing.assert_close(loss, 0.25 * (quantized - z).pow(2).mean())
    assert loss > 0  # the library itself would return 0 in eval


@pytest.mark.parametrize("kmeans_init", [True, False])
def test_eval_quantisation_is_the_librarys_nearest_code(kmeans_init):
    # Quantizer.nearest (written out so that E exports to ONNX) must pick the codes the library's own eval path
    # picks, and an uninitialised codebook must still get its k-means init on the first eval batch, as before.
    torch.manual_seed(0)
    quantizer = Quantizer(16, 64, kmeans_init=kmeans_init, dead_code_threshold=0).eval()
    z = torch.randn(3, 16, 8, 8)
    first, first_codes_loss, _ = quantizer(z)  # k-means init (when on) happens here, in the library
    assert bool(quantizer.vq._codebook.initted)
    if kmeans_init:  # the codebook moved onto the batch: its codes are k-means centroids of z
        assert (first - z).square().mean() < z.square().mean()
    z = torch.randn(3, 16, 8, 8)
    ours, indices = quantizer.nearest(z)
    theirs, their_indices, _ = quantizer.vq(z)
    assert torch.equal(indices, their_indices) and torch.equal(ours, theirs)
    quantized, _, stats = quantizer(z)  # the forward takes the written-out path on a learnt codebook
    assert torch.equal(quantized, theirs) and stats["usage"] > 0


def test_quantiser_runs_in_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    quantizer = Quantizer(16, 64, kmeans_init=False, dead_code_threshold=0).eval()
    # Far from the origin and close together: ||x||^2 + ||e||^2 - 2 x.e cancels badly in bf16
    # (the library alone, under CPU autocast, picks a wrong code for every vector here).
    quantizer.vq.codebook = 100 + 0.1 * torch.randn(64, 16)
    z = 100 + 0.1 * torch.randn(2, 16, 8, 8)
    reference, _, _ = quantizer(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        quantized, _, _ = quantizer(z)
        from_bf16, loss, _ = quantizer(z.bfloat16())  # what a conv under autocast hands over
        features = VQVAE2(image_size=64, **SMALL)(torch.rand(2, 3, 64, 64)).features
    assert torch.equal(quantized, reference), "codes differ from fp32: distances ran in bf16"
    assert from_bf16.dtype == torch.float32 and loss.dtype == torch.float32
    assert torch.isfinite(features).all()


def test_dead_codes_are_reseeded_from_the_batch():
    torch.manual_seed(0)
    # Codes start at the library's small uniform init, far from data centred at 5: nothing lands near
    # most of them. Re-seeding must move every code onto the data within a few steps.
    quantizer = Quantizer(4, 32, kmeans_init=False, dead_code_threshold=2.0)
    data = 5 + torch.randn(8, 4, 8, 8)  # 512 vectors, 16 per code on average
    _, _, first = quantizer(data)
    assert first["dead"] > 0
    for _ in range(5):
        _, loss, stats = quantizer(data)
    vectors = data.permute(0, 2, 3, 1).reshape(-1, 4)
    nearest = torch.cdist(quantizer.codebook, vectors).min(1).values
    assert nearest.max() < 2.0, "a code stayed away from the data"
    assert stats["usage"] > first["usage"] and stats["perplexity"] > first["perplexity"]
    assert torch.isfinite(loss)


def test_small_batch_threshold_warns_once():
    quantizer = Quantizer(4, 512, kmeans_init=False, dead_code_threshold=2.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantizer(torch.randn(2, 4, 8, 8))  # 128 vectors for 512 codes
        quantizer(torch.randn(2, 4, 8, 8))
    assert sum("dead_code_threshold" in str(w.message) for w in caught) == 1


def test_wrong_image_size_is_an_error():
    with pytest.raises(ValueError, match="expects"):
        VQVAE2(image_size=64, **SMALL)(torch.rand(1, 3, 128, 128))
    with pytest.raises(ValueError, match="multiple of 8"):
        VQVAE2(image_size=100)


def test_ddp_wiring_mirrors_the_library():
    # What the library's own Codebook picks with use_ddp=True, sync_kmeans=True is what we switch to
    # once a process group is up: checks the wiring against an upgraded library.
    library = vq_lib.Codebook(4, 8, use_ddp=True, sync_kmeans=True)
    assert library.all_reduce_fn is dist.all_reduce and library.kmeans_all_reduce_fn is dist.all_reduce
    assert library.sample_fn is vq_lib.sample_vectors_distributed
    assert library.replace_sample_fn is vq_lib.sample_vectors_distributed
    local = Quantizer(4, 8).vq._codebook
    assert local.all_reduce_fn is vq_lib.noop and local.sample_fn is vq_lib.batched_sample_vectors


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_data() -> torch.Tensor:
    return torch.randn(4, 4, 4, 4, generator=torch.Generator().manual_seed(123))


def _ddp_worker(rank: int, world: int, port: int, results) -> None:
    # Built before the process group exists, as LightningCLI builds models before DDP starts.
    torch.manual_seed(0)  # identical initial codebooks, as DDP's initial broadcast would make them
    plain = Quantizer(4, 16, kmeans_init=False, dead_code_threshold=0)
    torch.manual_seed(0)
    reseeding = Quantizer(4, 16, kmeans_init=True, dead_code_threshold=3.0)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.manual_seed(rank)  # ranks sample differently: only the all-reduce can make them agree
        local = _ddp_data()[rank * 2 : rank * 2 + 2]
        plain(local)
        for _ in range(3):
            reseeding(local + torch.randn_like(local))
        books = [torch.zeros(2, 16, 4) for _ in range(world)]
        dist.all_gather(books, torch.stack([plain.codebook, reseeding.codebook]))
        if rank == 0:
            results.put([b.tolist() for b in books])  # plain lists: tensors would die with this process
    finally:
        dist.destroy_process_group()


def test_ddp_ranks_learn_one_codebook():
    results = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_ddp_worker, args=(2, _free_port(), results), nprocs=2)
    books = [torch.tensor(b) for b in results.get()]
    torch.testing.assert_close(books[0], books[1])  # both levels of sync: EMA and k-means/re-seeding
    # One process on the whole batch gives the same EMA step as two ranks on halves.
    torch.manual_seed(0)
    single = Quantizer(4, 16, kmeans_init=False, dead_code_threshold=0)
    single(_ddp_data())
    torch.testing.assert_close(books[0][0], single.codebook)
