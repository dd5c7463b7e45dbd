"""How :class:`~.api.Imputer` imputes with a pretrained column-agnostic network (issue 31).

``fit``: the network shipped in ``pretrained/`` (or the one the user names) is fine-tuned on the
frame's observed values for ``max_time`` seconds (``max_time=0``: not at all, zero-shot); then
linear interpolation, the frame regression of :mod:`.frame_regression` (also the network's
input) and the network are compared on observed entries held out from all three (:mod:`.selfcheck`: the data's own gaps, shifted), and
each column gets the blend of the three that scores best there (:mod:`.blend`).

``impute``: the blend is the point estimate (``filled``); the samples are the network's
diffusion samples moved by the blend minus the network's point, so their spread is the
network's and their centre the blend.

Columns are processed in an order fixed by their content, so a frame with its columns permuted
gives the same numbers, permuted, bit for bit.
"""
from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ...core.training import TrainConfig, TrainResult, fit
from .blend import METHODS, combine, fit_weights
from .column_model import ColumnAgnosticModel, impute_normalised, load_network, series_regression
from .selfcheck import check_folds, check_mask
from .windows import WindowBatches, interpolate_series

__all__ = ["DEFAULT_PRETRAINED", "pretrained_network", "content_order", "fit_network", "estimates",
           "impute_series", "FINETUNE_TRAIN_CONFIG", "WINDOW", "ColumnAgnosticModel"]

DEFAULT_PRETRAINED = Path(__file__).parent / "pretrained"
WINDOW = 64          # the window the shipped network was pretrained on
FRAME_CONTEXT = 112  # rows each side of a fine-tuning window that its interpolations and frame regression read
ZERO_SHOT_FOLDS = 3  # held-out folds when nothing is trained: every window is held out once
MAX_CHECK_WINDOWS = 600  # windows a zero-shot self-check looks at (a sample of them in long frames)
FINE_TUNE_CHECK = 3      # a fine-tuned network's check holds out 3 x self_check of the windows (at most half):
                         # a blend of three methods is chosen on it, which needs more entries than one comparison
# fine-tuning: a tenth of the pretraining rate, constant, no EMA (a short run), clipping as pretrained
FINETUNE_TRAIN_CONFIG = TrainConfig(epochs=1000, lr=1e-4, weight_decay=1e-4, lr_schedule="constant", ema_decay=0.0,
                                    grad_clip=1.0, max_time=120.0)

_CACHE: dict = {}


def pretrained_network(pretrained) -> tuple[ColumnAgnosticModel, dict]:
    """The network ``pretrained`` names ("default": the one shipped in the package, or a folder
    written by :func:`~.column_model.save_network`) and how it was trained; read once per
    process, a fresh copy each call."""
    path = DEFAULT_PRETRAINED if pretrained == "default" else Path(pretrained)
    key = str(Path(path).resolve())
    if key not in _CACHE:
        if pretrained == "default" and not (path / "weights.safetensors").is_file():
            raise FileNotFoundError(f"the package's pretrained imputer is missing from {path}: reinstall multidiff, "
                                    "or pass pretrained=None to train from scratch")
        _CACHE[key] = load_network(path)
    model, about = _CACHE[key]
    return copy.deepcopy(model), dict(about)


def content_order(values: np.ndarray) -> np.ndarray:
    """An order of the columns of ``values`` that depends on their contents only (a hash of each
    column's bytes, NaN pattern included), so that permuted frames are processed alike."""
    keys = [hashlib.sha256(np.ascontiguousarray(values[:, j], dtype=np.float64).tobytes()).hexdigest()
            for j in range(values.shape[1])]
    return np.argsort(np.asarray(keys), kind="stable")


def estimates(model: ColumnAgnosticModel, z: np.ndarray, imp, n_samples: int = 0, seed: int = 0,
              rows: Optional[np.ndarray] = None):
    """The three estimates (3, rows, K) of a normalised series in content order (interpolation,
    the frame regression that is also the network's input, network point), and the network's
    samples when ``n_samples``."""
    regression = series_regression(z, seed)
    point, samples = impute_normalised(model, z, n_samples, seed, window=imp._window(), stride=imp._stride(),
                                       sampler=imp.sampler, sampler_steps=imp.sampler_steps, rows=rows,
                                       regression=regression)
    stacked = np.stack([interpolate_series(z), regression[0], point]).astype(np.float32)
    return stacked, samples


def _held_out(model, train: Sequence[np.ndarray], folds: list, truth: Sequence[np.ndarray], imp) -> dict:
    """Estimates of each method on the held-out entries of every fold, with the column of each."""
    t, e, col = [], [], []
    for masks in folds:
        for z, x, h in zip(train, truth, masks):
            if not h.any():
                continue
            hidden = np.where(h, np.nan, z)
            est, _ = estimates(model, hidden, imp, seed=imp.seed, rows=np.flatnonzero(h.any(1)))
            r, c = np.nonzero(h)
            t.append(x[r, c])
            e.append(est[:, r, c].T)
            col.append(c)
    if not t:
        return {}
    return {"truth": np.concatenate(t), "estimates": np.concatenate(e), "column": np.concatenate(col)}


def fit_network(imp, normalised: list[np.ndarray], std: np.ndarray, val: Optional[list] = None) -> dict:
    """Fine-tune (``imp.max_time`` > 0) and self-check the pretrained network on ``normalised``
    series (columns in content order); returns the fitted attributes the engine adds:
    ``model_``, ``blend_weights_`` (K, 3) in the order of :data:`~.blend.METHODS`,
    ``train_result_`` and ``check_``."""
    model, about = pretrained_network(imp.pretrained)
    k = normalised[0].shape[1]
    window = imp._window()
    zero_shot = imp.max_time == 0
    if imp.self_check <= 0:
        folds, train = [], normalised
    elif zero_shot:
        folds = check_folds(normalised, window, ZERO_SHOT_FOLDS, imp.seed, MAX_CHECK_WINDOWS)
        train = normalised
    else:
        held = check_mask(normalised, window, min(0.5, FINE_TUNE_CHECK * imp.self_check), imp.seed)
        folds = [held]
        train = [np.where(h, np.nan, z) for z, h in zip(normalised, held)]
    if zero_shot:
        result = TrainResult(history=[], optimizer_steps=0, seconds=0.0, stopped_by="max_time=0 (zero-shot)")
    else:
        result = _fine_tune(model, train, imp, val)
    model = model.cpu().eval()
    weights = np.tile(np.eye(len(METHODS))[METHODS.index("network")], (k, 1))
    check = None
    if folds:
        # with held-out windows (fine-tuning) the check imputes the training series, whose held entries are hidden
        scored = _held_out(model, train, folds, normalised, imp)
        if scored:
            weights, report = fit_weights(scored["truth"], scored["estimates"].astype(np.float64), scored["column"], k)
            scale = std[scored["column"]]
            check = _report(scored, weights, scale, about)
    return {"model_": model, "blend_weights_": weights, "train_result_": result, "check_": check}


def _report(scored: dict, weights: np.ndarray, scale: np.ndarray, about: dict) -> dict:
    """The self-check in the data's units: MAE of each method and of the blend on the held-out entries."""
    est, truth, col = scored["estimates"], scored["truth"], scored["column"]
    mae = {m: float((np.abs(est[:, i] - truth) * scale).mean()) for i, m in enumerate(METHODS)}
    blend = (est * weights[col]).sum(1)
    mae["blend"] = float((np.abs(blend - truth) * scale).mean())
    n = int(len(truth))
    best_single = min(METHODS, key=mae.get)
    message = (f"self-check on {n} observed entries held out (hidden with the data's own missing pattern): MAE "
               + ", ".join(f"{m} {mae[m]:.4g}" for m in METHODS) + f"; the per-column blend used {mae['blend']:.4g}")
    if best_single != "network":
        message += (f"; the network does not beat {best_single} on this data, so the blend leans on "
                    f"{best_single} where it scores better")
    return {"entries": n, "model_mae": mae["blend"], "interpolation_mae": mae["interpolation"],
            "regression_mae": mae["regression"], "network_mae": mae["network"], "blend_mae": mae["blend"],
            "best_single": best_single, "network_wins": best_single == "network", "message": message,
            "weights": weights.tolist(), "pretrained_minutes": about.get("minutes_total")}


def _fine_tune(model: ColumnAgnosticModel, train: list[np.ndarray], imp, val: Optional[list]) -> TrainResult:
    """Train the network on the series' observed values with the pretraining loss; ``val``
    series give a validation loss (the best epoch is kept, ``patience`` stops early)."""
    gen = torch.Generator().manual_seed(imp.seed)
    window = imp._window()
    loader = WindowBatches(train, window, FRAME_CONTEXT, imp.train_stride, imp.batch_size, True, gen)
    if len(loader.starts) == 0:
        raise ValueError(f"no fine-tuning window: no window of {window} rows has two or more observed values; "
                         "pass more observed rows, or max_time=0 (zero-shot)")
    val_loader = None
    if val is not None:
        val_loader = WindowBatches(val, window, FRAME_CONTEXT, window, imp.batch_size, False)
        if len(val_loader.starts) == 0:
            raise ValueError(f"no validation window: no window of {window} rows of val_series has two or more "
                             "observed values; pass longer validation series or none")
    model.train()
    return fit(model, lambda m, b: m.loss({**b, "length": window}), loader, imp._train_config(), val_batches=val_loader,
               checkpoint_dir=imp.checkpoint_dir)


def impute_series(imp, z: np.ndarray, n_samples: int, seed: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Point (rows, K) and samples (n_samples, rows, K; None for 0) of a normalised (rows, K)
    series with the fitted imputer ``imp``'s network and blend weights; columns are taken in
    content order inside, and returned in the order given."""
    order = content_order(z)
    zo = z[:, order]
    est, samples = estimates(imp.model_, zo, imp, n_samples, seed)
    point = combine(imp.blend_weights_[order], est)
    given = ~np.isnan(zo)
    point = np.where(given, zo, point)
    back = np.argsort(order)
    if samples is not None:
        samples = np.where(given[None], zo[None], samples + (point - est[2])[None])[..., back]
    return point[:, back], samples
