"""Luo & Hu's latent point-cloud diffusion (CVPR 2021) on the core: the model behind
:class:`~.api.LatentGenerator`.

A cloud is a set of points drawn independently given a shape latent ``z``:

* a PointNet encoder (:class:`~multidiff.nets.pointnet.PointNetEncoder`) gives the posterior
  q(z | X) = N(mean, exp(logvar));
* a point-wise denoiser (:class:`~multidiff.nets.pointwise.PointwiseDenoiser`) is a DDPM over each
  point's coordinates conditioned on ``z``; sampling a cloud runs the core's samplers on
  (B, N, 3) noise with ``z`` closed over, so any number of points can be drawn;
* a latent prior p(z): Luo & Hu fit a normalizing flow. Here it is a small DDPM over ``z``
  (:class:`~multidiff.nets.vector_denoiser.VectorDenoiser`, LION's global-latent prior in small),
  sampled through ``core.samplers.run`` like the points. It predicts ``v`` (Salimans & Ho 2022), not
  the noise: see :class:`LatentPointDiffusion`.

The loss is Luo & Hu's Gaussian-VAE objective: ``core.losses.eps_mse`` of the points given a
posterior sample of ``z``, plus ``kl_weight`` (0.001 as theirs) times KL(q(z | X) || N(0, I)); the
prior's own ``core.losses.denoising_mse`` on the same (gradient-stopped) latents is added, so one run of
``core.training.fit`` trains all three nets. :meth:`LatentPointDiffusion.loss` draws a fresh
random subset of each cloud for the encoder and another for the denoiser: the points are
independent given ``z``, so the loss on a subset estimates Luo & Hu's (the mean over all points),
at a cost set by the subset sizes rather than by the size of the clouds.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from ...core.denoiser import as_eps_model, clip_denoised
from ...core.losses import PREDICTIONS, denoising_mse, draw_discrete_t, eps_mse
from ...core.samplers import run as run_sampler
from ...core.schedules import DiscreteSchedule
from ...core.training import TrainConfig
from ...nets.pointnet import PointNetEncoder
from ...nets.pointwise import PointwiseDenoiser
from ...nets.vector_denoiser import VectorDenoiser

__all__ = ["LatentPointDiffusion", "sample_points", "time_features", "TIME_FEATURES", "ENCODER_WIDTHS",
           "DECODER_WIDTHS", "DEFAULT_LATENT_TRAIN_CONFIG", "PRIOR_TRAIN_CONFIG"]

# How the latent model trains unless told otherwise: Luo & Hu's Adam settings (lr 2e-3, no weight
# decay, clipping at norm 10, the lr constant: they decay it only after 200k steps, beyond a CPU
# budget), with an EMA of the weights for sampling. A constant lr also lets a run be continued in
# chunks of wall time with the same schedule. ``LatentGenerator(train_config=)`` replaces it.
DEFAULT_LATENT_TRAIN_CONFIG = TrainConfig(epochs=300, lr=2e-3, weight_decay=0.0, lr_schedule="constant",
                                          ema_decay=0.995, grad_clip=10.0)
# The refit of the latent prior after the main run (``LatentGenerator(prior_max_steps=)`` sets max_steps).
PRIOR_TRAIN_CONFIG = TrainConfig(epochs=10 ** 9, lr=1e-3, weight_decay=0.0, lr_schedule="cosine", ema_decay=0.999,
                                 ema_min_windows=10, grad_clip=1.0)

ENCODER_WIDTHS = (128, 128, 256, 512)  # Luo & Hu's PointNet: per-point widths before the max-pool
DECODER_WIDTHS = (128, 256, 512, 256, 128)  # Luo & Hu's PointwiseNet between the 3-d input and output

# How the denoiser sees the diffusion step: Luo & Hu feed [beta_t, sin beta_t, cos beta_t]. Their
# betas lie in [1e-4, 0.02], so the features barely vary and the weights reading them must grow
# ~100-fold before the step matters (slow with Adam on a CPU budget of a few thousand steps);
# "signal" feeds [sqrt(alpha_bar_t), sqrt(1 - alpha_bar_t), (t + 1) / T], which span [0, 1]. On the
# sphere/square toy set of the tests, 400 steps gave samples at Chamfer 0.24 from their shape with
# "signal" and 0.31 with "luo_hu" (noise: 0.68).
TIME_FEATURES = ("signal", "luo_hu")


class LatentPointDiffusion(nn.Module):
    """Encoder, point-wise denoiser and latent prior with their schedules, loss and samplers.

    ``num_train_steps``, ``beta_start``, ``beta_end``: the points' linear schedule, by default that of
    Luo & Hu's generator code (``train_gen.py``: 100 steps, 1e-4..0.02). It ends at alpha_bar 0.36, not
    at noise, yet sampling starts from N(0, I) as theirs does: for clouds of unit std the two differ
    in shape, not in scale. Their auto-encoder's 200 steps 1e-4..0.05 end at 0.006; on a toy set
    (tests/points/test_latent.py) neither learned faster.
    ``prior_num_train_steps``: the latent prior's linear schedule (1e-4..0.02, as DDPM).
    ``encoder_widths`` / ``decoder_widths``: the hidden widths of the two point networks (Luo & Hu's
    by default); ``prior_width`` / ``prior_layers``: the prior's residual MLP.
    ``prior_prediction``: what the prior's network predicts, ``"v"`` (default), ``"eps"`` or ``"x0"``. The prior's
    schedule ends at alpha_bar 4e-5, where a noise prediction's error is amplified 1/sqrt(alpha_bar) =
    157-fold in the implied latent; its LayerNorm'd network cannot copy the input's norm, so its noise
    prediction there stays about 1 % off (per dimension, squared) and sampled latents came out 15-40 times
    too long (seen on ModelNet chairs: norm 250-680 against 15-17 for the encoder's latents), which the
    decoder turned into degenerate clouds. ``v`` is the clean latent at that end and the noise at the other.
    """

    def __init__(self, latent_dim: int = 256, num_train_steps: int = 100, beta_start: float = 1e-4,
                 beta_end: float = 0.02, time_features: str = "signal", prior_num_train_steps: int = 1000,
                 prior_width: int = 256, prior_layers: int = 3, encoder_widths: Sequence[int] = ENCODER_WIDTHS,
                 decoder_widths: Sequence[int] = DECODER_WIDTHS, prior_prediction: str = "v"):
        super().__init__()
        if prior_prediction not in PREDICTIONS:
            raise ValueError(f"prior_prediction must be one of {', '.join(PREDICTIONS)}, got {prior_prediction!r}")
        self.prior_prediction = prior_prediction
        if time_features not in TIME_FEATURES:
            raise ValueError(f"time_features must be one of {', '.join(TIME_FEATURES)}, got {time_features!r}")
        self.latent_dim, self.time_feature_kind = latent_dim, time_features
        self.encoder = PointNetEncoder(latent_dim, widths=encoder_widths)
        self.decoder = PointwiseDenoiser(latent_dim, time_dim=3, widths=decoder_widths)
        self.prior = VectorDenoiser(latent_dim, prior_width, prior_layers)
        # schedules are not buffers: the state dict (and the EMA) holds weights only
        self.schedule = DiscreteSchedule("linear", num_train_steps, beta_start, beta_end)
        self.prior_schedule = DiscreteSchedule("linear", prior_num_train_steps)

    def time_features(self, t: torch.Tensor) -> torch.Tensor:
        """Step indices (any shape) -> the denoiser's time features ``t.shape + (3,)`` (float32)."""
        return time_features(self.time_feature_kind, t, self.schedule)

    # -- training
    def loss(self, x: torch.Tensor, kl_weight: float, train_points: int, encoder_points: int) -> torch.Tensor:
        """Luo & Hu's Gaussian-VAE loss on clouds ``x`` (B, N, 3), plus the latent prior's loss:
        ``points + kl_weight * kl + prior`` of :meth:`loss_terms`."""
        terms = self.loss_terms(x, train_points, encoder_points)
        return terms["points"] + kl_weight * terms["kl"] + terms["prior"]

    def loss_terms(self, x: torch.Tensor, train_points: int, encoder_points: int) -> dict[str, torch.Tensor]:
        """The terms of :meth:`loss` (scalars): ``points``, the denoiser's noise MSE; ``kl``,
        KL(q(z | X) || N(0, I)) summed over the latent's dimensions; ``prior``, the latent prior's MSE.

        The encoder reads ``encoder_points`` random points of each cloud, the denoiser is trained
        on another ``train_points`` random points of it at one uniformly drawn step.
        """
        return self._terms_and_posterior(x, train_points, encoder_points)[0]

    def _terms_and_posterior(self, x: torch.Tensor, train_points: int, encoder_points: int):
        """:meth:`loss_terms` and the posterior ``(mean, logvar)`` they were computed from."""
        b = x.shape[0]
        mean, logvar = self.encoder(_subset(x, encoder_points))
        z = mean + (0.5 * logvar).exp() * torch.randn_like(mean)
        kl = 0.5 * (mean ** 2 + logvar.exp() - logvar - 1).sum(-1).mean()
        # one step per cloud, as Luo & Hu: the denoiser then folds each cloud's context into its weights
        # (one batched matmul per layer); a step per point was no better per second on a toy set
        t = draw_discrete_t(b, len(self.schedule), x.device)
        points = eps_mse(lambda x_t, t: self.decoder(x_t, self.time_features(t), z), _subset(x, train_points), t,
                         self.schedule.alpha_bar_of)
        prior = denoising_mse(self.prior, z.detach(), draw_discrete_t(b, len(self.prior_schedule), x.device),
                              self.prior_schedule.alpha_bar_of, self.prior_prediction)
        return {"points": points, "kl": kl, "prior": prior}, mean, logvar

    @torch.no_grad()
    def diagnose(self, x: torch.Tensor, train_points: int, encoder_points: int, seed: int = 0) -> dict[str, float]:
        """What a run has learned, on clouds ``x`` (B, N, 3): the :meth:`loss_terms` (seeded; the
        caller's random state is left as it was) and the posterior's shape: ``posterior_std``, the mean
        posterior standard deviation; ``code_norm``, the mean norm of the posterior means; and
        ``active_dims``, the latent dimensions whose posterior mean varies across the clouds with
        variance above 0.01 (Burda et al. 2016's active units; few means a collapsed posterior)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            terms, mean, logvar = self._terms_and_posterior(x, train_points, encoder_points)
        return {**{k: float(v) for k, v in terms.items()}, "posterior_std": float((0.5 * logvar).exp().mean()),
                "code_norm": float(mean.norm(dim=-1).mean()),
                "active_dims": int((mean.var(dim=0) > 0.01).sum()) if len(mean) > 1 else 0}

    def prior_loss(self, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """The prior's loss on posterior samples of ``(mean, logvar)`` (B, latent_dim) each."""
        z = mean + (0.5 * logvar).exp() * torch.randn_like(mean)
        return denoising_mse(self.prior, z, draw_discrete_t(len(z), len(self.prior_schedule), z.device),
                             self.prior_schedule.alpha_bar_of, self.prior_prediction)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, encoder_points: int, generator: Optional[torch.Generator] = None):
        """Posterior ``(mean, logvar)`` of clouds ``x`` (B, N, 3) from ``encoder_points`` random points of
        each (the encoder was trained on that many: a max over more points would shift its input)."""
        return self.encoder(_subset(x, encoder_points, generator))

    # -- sampling
    @torch.no_grad()
    def sample_latents(self, n: int, sampler: str, sampler_steps: Optional[int], generator: torch.Generator,
                       device) -> torch.Tensor:
        """``n`` latents (n, latent_dim) from the prior through ``core.samplers.run``."""
        prior = as_eps_model(self.prior, self.prior_prediction, self.prior_schedule.alpha_bar_of)
        return run_sampler(prior, sampler=sampler, sampler_steps=sampler_steps, schedule=self.prior_schedule,
                           shape=(n, self.latent_dim), device=device, generator=generator)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, num_points: int, sampler: str, sampler_steps: Optional[int],
               generator: torch.Generator, clip: Optional[float] = None) -> torch.Tensor:
        """``num_points`` points (B, num_points, 3) for each latent of ``z`` (B, latent_dim).

        ``clip`` bounds the implied clean points (DDPM's ``clip_denoised``) so that few-step samplers
        stay in the range of the training clouds."""
        return sample_points(self.decoder, z, num_points, self.time_features, self.schedule, sampler, sampler_steps,
                             generator, clip)


def sample_points(decoder: PointwiseDenoiser, z: torch.Tensor, num_points: int, features,
                  schedule: DiscreteSchedule, sampler: str, sampler_steps: Optional[int], generator: torch.Generator,
                  clip: Optional[float] = None) -> torch.Tensor:
    """``num_points`` points (B, num_points, 3) drawn independently given each code of ``z`` (B, latent_dim)
    by the point-wise ``decoder`` through ``core.samplers.run`` on ``schedule``;
    ``features`` maps step indices to the decoder's time features. ``clip`` bounds the implied clean
    points (DDPM's ``clip_denoised``)."""
    def model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return decoder(x_t, features(t), z)

    if clip is not None:
        model = clip_denoised(model, schedule.alpha_bar_of, -clip, clip)
    return run_sampler(model, sampler=sampler, sampler_steps=sampler_steps, schedule=schedule,
                       shape=(len(z), num_points, 3), device=z.device, generator=generator)


def time_features(kind: str, t: torch.Tensor, schedule: DiscreteSchedule) -> torch.Tensor:
    """Step indices ``t`` (any shape) -> the point denoiser's time features ``t.shape + (3,)`` (float32)
    of :data:`TIME_FEATURES` ``kind`` for ``schedule``."""
    t = t.long()
    if kind == "luo_hu":
        beta = schedule.betas.to(t.device)[t]
        feats = [beta, beta.sin(), beta.cos()]
    else:
        ab = schedule.alpha_bar_of(t)
        feats = [ab.sqrt(), (1 - ab).sqrt(), (t + 1).double() / len(schedule)]
    return torch.stack(feats, dim=-1).float()


def _subset(x: torch.Tensor, k: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``k`` random points of each cloud of ``x`` (B, N, 3), without repeats (all N, shuffled, when k >= N)."""
    b, n, _ = x.shape
    idx = torch.rand(b, n, generator=generator, device=x.device).argsort(dim=1)[:, : min(k, n)]
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
