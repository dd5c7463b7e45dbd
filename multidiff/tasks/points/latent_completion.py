"""Completion from a shape code of the scan, linear in points: :class:`LatentCompleter` (issue 12).

PVD-style completion (:class:`~.api.Completer`) denoises the whole cloud through a neighbour graph
over all of its points, which a CPU cannot afford at 2048 points. Here a PointNet encoder (Qi et al.
2017) reads the scan once into a code ``z``, and Luo & Hu's point-wise denoiser (CVPR 2021) draws the
missing points independently given ``z``: the cost is linear in points and no graph is built. As in
PVD, the scan's points are kept as they are and the model draws the rest. It learns, from
hidden-point-removal scans of the training shapes (:func:`~.api.completion_pairs`, each pair in the
frame of its scan), the distribution of the shape's points that the scan does not hold.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import nn

from ...core.checkpoint import load_checkpoint, load_state_strict
from ...core.device import resolve_device
from ...core.losses import draw_discrete_t, eps_mse
from ...core.samplers import resolve as resolve_sampler
from ...core.schedules import alpha_bars, linear_betas
from ...core.training import Batches, TrainConfig, TrainResult, fit as train_loop
from ...core.validate import check_whole
from ...datasets.pointclouds import NORMALIZATIONS
from ...nets.pointnet import PointNetEncoder
from ...nets.pointwise import PointwiseDenoiser
from .api import completion_pairs, prepare_scans, restore_scan, scan_list, up_rotation
from .latent import (DECODER_WIDTHS, DEFAULT_LATENT_TRAIN_CONFIG, ENCODER_WIDTHS, TIME_FEATURES, sample_points,
                     time_features)
from .model import PointModel, _PointDiffusion, check_training_args

__all__ = ["LatentCompleter", "ScanCompletionDiffusion"]


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
        self.betas = linear_betas(num_train_steps, beta_start, beta_end)  # plain tensors: not in the state dict
        self.alpha_bars = alpha_bars(self.betas)

    def alpha_bar_of(self, t: torch.Tensor) -> torch.Tensor:
        return self.alpha_bars.to(t.device)[t.long()]

    def time_features(self, t: torch.Tensor) -> torch.Tensor:
        return time_features(self.time_feature_kind, t, self.betas, self.alpha_bars)

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
        t = draw_discrete_t(len(x0), len(self.alpha_bars), x0.device)
        return eps_mse(lambda x_t, t: self.decoder(x_t, self.time_features(t), z), missing, t, self.alpha_bar_of)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, num_points: int, sampler: str, sampler_steps: Optional[int],
               generator: torch.Generator, clip: Optional[float] = None) -> torch.Tensor:
        """``num_points`` missing points (B, num_points, 3) for each code of ``z``."""
        return sample_points(self.decoder, z, num_points, self.time_features, self.alpha_bars, sampler, sampler_steps,
                             generator, clip)


def _rows(x: torch.Tensor, start: torch.Tensor, stop: torch.Tensor, k: int) -> torch.Tensor:
    """``k`` rows of each ``x[b, start[b]:stop[b]]`` drawn uniformly with replacement (B, k, C)."""
    span = (stop - start).clamp(min=1).unsqueeze(1)
    idx = start.unsqueeze(1) + (torch.rand(len(x), k, device=x.device) * span).long().clamp(max=span - 1)
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


_HPARAMS = ("num_points", "latent_dim", "num_train_steps", "beta_start", "beta_end", "time_features", "train_points",
            "encoder_points", "encoder_widths", "decoder_widths", "max_known", "views", "normalization")
_D = DEFAULT_LATENT_TRAIN_CONFIG
KIND_VERSION = 1


class LatentCompleter(PointModel):
    """Completion of partial scans at any number of points: the scan's code, then the missing points
    drawn one by one given it (model: :class:`ScanCompletionDiffusion`; see the module docstring).

    Same contract as :class:`~.api.Completer`: :meth:`fit` trains on ``views`` hidden-point-removal
    scans of every training shape (at most ``max_known`` points each, default ``num_points // 2``),
    :meth:`complete` takes scans in any units and axes and returns ``num_points`` points whose first
    rows are the scan's. A training step costs time in proportion to
    ``batch_size * (train_points + encoder_points)``, completion to the points drawn; neither builds
    a neighbour graph. Training settings as :class:`~.api.LatentGenerator` (Luo & Hu's Adam, EMA).
    """

    kind = "points.latent_completer"  # the checkpoint kind of core.checkpoint.KINDS
    kind_version, hparam_names, default_train_config = KIND_VERSION, _HPARAMS, DEFAULT_LATENT_TRAIN_CONFIG

    def __init__(self, num_points: int = 2048, latent_dim: int = 256, num_train_steps: int = 200,
                 beta_start: float = 1e-4, beta_end: float = 0.05, time_features: str = "signal",
                 train_points: int = 512, encoder_points: int = 512, encoder_widths: Sequence[int] = ENCODER_WIDTHS,
                 decoder_widths: Sequence[int] = DECODER_WIDTHS, max_known: Optional[int] = None, views: int = 4,
                 normalization: str = "unit_std", epochs: int = _D.epochs, max_steps: Optional[int] = _D.max_steps,
                 batch_size: int = 32, lr: float = _D.lr, ema_decay: float = _D.ema_decay, device: str = "auto",
                 seed: int = 0, progress: bool = True, checkpoint_dir: Optional[str] = None,
                 train_config: Optional[TrainConfig] = None):
        self.num_points = check_whole("num_points", num_points, 2)
        for name, value in (("latent_dim", latent_dim), ("num_train_steps", num_train_steps), ("views", views),
                            ("train_points", train_points), ("encoder_points", encoder_points),
                            ("batch_size", batch_size)):
            check_whole(name, value)
        check_training_args(batch_size=batch_size, views=views, epochs=epochs, max_steps=max_steps, lr=lr)
        if max_known is not None and not 0 < max_known < num_points:
            raise ValueError(f"max_known must lie in [1, num_points - 1] = [1, {num_points - 1}], got {max_known}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {normalization!r}")
        self.latent_dim, self.num_train_steps = latent_dim, num_train_steps
        self.beta_start, self.beta_end = beta_start, beta_end
        self.time_features, self.train_points, self.encoder_points = time_features, train_points, encoder_points
        self.encoder_widths, self.decoder_widths = tuple(encoder_widths), tuple(decoder_widths)
        self.max_known = max_known if max_known is not None else num_points // 2
        self.views, self.normalization = views, normalization
        self.epochs, self.max_steps, self.batch_size = epochs, max_steps, batch_size
        self.lr, self.ema_decay = lr, ema_decay
        self.device, self.seed, self.progress, self.checkpoint_dir = device, seed, progress, checkpoint_dir
        self.train_config = train_config
        with torch.random.fork_rng(devices=[]):  # initialisation fixed by seed, the caller's RNG untouched
            torch.default_generator.manual_seed(seed)
            self.model = ScanCompletionDiffusion(latent_dim, num_train_steps, beta_start, beta_end, time_features,
                                                 self.encoder_widths, self.decoder_widths)
        self.fitted = False
        self.clip: Optional[float] = None  # |x0| bound for sampling (in the scans' frames), set by fit
        self.train_result: Optional[TrainResult] = None

    _folder = _PointDiffusion._folder  # the same cloud loading as the other point models

    def fit(self, data, classes: Optional[Sequence[str]] = None, split: str = "train",
            max_shapes: Optional[int] = None, resume: bool = False) -> "LatentCompleter":
        """Train on ``views`` scans of every shape of a folder ``data/CLASS/split/*`` (or a (S, N, 3)
        array); ``resume=True`` continues the run kept in ``checkpoint_dir``."""
        if resume and self.checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir= (the folder whose last/ checkpoint training "
                             "continues from)")
        folder = self._folder(data, classes, split, max_shapes)
        if len(folder) == 0:
            raise ValueError("no training clouds")
        pairs = completion_pairs(folder, self.views, self.max_known, self.seed)
        x0, known = pairs["x0"], pairs["known"]
        clip = 1.1 * float(x0.abs().max())  # range of the points seen in training, in the scans' frames
        loader = Batches(len(x0), self.batch_size, lambda idx: (x0[idx], known[idx]), shuffle=True,
                         generator=torch.Generator().manual_seed(self.seed))
        result = train_loop(self.model, lambda m, b: m.loss(*b, self.train_points, self.encoder_points), loader,
                            self._train_config(), checkpoint_dir=self.checkpoint_dir, resume=resume,
                            extra_config={**self.config(), "clip": clip})
        self.model.cpu().eval()
        self.num_shapes_, self.clip, self.train_result, self.fitted = len(folder), clip, result, True
        return self

    def _check_fitted(self):
        if not self.fitted:
            raise RuntimeError("this LatentCompleter is not fitted; call fit(...) or LatentCompleter.load(dir)")

    @torch.no_grad()
    def complete(self, partial, sampler_steps: Optional[int] = 50, sampler: str = "ddpm", seed: Optional[int] = None,
                 batch_size: int = 64, up_axis: str = "z"):
        """Complete one (M, 3) scan -> (num_points, 3), or a list of scans -> (B, num_points, 3).

        Scans as :meth:`Completer.complete <.api.Completer.complete>` takes them (arrays, tensors or
        point files; any units; ``up_axis`` turned onto +z); each is cut to at most ``max_known``
        points (a seeded subset) and its ``num_points - len(kept)`` missing points are drawn.
        ``sampler_steps=None`` runs every step of the schedule. Output is in the scan's units and
        axes (float64), the kept scan points, bit-exact, in its first rows.
        """
        self._check_fitted()
        rotation = up_rotation(up_axis)
        partials, single = scan_list(partial)
        batch_size = check_whole("batch_size", batch_size)
        resolve_sampler(sampler, "discrete")
        device = resolve_device(self.device)
        model = self.model.to(device).eval()
        gen = torch.Generator(device=device).manual_seed(self.seed if seed is None else seed)
        out = []
        for s in range(0, len(partials), batch_size):
            known, mask, frames, kept = prepare_scans(partials[s:s + batch_size], self.num_points, self.max_known,
                                                      self.seed, rotation, offset=s)
            sizes = [len(k) for k in kept]
            # every scan's code from its own points (repeated up to the longest: the max-pool ignores repeats)
            longest = max(sizes)
            scans = torch.stack([known[i, torch.arange(longest) % m] for i, m in enumerate(sizes)]).to(device)
            z = model.code(scans)
            drawn = model.decode(z, self.num_points - min(sizes), sampler, sampler_steps, gen, self.clip).double().cpu()
            for i, m in enumerate(sizes):  # the points are independent given z: the first ones are a sample
                row = torch.cat([known[i, :m].double(), drawn[i, : self.num_points - m]])
                out.append(restore_scan(row, frames[i], kept[i], rotation))
        result = torch.stack(out)
        return result[0] if single else result

    @classmethod
    def load(cls, directory: str | Path, device: str = "auto") -> "LatentCompleter":
        """Rebuild a model saved with :meth:`save`; a checkpoint of another kind raises
        :class:`~multidiff.core.checkpoint.CheckpointKindError` naming the loader that fits."""
        states, cfg = load_checkpoint(directory, kind=cls.kind, max_kind_version=KIND_VERSION)
        obj = cls(**{k: cfg[k] for k in _HPARAMS}, device=device, progress=False)
        load_state_strict(obj.model, states["model"], f"checkpoint {directory}")
        obj.model.eval()
        obj.clip, obj.fitted = cfg["clip"], True
        return obj
