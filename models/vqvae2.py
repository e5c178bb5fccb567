"""Encoder E and decoder D of the regression pipeline: a two-level VQ-VAE-2 (docs/method.md#encoder).

Layout after rosinality/vq-vae-2-pytorch; codebooks from vector-quantize-pytorch. For an S px image:
    enc_b: image -> (B, 128, S/4, S/4)        bottom latent   (256 px: 64x64, 128 px: 32x32, 64 px: 16x16)
    enc_t: bottom -> (B, 128, S/8, S/8)       top latent      (256 px: 32x32, 128 px: 16x16, 64 px: 8x8)
    quantise top (64-d codes); dec_t lifts it back to S/4 and conditions the bottom code
    quantise bottom (64-d codes)
    D: upsample the quantised top map to S/4 and concatenate it with the quantised bottom map:
       features (B, 128, S/4, S/4), the regressor's input (64x64x128 at 256 px, as in the paper).
An optional small image decoder maps the features back to the image (the reconstruction term,
weight 0 by default in the paper; docs/method.md#extra-terms); it is only built when asked for, so it never
sits unused.

L_differ (eq. 4): the codebook term is replaced by EMA updates (VQ-VAE-2 / rosinality practice), the
commitment term alpha * ||sg[e] - E(I)||^2 (alpha = 0.25) is returned, summed over both levels;
the restored loss weights it by beta (losses/restored.py).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from vector_quantize_pytorch import VectorQuantize
from vector_quantize_pytorch import vector_quantize_pytorch as vq_lib


class ResBlock(nn.Module):
    """ReLU -> 3x3 conv -> ReLU -> 1x1 conv, plus the skip."""

    def __init__(self, channel: int, res_channel: int) -> None:
        super().__init__()
        # Not in-place: the first ReLU would overwrite the skip input (rosinality's "inplace ReLU" fix).
        self.conv = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channel, res_channel, 3, padding=1), nn.ReLU(), nn.Conv2d(res_channel, channel, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


def encoder(in_channel: int, channel: int, n_res_block: int, n_res_channel: int, stride: int) -> nn.Sequential:
    """Downsample by `stride` (4 or 2) with 4x4 stride-2 convs, then residual blocks."""
    layers = [nn.Conv2d(in_channel, channel // 2, 4, 2, 1), nn.ReLU()]
    if stride == 4:
        layers += [nn.Conv2d(channel // 2, channel, 4, 2, 1), nn.ReLU(), nn.Conv2d(channel, channel, 3, padding=1)]
    else:
        layers += [nn.Conv2d(channel // 2, channel, 3, padding=1)]
    layers += [ResBlock(channel, n_res_channel) for _ in range(n_res_block)] + [nn.ReLU()]
    return nn.Sequential(*layers)


def decoder(
    in_channel: int, out_channel: int, channel: int, n_res_block: int, n_res_channel: int, stride: int
) -> nn.Sequential:
    """Residual blocks, then upsample by `stride` (4 or 2) with 4x4 stride-2 transposed convs."""
    layers = [nn.Conv2d(in_channel, channel, 3, padding=1)]
    layers += [ResBlock(channel, n_res_channel) for _ in range(n_res_block)] + [nn.ReLU()]
    if stride == 4:
        layers += [nn.ConvTranspose2d(channel, channel // 2, 4, 2, 1), nn.ReLU()]
        layers += [nn.ConvTranspose2d(channel // 2, out_channel, 4, 2, 1)]
    else:
        layers += [nn.ConvTranspose2d(channel, out_channel, 4, 2, 1)]
    return nn.Sequential(*layers)


def _ddp_active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class Quantizer(nn.Module):
    """One level's codebook: EMA-learnt, k-means initialised, dead codes re-seeded; run in fp32."""

    def __init__(
        self,
        dim: int,
        n_embed: int,
        decay: float = 0.99,
        alpha: float = 0.25,
        kmeans_init: bool = True,
        dead_code_threshold: float = 2.0,
    ) -> None:
        super().__init__()
        self.alpha = alpha
        # Every setting that changes the maths is spelled out: the library's defaults differ from
        # VQ-VAE-2 (decay 0.8, commitment 1.0, rotation-trick gradients).
        self.vq = VectorQuantize(
            dim=dim,
            codebook_size=n_embed,
            accept_image_fmap=True,  # (B, C, H, W) in and out
            decay=decay,  # VQ-VAE-2's gamma = 0.99
            eps=1e-5,  # Laplace smoothing of the EMA cluster sizes
            ema_update=True,  # eq. 4's codebook term is replaced by EMA: the codebook is a buffer, no gradient
            learnable_codebook=False,
            # 0 here: we compute alpha * ||sg[e] - z||^2 ourselves, because the library returns a
            # zero loss outside training and validation would log L_differ = 0.
            commitment_weight=0.0,
            rotation_trick=False,  # plain straight-through gradients, as in VQ-VAE-2 (the default is on)
            straight_through=False,
            stochastic_sample_codes=False,  # nearest code, no Gumbel sampling
            use_cosine_sim=False,  # Euclidean nearest neighbour, as in VQ-VAE-2
            kmeans_init=kmeans_init,  # codebook = k-means centroids of the first batch
            kmeans_iters=10,
            threshold_ema_dead_code=dead_code_threshold,  # EMA usage below this: re-seed from the batch
            orthogonal_reg_weight=0.0,
            codebook_diversity_loss_weight=0.0,
            # Decided per call in _sync_with_process_group: the library fixes it at construction,
            # which under Lightning happens before the process group exists.
            sync_codebook=False,
            sync_kmeans=True,
        )
        self.n_embed = n_embed
        self.dead_code_threshold = dead_code_threshold
        self._warned_threshold = False
        # Codes below this EMA usage count as dead in the stats (1 when re-seeding is off).
        self.dead_threshold = dead_code_threshold if dead_code_threshold > 0 else 1.0
        self.register_buffer("last_dead", torch.zeros((), dtype=torch.long), persistent=False)
        codebook = self.vq._codebook
        missing = [
            a
            for a in (
                "use_ddp",
                "all_reduce_fn",
                "kmeans_all_reduce_fn",
                "sample_fn",
                "replace_sample_fn",
                "expire_codes_",
                "cluster_size",
            )
            if not hasattr(codebook, a)
        ]
        if missing:
            raise RuntimeError(
                f"vector-quantize-pytorch's Codebook lacks {missing}; models/vqvae2.py was written "
                "against 1.32: check its DDP wiring before upgrading"
            )
        # Count the codes the library is about to re-seed (after this step's EMA update, before expiry).
        codebook.expire_codes_ = self._count_then_expire

    def _count_then_expire(self, batch_samples: torch.Tensor, seq_mask: torch.Tensor | None = None) -> None:
        codebook = self.vq._codebook
        self.last_dead.copy_((codebook.cluster_size < self.dead_threshold).sum())  # no host sync
        type(codebook).expire_codes_(codebook, batch_samples, seq_mask=seq_mask)

    def _sync_with_process_group(self) -> None:
        # Under DDP the EMA statistics (cluster sizes, code sums), k-means and dead-code samples are
        # all-reduced / drawn across ranks, so N GPUs learn one codebook. This mirrors what the
        # library's Codebook.__init__ does with use_ddp=True (sync_kmeans=True), but is decided
        # when the module runs, so a module built before init_process_group still syncs.
        codebook, ddp = self.vq._codebook, _ddp_active()
        if codebook.use_ddp == ddp:
            return
        codebook.use_ddp = ddp
        codebook.all_reduce_fn = codebook.kmeans_all_reduce_fn = dist.all_reduce if ddp else vq_lib.noop
        sample = vq_lib.sample_vectors_distributed if ddp else vq_lib.batched_sample_vectors
        codebook.sample_fn = codebook.replace_sample_fn = sample

    def _check_threshold(self, z: torch.Tensor) -> None:
        # The threshold counts vectors per step (EMA), not a fraction: 2 is tiny against the ~64 per
        # code of batch 32 at 256 px, but above the ~1 per code of a CPU demo batch, where every
        # code would be re-seeded at every step. Say so once instead of training on noise codes.
        world = dist.get_world_size() if _ddp_active() else 1
        mean_usage = z.shape[0] * z.shape[2] * z.shape[3] * world / self.n_embed
        if not self._warned_threshold and 0 < mean_usage <= 2 * self.dead_code_threshold:
            self._warned_threshold = True
            warnings.warn(
                f"dead_code_threshold={self.dead_code_threshold} is close to the mean code usage of "
                f"this batch ({mean_usage:.2g} vectors per code): most codes would be re-seeded every "
                "step; lower the threshold or n_embed, or raise the batch size",
                stacklevel=3,
            )

    @property
    def codebook(self) -> torch.Tensor:
        """The (n_embed, dim) code vectors."""
        return self.vq.codebook

    def nearest(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode quantisation of z (B, dim, H, W) on the learnt codebook: (each vector's nearest code
        (B, dim, H, W), code indices (B, H, W)). The library's eval path (argmin of cdist, then a gather) written
        out, without its k-means-init branch on a buffer, so the encoder exports to ONNX (eval.export)."""
        batch, dim, height, width = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, dim)
        codebook = self.codebook
        distances = flat.square().sum(1, keepdim=True) + codebook.square().sum(1) - 2 * flat @ codebook.T
        indices = distances.argmin(1)
        quantized = codebook[indices].reshape(batch, height, width, dim).permute(0, 3, 1, 2)
        return quantized, indices.reshape(batch, height, width)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Quantise z (B, dim, H, W): straight-through codes (fp32), alpha * commitment, usage stats (none while
        torch.export traces it: the graph returns parameters, and bincount's output size depends on the data)."""
        exporting = torch.compiler.is_exporting()
        self._sync_with_process_group()
        if self.training:
            self._check_threshold(z)
        # fp32 whatever the autocast: the library only turns CUDA autocast off inside its Codebook and
        # casts back to the input dtype; fp16 distances overflow (rosinality #65), bf16 ones pick wrong codes.
        with torch.autocast(z.device.type, enabled=False):
            z = z.float()
            # An exported graph has a learnt codebook (eval.export checks it): no k-means init to trace.
            if not self.training and (exporting or bool(self.vq._codebook.initted)):
                quantized, indices = self.nearest(z)
            else:  # training, or the first batch of an uninitialised codebook (k-means init runs in eval too)
                quantized, indices, _ = self.vq(z)
            commitment = self.alpha * F.mse_loss(quantized.detach(), z)
        if exporting:
            return quantized, commitment, {}
        if not self.training:  # no EMA step ran: count the dead codes as they stand
            self.last_dead.copy_((self.vq._codebook.cluster_size < self.dead_threshold).sum())
        counts = torch.bincount(indices.flatten(), minlength=self.n_embed).float()
        probs = counts / counts.sum()
        stats = {
            "perplexity": torch.exp(-(probs * torch.log(probs.clamp_min(1e-10))).sum()),  # effective codes used
            "usage": (counts > 0).float().mean(),  # fraction of the codebook hit by this batch
            "dead": self.last_dead.clone(),  # codes re-seeded this step (training) / below threshold (eval)
        }
        return quantized, commitment, stats


class VQVAE2Output(NamedTuple):
    """What E and D give the rest of the pipeline."""

    features: torch.Tensor  # (B, 2 * embed_dim, S/4, S/4) regressor input
    loss: torch.Tensor  # L_differ: alpha-weighted commitment, summed over both levels
    stats: dict[str, torch.Tensor]  # "top/perplexity", "bottom/dead", ... for logging


class VQVAE2(nn.Module):
    """Image (B, 3, S, S) in [0, 1] -> quantised two-level feature map for the regressor."""

    def __init__(
        self,
        image_size: int = 256,
        channel: int = 128,
        n_res_block: int = 2,
        n_res_channel: int = 32,
        embed_dim: int = 64,
        n_embed: int = 512,
        decay: float = 0.99,
        alpha: float = 0.25,
        kmeans_init: bool = True,
        dead_code_threshold: float = 2.0,
        reconstruct: bool = False,
    ) -> None:
        super().__init__()
        if image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8 (two downsamplings: 4 and 2), got {image_size}")
        # Kept as attributes of the same names: a checkpoint rebuilds the net from them (docs/contracts.md 6).
        self.image_size, self.channel = image_size, channel
        self.n_res_block, self.n_res_channel = n_res_block, n_res_channel
        self.embed_dim, self.n_embed, self.decay, self.alpha = embed_dim, n_embed, decay, alpha
        self.kmeans_init, self.dead_code_threshold, self.reconstruct = kmeans_init, dead_code_threshold, reconstruct
        self.feature_size = image_size // 4
        self.feature_channels = 2 * embed_dim
        quantizer = dict(
            n_embed=n_embed, decay=decay, alpha=alpha, kmeans_init=kmeans_init, dead_code_threshold=dead_code_threshold
        )
        self.enc_b = encoder(3, channel, n_res_block, n_res_channel, stride=4)
        self.enc_t = encoder(channel, channel, n_res_block, n_res_channel, stride=2)
        self.quantize_conv_t = nn.Conv2d(channel, embed_dim, 1)
        self.quantize_t = Quantizer(embed_dim, **quantizer)
        self.dec_t = decoder(embed_dim, embed_dim, channel, n_res_block, n_res_channel, stride=2)
        self.quantize_conv_b = nn.Conv2d(embed_dim + channel, embed_dim, 1)
        self.quantize_b = Quantizer(embed_dim, **quantizer)
        self.upsample_t = nn.ConvTranspose2d(embed_dim, embed_dim, 4, 2, 1)  # D: top map to the bottom's size
        self.decoder = decoder(2 * embed_dim, 3, channel, n_res_block, n_res_channel, stride=4) if reconstruct else None

    def forward(self, images: torch.Tensor) -> VQVAE2Output:
        """Encode and quantise both levels; features are the regressor's input."""
        if images.shape[1:] != (3, self.image_size, self.image_size):
            raise ValueError(
                f"VQVAE2 expects (B, 3, {self.image_size}, {self.image_size}) images in [0, 1], "
                f"got {tuple(images.shape)}"
            )
        x = images * 2 - 1  # callers pass [0, 1] (docs/contracts.md); the network was designed for [-1, 1]
        enc_b = self.enc_b(x)  # (B, channel, S/4, S/4)
        enc_t = self.enc_t(enc_b)  # (B, channel, S/8, S/8)
        quant_t, loss_t, stats_t = self.quantize_t(self.quantize_conv_t(enc_t))  # (B, embed_dim, S/8, S/8)
        dec_t = self.dec_t(quant_t)  # (B, embed_dim, S/4, S/4)
        quant_b, loss_b, stats_b = self.quantize_b(self.quantize_conv_b(torch.cat([dec_t, enc_b], 1)))
        features = torch.cat([self.upsample_t(quant_t), quant_b], 1)  # (B, 2 * embed_dim, S/4, S/4)
        stats = {f"top/{k}": v for k, v in stats_t.items()} | {f"bottom/{k}": v for k, v in stats_b.items()}
        return VQVAE2Output(features, loss_t + loss_b, stats)

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Reconstruct the image (B, 3, S, S) in [0, 1] from the features (optional reconstruction term)."""
        if self.decoder is None:
            raise RuntimeError("VQVAE2 was built with reconstruct=False: there is no image decoder")
        return torch.sigmoid(self.decoder(features))
