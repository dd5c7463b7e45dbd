"""The pretrained imputation model: one set of weights for frames of any number of columns.

A composition of the core around :mod:`multidiff.nets.column_agnostic`:

- every window is rescaled per column by the mean and standard deviation of its given values
  (the instance normalisation of RevIN, Kim et al. 2022, which lets one network read series of
  any level and scale); a column with fewer than three given values in the window keeps the
  frame's scale;
- the point estimate is linear interpolation plus the encoder's point head (trained with L1, so
  it estimates the conditional median: the value that minimises MAE);
- the samples add to it a residual drawn by the diffusion head (v-prediction, Salimans & Ho 2022,
  on a discrete quadratic schedule as CSDI's) through the core's samplers; the encoder runs once.

Targets are drawn by :func:`~.masks.hybrid_target_mask` (points, blocks, column outages, the
data's own gaps). A batch is ``{"values", "observed"}`` of shape (B, K, context + L + context):
the interpolation is computed over the whole padded window, the loss on the centre only.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ...core import samplers
from ...core.checkpoint import register_kind
from ...core.conditioning import interpolate_masked, pchip_masked, repeat_samples
from ...core.denoiser import as_eps_model
from ...core.losses import denoising_mse, draw_discrete_t
from ...core.samplers import rowwise_randn
from ...core.schedules import DiscreteSchedule, recorded_schedule
from ...nets.column_agnostic import ColumnAgnosticEncoder, DiffusionHead
from .frame_regression import frame_regression
from .masks import hybrid_target_mask
from .windows import interpolate_series, window_owners, window_seed as _window_seed, window_starts

__all__ = ["ColumnAgnosticModel", "window_features", "series_regression", "impute_normalised", "save_network",
           "load_network"]

_MIN_STD = 0.01  # floor of a window's scale, in units of the frame's standard deviation


def window_features(values: torch.Tensor, given: torch.Tensor, interp: torch.Tensor, pchip: torch.Tensor,
                    regression: torch.Tensor, skill: torch.Tensor):
    """Per-cell inputs of the encoder for (B, K, L) windows of frame-normalised ``values`` (any
    value where not ``given``), their linear (``interp``) and PCHIP (``pchip``) interpolations
    through the given cells, and the frame's regression estimate (``regression``, with its
    per-column held-out ``skill`` (B, K); :func:`~.frame_regression.frame_regression`).

    Returns ``(features (B, K, L, 12), centre (B, K, 1), scale (B, K, 1))``: the features are the
    given value, both interpolations and their difference in window units ``(x - centre) /
    scale``, the given mask, the log distance to the previous and to the next given cell,
    ``log(scale)``, the given fraction of the column in the window, at each given cell its
    departure from the line through the given cells on either side of it (what interpolation
    would have missed there, which tells a gap in a correlated column what it misses), and at
    each missing cell the regression's departure from interpolation, beside the regression's
    skill."""
    b, k, l = values.shape
    g = given.to(values.dtype)
    n = g.sum(-1, keepdim=True)
    centre = torch.where(n > 0, (values * g).sum(-1, keepdim=True) / n.clamp(min=1),
                         interp.mean(-1, keepdim=True))
    var = (((values - centre) * g) ** 2).sum(-1, keepdim=True) / (n - 1).clamp(min=1)
    scale = torch.where(n >= 3, var.sqrt().clamp(min=_MIN_STD), torch.ones_like(var))
    u = ((values - centre) / scale).clamp(-50, 50) * g
    ui = ((interp - centre) / scale).clamp(-50, 50)
    up = ((pchip - centre) / scale).clamp(-50, 50)
    pos = torch.arange(l, device=values.device, dtype=values.dtype).expand(b, k, l)
    known = given.bool()
    prev = torch.where(known, pos, torch.full_like(pos, -float(l))).cummax(-1).values
    nxt = torch.where(known, pos, torch.full_like(pos, 2.0 * l)).flip(-1).cummin(-1).values.flip(-1)
    before = torch.cat([torch.full_like(prev[..., :1], -float(l)), prev[..., :-1]], dim=-1)  # given cells, itself excluded
    after = torch.cat([nxt[..., 1:], torch.full_like(nxt[..., :1], 2.0 * l)], dim=-1)
    inside = (before >= 0) & (after < l)
    at = lambda idx: u.gather(-1, idx.clamp(0, l - 1).long())  # noqa: E731
    line = at(before) + (pos - before) / (after - before).clamp(min=1) * (at(after) - at(before))
    departure = torch.where(known & inside, u - line, 0.0)
    norm = math.log1p(2 * l)
    d_prev, d_next = torch.log1p(pos - prev) / norm, torch.log1p(nxt - pos) / norm
    log_scale = scale.log().expand(b, k, l)
    frac = (n / l).expand(b, k, l)
    ur = (((regression - centre) / scale).clamp(-50, 50) - ui) * (1 - g)
    feats = torch.stack([u, g, ui, up, up - ui, d_prev, d_next, log_scale, frac, departure, ur,
                         skill[..., None].expand(b, k, l)], dim=-1)
    return feats, centre, scale


class ColumnAgnosticModel(nn.Module):
    """Imputation over (B, K, L) windows of any K, with a point estimate and diffusion samples."""

    def __init__(self, channels: int = 64, layers: int = 3, heads: int = 4, ff: int = 128, head_channels: int = 32,
                 head_layers: int = 2, num_train_steps: int = 50, beta_start: float = 1e-4, beta_end: float = 0.5,
                 context: int = 16, diffusion_weight: float = 0.5, window: int = 64):
        super().__init__()
        self.config = dict(channels=channels, layers=layers, heads=heads, ff=ff, head_channels=head_channels,
                           head_layers=head_layers, num_train_steps=num_train_steps, beta_start=beta_start,
                           beta_end=beta_end, context=context, diffusion_weight=diffusion_weight, window=window)
        self.context, self.diffusion_weight, self.window = int(context), float(diffusion_weight), int(window)
        self.num_train_steps = num_train_steps
        self.encoder = ColumnAgnosticEncoder(channels, layers, heads, ff)
        self.head = DiffusionHead(channels, head_channels, head_layers)
        # CSDI's quadratic table, float32 as CSDI's; no buffer: the state dict holds weights only
        self.schedule = DiscreteSchedule("quad", num_train_steps, beta_start, beta_end, dtype="float32")

    def encode(self, values: torch.Tensor, given: torch.Tensor, interp: torch.Tensor, pchip: torch.Tensor,
               regression: torch.Tensor, skill: torch.Tensor) -> dict:
        """The encoder's pass over (B, K, L) windows (inputs as :func:`window_features`'s):
        ``point`` (frame units), the head's context, and the window scale that turns residuals in
        window units into frame units. Both losses train the encoder (the diffusion head's, as in
        Li et al. 2024, gives it a dense signal)."""
        feats, centre, scale = window_features(values, given, interp, pchip, regression, skill)
        h, residual = self.encoder(feats)
        ui = feats[..., 2]
        return {"point": centre + scale * (ui + residual), "context": self.head.project(h), "scale": scale,
                "residual": residual, "interp_u": ui, "centre": centre}

    def loss_terms(self, batch: dict, generator: Optional[torch.Generator] = None) -> dict:
        """L1 of the point estimate and the diffusion head's v-MSE, on the hidden entries of the
        centre of each frame, in window units. A batch's frames (B, K, F) hold the window (its
        centre ``batch["length"]`` rows, default F - 2 context) and the rows around it that the
        interpolations and the frame regression read; targets are drawn on the window and
        ``context`` rows each side of it."""
        values, observed = batch["values"], batch["observed"]
        f = values.shape[-1]
        length = int(batch.get("length", f - 2 * self.context))
        a = (f - length) // 2
        near = slice(max(0, a - self.context), min(f, a + length + self.context))
        target = torch.zeros_like(observed)
        pattern = batch.get("pattern")
        target[..., near] = hybrid_target_mask(observed[..., near], generator,
                                               None if pattern is None else pattern[..., near])
        given = observed - target
        interp, pchip = interpolate_masked(values, given), pchip_masked(values, given)
        regression, skill = frame_regression(values, given, generator)
        c = slice(a, a + length)
        values, observed, target, given, interp, pchip, regression = (
            x[..., c] for x in (values, observed, target, given, interp, pchip, regression))
        enc = self.encode(values, given, interp, pchip, regression, skill)
        truth_u = ((values - enc["centre"]) / enc["scale"]).clamp(-50, 50)
        err = truth_u - enc["interp_u"] - enc["residual"]
        n = target.sum().clamp(min=1)
        point = (err.abs() * target).sum() / n
        y = (err.detach() * target).clamp(-20, 20)
        free = 1 - given  # every cell the head fills at sampling time
        t = draw_discrete_t(values.shape[0], self.num_train_steps, values.device, generator)
        head = lambda x_t, tt: self.head(x_t, tt, free, enc["context"])  # noqa: E731
        diffusion = denoising_mse(head, y, t, self.schedule.alpha_bar_of, "v", mask=target)
        return {"point": point, "diffusion": diffusion}

    def loss(self, batch: dict, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """The training loss: :meth:`loss_terms`' point term plus ``diffusion_weight`` x its diffusion term."""
        terms = self.loss_terms(batch, generator)
        return terms["point"] + self.diffusion_weight * terms["diffusion"]

    @torch.no_grad()
    def sample(self, enc: dict, given: torch.Tensor, n_samples: int, sampler: str = "ddim",
               sampler_steps: Optional[int] = 10, randn: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """(n_samples, B, K, L) samples in frame units around ``enc["point"]`` (from :meth:`encode`);
        given cells come back as the point there (the caller puts the given values back)."""
        b = given.shape[0]
        free = repeat_samples(1 - given.to(enc["point"].dtype), n_samples)
        context = repeat_samples(enc["context"], n_samples)
        net = lambda x_t, t: self.head(x_t, t, free, context)  # noqa: E731
        model = as_eps_model(net, "v", self.schedule.alpha_bar_of)
        y = samplers.run(model, sampler=sampler, sampler_steps=sampler_steps, schedule=self.schedule,
                         shape=free.shape, dtype=free.dtype, device=free.device, generator=generator, randn=randn)
        y = (y * free).reshape(n_samples, b, *given.shape[1:])
        return enc["point"][None] + enc["scale"][None] * y


NETWORK_KIND, NETWORK_KIND_VERSION = "imputation.network", 2  # 2: the frame regression's two inputs
register_kind(NETWORK_KIND, "multidiff.tasks.imputation.column_model.load_network(DIR) (a pretrained column-agnostic "
                            "network; Imputer(pretrained=DIR) imputes with it)")


def save_network(model: ColumnAgnosticModel, path, about: Optional[dict] = None):
    """Write ``model`` (weights + its constructor arguments, and ``about``: how it was trained) to
    the checkpoint folder ``path``, atomically."""
    from ...core.checkpoint import save_checkpoint
    return save_checkpoint(path, {"model": model.state_dict()},
                           {"model": model.config, "schedule": model.schedule.to_config(), "about": about or {}},
                           kind=NETWORK_KIND, kind_version=NETWORK_KIND_VERSION)


def load_network(path, widen: bool = False) -> tuple[ColumnAgnosticModel, dict]:
    """Read a network written by :func:`save_network`: ``(model in eval mode, about)``. A folder
    that is not such a checkpoint, or whose files are damaged, raises ``ValueError`` (or
    ``FileNotFoundError``) saying so. A network from before the frame regression's inputs
    (fewer input features) loads only with ``widen=True``, its new inputs weighted zero (so it
    computes what it computed; the pretraining command continues from it that way)."""
    from ...core.checkpoint import load_checkpoint, load_state_strict
    states, config = load_checkpoint(path, kind=NETWORK_KIND, max_kind_version=NETWORK_KIND_VERSION)
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict) or "model" not in states:
        raise ValueError(f"{path} does not hold a network's config and weights; it was not written by save_network")
    try:
        model = ColumnAgnosticModel(**config["model"])
    except TypeError as e:
        raise ValueError(f"{path} has a network config this multidiff does not know ({e})") from None
    model.schedule = recorded_schedule(config, model.schedule, f"network {path}")
    state = dict(states["model"])
    w = state.get("encoder.input_proj.weight")
    n_in = model.encoder.input_proj.in_features
    if isinstance(w, torch.Tensor) and w.ndim == 2 and w.shape[1] < n_in:
        if not widen:
            raise ValueError(f"{path} holds a network of an older multidiff ({w.shape[1]} input features, this one "
                             f"reads {n_in}): continue its training with benchmarks/impute_pretrain.py --init {path}, "
                             "or use the network shipped with this multidiff (pretrained='default')")
        state["encoder.input_proj.weight"] = torch.cat([w, w.new_zeros(w.shape[0], n_in - w.shape[1])], dim=1)
    return load_state_strict(model, state, f"network {path}").eval(), config.get("about", {})


def series_regression(z: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The frame regression (:func:`~.frame_regression.frame_regression`) of a normalised (rows,
    K) series with NaN: ``(estimate (rows, K), skill (K,))``, its draws from a generator seeded
    by ``seed``."""
    given = ~np.isnan(z)
    est, skill = frame_regression(torch.as_tensor(np.nan_to_num(z).T[None], dtype=torch.float32),
                                  torch.as_tensor(given.T[None]), torch.Generator().manual_seed(int(seed)))
    return est[0].T.numpy(), skill[0].numpy()


def impute_normalised(model: ColumnAgnosticModel, z: np.ndarray, n_samples: int = 0, seed: int = 0,
                      window: int = 64, stride: Optional[int] = 16, sampler: str = "ddim",
                      sampler_steps: Optional[int] = 10, cells_per_call: int = 60_000,
                      rows: Optional[np.ndarray] = None,
                      regression: Optional[tuple] = None) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Impute a frame-normalised (rows, K) series (NaN = missing) with ``model``:
    ``(point (rows, K), samples (n_samples, rows, K) or None)``, given values returned as given.

    Windows of ``window`` rows every ``stride`` rows (the last one aligned to the end); the
    interpolations are the whole series'. The point estimate of a row is the average of the
    estimates of every window that holds it, weighted by how central the row is in each (a
    tent; overlapping windows are a cheap ensemble). The samples of a row come from the window
    it is most central in, moved to that average; the diffusion head runs only on the rows a
    window owns and the few its receptive field reaches past them. Window ``w`` draws its noise
    from its own generator seeded by ``(seed, w)``, so the result does not depend on how windows
    are grouped into calls. ``rows`` restricts the work to those rows (other rows come back as
    linear interpolation, samples NaN). ``regression`` is the series' ``(estimate, skill)`` from
    :func:`series_regression` (computed here when not given)."""
    n_rows, k = z.shape
    length = min(window, n_rows)
    starts = window_starts(n_rows, length, min(stride or length, length))
    owners = window_owners(np.arange(n_rows), starts, length)  # non-decreasing
    first = np.searchsorted(owners, np.arange(len(starts)), side="left")
    last = np.searchsorted(owners, np.arange(len(starts)), side="right")
    if rows is None:
        covering, owning = np.arange(len(starts)), np.arange(len(starts))
    else:
        rows = np.unique(rows)
        covering = np.flatnonzero(np.searchsorted(rows, starts + length) > np.searchsorted(rows, starts))
        owning = np.unique(owners[rows])
    base = interpolate_series(z)
    given = ~np.isnan(z)
    values = np.nan_to_num(z)
    smooth = pchip_masked(torch.as_tensor(values.T), torch.as_tensor(given.T)).T.numpy()
    linear, skill = series_regression(z, seed) if regression is None else regression
    skill_w = torch.as_tensor(skill, dtype=torch.float32)
    cut = lambda a, ws: torch.as_tensor(np.stack([a[s:s + length].T for s in starts[ws]]),  # noqa: E731
                                        dtype=torch.float32)
    model = model.eval()
    tent = (1 - np.abs(np.arange(length) + 0.5 - length / 2) / (length / 2))[:, None]
    total, weight = np.zeros((n_rows, k)), np.zeros((n_rows, 1))
    per_call = max(1, cells_per_call // (k * length))
    for i in range(0, len(covering), per_call):
        ws = covering[i:i + per_call]
        with torch.no_grad():
            point_w = model.encode(cut(values, ws), cut(given, ws), cut(base, ws), cut(smooth, ws), cut(linear, ws),
                                   skill_w.expand(len(ws), k))["point"].numpy()
        for j, s in enumerate(starts[ws]):
            total[s:s + length] += point_w[j].T * tent
            weight[s:s + length] += tent
    point = np.where(weight > 0, total / np.maximum(weight, 1e-12), base)
    point = np.where(given, z, point).astype(np.float32)
    samples = None
    if n_samples:
        samples = np.full((n_samples, n_rows, k), np.nan, np.float32)
        reach = model.head.reach
        crops = {}  # (start, end) of the rows the head needs, local to the window -> windows
        for w in owning:
            crop = (max(0, int(first[w] - starts[w]) - reach), min(length, int(last[w] - starts[w]) + reach))
            crops.setdefault(crop, []).append(w)
        for (c0, c1), group in crops.items():
            per_call = max(1, cells_per_call // (k * (length + n_samples * (c1 - c0))))
            for i in range(0, len(group), per_call):
                ws = np.asarray(group[i:i + per_call])
                g = cut(given, ws)
                with torch.no_grad():
                    enc = model.encode(cut(values, ws), g, cut(base, ws), cut(smooth, ws), cut(linear, ws),
                                       skill_w.expand(len(ws), k))
                    gens = [torch.Generator().manual_seed(_window_seed(seed, int(w))) for w in ws]
                    cropped = {"point": enc["point"][..., c0:c1], "context": enc["context"][:, :, c0:c1],
                               "scale": enc["scale"]}
                    draws = model.sample(cropped, g[..., c0:c1], n_samples, sampler, sampler_steps,
                                         randn=rowwise_randn(gens, n_samples)).numpy()
                for j, w in enumerate(ws):
                    a, e = first[w], last[w]
                    own = draws[:, j, :, a - starts[w] - c0:e - starts[w] - c0].transpose(0, 2, 1)
                    shift = point[a:e] - enc["point"][j, :, a - starts[w]:e - starts[w]].T.numpy()
                    samples[:, a:e] = own + shift[None]
        samples = np.where(given[None], z[None], samples)
    return point, samples
