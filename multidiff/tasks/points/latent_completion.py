"""The model of :class:`~.api.LatentCompleter` (issue 12): completion from a shape code of the scan,
linear in points.

PVD-style completion (:class:`~.api.Completer`) denoises the whole cloud through a neighbour graph
over all of its points, which a CPU cannot afford at 2048 points. Here a PointNet encoder (Qi et al.
2017) reads the scan once into a code ``z``, and Luo & Hu's point-wise denoiser (CVPR 2021) draws the
missing points independently given ``z``: the cost is linear in points and no graph is built. As in
PVD, the scan's points are kept as they are and the model draws the rest. It learns, from
hidden-point-removal scans of the training shapes (:func:`~.api.completion_pairs`, each pair in the
frame of its scan), the distribution of the shape's points that the scan does not hold.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from ...core.losses import draw_discrete_t, eps_mse
from ...core.schedules import DiscreteSchedule
from ...nets.pointnet import PointNetEncoder
from ...nets.pointwise import PointwiseDenoiser
from .latent import DECODER_WIDTHS, ENCODER_WIDTHS, TIME_FEATURES, sample_points, time_features

__all__ = ["ScanCompletionDiffusion"]


class ScanCompletionDiffusion(nn.Module):
    """The scan encoder and the point-wise denoiser of the missing points, with their schedule.

    ``num_train_steps``, ``beta_start``, ``beta_end``: a linear schedule; the default (200 steps,
    1e-4..0.05, Luo & Hu's auto-encoder) ends at alpha_bar 0.006, near the N(0, I) that sampling
    starts from: the missing part of a shape sits off the scan's centre, which a schedule ending at
    alpha_bar 0.36 (their generator's) would carry into its start.
    """

    def __init__(self, latent_dim: int = 256, num_train_steps: int = 200, beta_start: float = 1e-4,
                 beta_end: float = 0.05, time_features: str = "signal", encoder_widths: Sequence[int] = ENCODER_WIDTHS,
                 decoder_widths: Sequence[int] = DECODER_WIDTHS):
        super().__init__()
        if time_features not in TIME_FEATURES:
            raise ValueError(f"time_features must be one of {', '.join(TIME_FEATURES)}, got {time_features!r}")
        self.time_feature_kind = time_features
        self.encoder = PointNetEncoder(latent_dim, widths=encoder_widths)
        self.decoder = PointwiseDenoiser(latent_dim, time_dim=3, widths=decoder_widths)
        self.schedule = DiscreteSchedule("linear", num_train_steps, beta_start, beta_end)  # not in the state dict

    def time_features(self, t: torch.Tensor) -> torch.Tensor:
        """Step indices (any shape) -> the denoiser's time features ``t.shape + (3,)`` (float32)."""
        return time_features(self.time_feature_kind, t, self.schedule)

    def code(self, scan: torch.Tensor) -> torch.Tensor:
        """The code (B, latent_dim) of scans (B, M, 3): the encoder's mean (no prior to sample it from,
        so no KL term either). A max-pool: repeated points do not change it."""
        return self.encoder(scan)[0]

    def loss(self, x0: torch.Tensor, known: torch.Tensor, train_points: int, encoder_points: int) -> torch.Tensor:
        """Noise MSE of ``train_points`` missing points of each pair given the code of ``encoder_points``
        of its scan points, both drawn with replacement (pairs hold scans of different sizes);
        ``x0`` (B, N, 3) holds the scan points first, flagged by ``known`` (B, N, 1)."""
        n_known = known[..., 0].sum(1).long()
        n = x0.shape[1]
        scan = _rows(x0, torch.zeros_like(n_known), n_known, encoder_points)
        missing = _rows(x0, n_known, torch.full_like(n_known, n), train_points)
        z = self.code(scan)
        t = draw_discrete_t(len(x0), len(self.schedule), x0.device)
        return eps_mse(lambda x_t, t: self.decoder(x_t, self.time_features(t), z), missing, t,
                       self.schedule.alpha_bar_of)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, num_points: int, sampler: str, sampler_steps: Optional[int],
               generator: torch.Generator, clip: Optional[float] = None) -> torch.Tensor:
        """``num_points`` missing points (B, num_points, 3) for each code of ``z``."""
        return sample_points(self.decoder, z, num_points, self.time_features, self.schedule, sampler, sampler_steps,
                             generator, clip)


def _rows(x: torch.Tensor, start: torch.Tensor, stop: torch.Tensor, k: int) -> torch.Tensor:
    """``k`` rows of each ``x[b, start[b]:stop[b]]`` drawn uniformly with replacement (B, k, C)."""
    span = (stop - start).clamp(min=1).unsqueeze(1)
    idx = start.unsqueeze(1) + (torch.rand(len(x), k, device=x.device) * span).long().clamp(max=span - 1)
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
