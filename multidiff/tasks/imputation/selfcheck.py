"""The self-check a user reads after fitting: is the model better than linear interpolation on
*their* data?

Before training, some observed entries are held out: in a fraction of the windows, those
where the data's own missing pattern, shifted by half the data, is missing (so the check
hides blocks where the data has blocks, scattered points where it has those; CSDI's
"historical" strategy, Tashiro et al. 2021). Data without gaps gets 10 % random entries.
After training, these entries are imputed and the model's MAE is put next to linear
interpolation's on the same entries, in the data's units.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ...core.conditioning import interpolate_masked
from .windows import window_starts

__all__ = ["check_mask", "check_folds", "self_check_report"]


def _borrowed_pattern(series: Sequence[np.ndarray], window: int, rng: np.random.Generator):
    """The entries a self-check may hide (the data's missing pattern shifted by half the data,
    on observed entries; 10 % random entries for data without gaps), the windows that tile each
    series as ``(series, start, rows)``, and the offset of each series in the concatenation."""
    missing = np.isnan(np.concatenate(series))
    shifted = np.roll(missing, len(missing) // 2, axis=0)
    observed = ~missing
    if (shifted & observed).sum() < 0.01 * max(observed.sum(), 1):  # (almost) no gaps to borrow
        shifted = rng.random(missing.shape) < 0.1
    spans = [(i, s, min(window, len(x))) for i, x in enumerate(series)
             for s in window_starts(len(x), min(window, len(x)), min(window, len(x)))]
    return shifted & observed, spans, np.cumsum([0] + [len(x) for x in series])


def _masks(series, hideable, spans, offsets, picked) -> list[np.ndarray]:
    masks = [np.zeros(x.shape, bool) for x in series]
    for j in picked:
        i, s, n = spans[j]
        masks[i][s:s + n] = hideable[offsets[i] + s:offsets[i] + s + n]
    return masks


def check_mask(series: Sequence[np.ndarray], window: int, fraction: float, seed: int) -> list[np.ndarray]:
    """Boolean masks (one per series, True = held out) over ``fraction`` of the windows that tile
    each series (the last one aligned to its end), chosen with a local generator seeded by ``seed``."""
    if fraction <= 0:
        return [np.zeros(x.shape, bool) for x in series]
    rng = np.random.default_rng(seed)
    hideable, spans, offsets = _borrowed_pattern(series, window, rng)
    n_pick = max(1, int(round(fraction * len(spans))))
    if len(spans) < 2:  # one window: holding it out would leave nothing to train on
        return [np.zeros(x.shape, bool) for x in series]
    picked = rng.choice(len(spans), size=min(n_pick, len(spans) - 1), replace=False).tolist()
    return _masks(series, hideable, spans, offsets, picked)


def check_folds(series: Sequence[np.ndarray], window: int, n_folds: int, seed: int,
                max_windows: int | None = None) -> list[list[np.ndarray]]:
    """``n_folds`` disjoint sets of held-out masks (each a list with one mask per series) that
    together cover every window tiling the series (at most ``max_windows`` of them, drawn at
    random), for a self-check of a method that is not trained on the data (cross-validation):
    each fold is imputed with its own entries hidden."""
    rng = np.random.default_rng(seed)
    hideable, spans, offsets = _borrowed_pattern(series, window, rng)
    order = rng.permutation(len(spans))[:max_windows]
    return [_masks(series, hideable, spans, offsets, order[f::n_folds].tolist()) for f in range(n_folds)]


def self_check_report(truth: Sequence[np.ndarray], train: Sequence[np.ndarray], held: Sequence[np.ndarray],
                      draws: Sequence[np.ndarray], std: np.ndarray) -> dict:
    """MAE of the model (median of ``draws``, each (S, rows, K)) and of linear interpolation of
    ``train`` on the ``held`` entries of ``truth`` (all normalised), in the data's units."""
    if not any(h.any() for h in held):
        raise ValueError("the self-check holds out no entry; nothing to report")
    model_err, lin_err = [], []
    for z, t, h, d in zip(truth, train, held, draws):
        if not h.any():
            continue
        known = ~np.isnan(t)
        lin = interpolate_masked(torch.as_tensor(np.nan_to_num(t).T), torch.as_tensor(known.T)).T.numpy()
        scale = np.broadcast_to(std, z.shape)[h]
        model_err.append(np.abs(np.median(d, axis=0)[h] - z[h]) * scale)
        lin_err.append(np.abs(lin[h] - z[h]) * scale)
    model_mae, lin_mae = float(np.concatenate(model_err).mean()), float(np.concatenate(lin_err).mean())
    n = int(sum(h.sum() for h in held))
    message = (f"self-check on {n} observed entries held out from training (hidden with the data's own missing "
               f"pattern): model MAE {model_mae:.4g}, linear interpolation MAE {lin_mae:.4g}")
    if model_mae >= lin_mae:
        message += ("; the model does not beat linear interpolation on this data: train longer (raise max_time), "
                    "give it more rows, or use df.interpolate() instead")
    return {"entries": n, "model_mae": model_mae, "interpolation_mae": lin_mae, "message": message}
