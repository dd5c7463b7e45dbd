"""CSDI's benchmark protocols (Tashiro et al. 2021, Tables 2-3) for AQI-36 and PhysioNet 2012,
with what a user would pick instead (:mod:`.peers`) run on the same evaluation entries in the
same run: the mean, linear interpolation, scikit-learn's KNN and iterative imputers, and PyPOTS'
SAITS and CSDI at the same training time when PyPOTS is installed. The command lines that
reproduce the tables are ``benchmarks/impute_aqi36.py`` and ``benchmarks/impute_physionet.py``."""
from __future__ import annotations

import time
from typing import Callable, Optional, Sequence

import numpy as np

from ...core.training import global_rank
from ...datasets.aqi36 import load_aqi36
from ...datasets.physionet import csdi_split, eval_mask, load_physionet
from ...metrics.imputation import crps_quantile, masked_mae, masked_rmse
from ...metrics.tables import markdown_table
from . import peers as peer_lib
from .api import Imputer

__all__ = ["run_aqi36", "run_physionet", "score_imputation", "format_table", "format_row", "DEFAULT_SAMPLERS"]

# sampler settings compared by default: CSDI's 50-step ancestral sampler and the fast default
DEFAULT_SAMPLERS = (("ddpm", 50), ("ddim", 10), ("ddim", 5))


def _interpolate(values: np.ndarray) -> np.ndarray:
    """Linear interpolation along time per column; edges take the nearest value."""
    return peer_lib.interpolation([values], [values])[0][0]


def score_imputation(point, samples, target, mask) -> dict:
    """One row of the protocol's table: ``MAE`` and ``RMSE`` of the point imputation ``point`` (T, D)
    against ``target`` (T, D) on the entries where ``mask`` (T, D) is 1 (the hidden ones), and with
    ``samples`` (S, T, D) (None: none) their ``CRPS``, CSDI's quantile approximation (Tashiro et al. 2021)."""
    row = {"MAE": masked_mae(point, target, mask), "RMSE": masked_rmse(point, target, mask)}
    if samples is not None:
        row["CRPS"] = crps_quantile(samples, target, mask)
    return row


def _evaluate(imp: Imputer, train: Sequence[np.ndarray], inputs: Sequence[np.ndarray], targets, masks, n_samples,
              samplers, transform=None, nfe_reference: int = 50, keep: Optional[dict] = None,
              peers: Sequence[str] = tuple(peer_lib.PEERS), pypots: bool = False, budget_s: float = 0.0,
              report: Optional[Callable[[dict], None]] = None) -> list[dict]:
    """Rows of the result table: our samplers, then every peer on the same entries; ``report``
    is called with each row as soon as it is measured."""
    rows = []
    report = report or (lambda row: None)
    tr = transform or (lambda a: a)
    target = np.concatenate([tr(t) for t in targets])
    mask = np.concatenate(masks)
    for name, steps in samplers:
        imp.sampler, imp.sampler_steps = name, steps
        t0 = time.perf_counter()
        both = [imp.impute_array(x, n_samples) for x in inputs]
        point = np.concatenate([tr(p) for p, _ in both])
        samples = np.concatenate([tr(s) for _, s in both], axis=1)
        secs = time.perf_counter() - t0
        if keep is not None:
            keep[f"{name}-{steps}"] = samples
        rows.append({"method": f"multidiff {name}-{steps}", "NFE": steps, "NFE %": 100.0 * steps / nfe_reference,
                     "train_s": imp.train_result_.seconds, "sample_s": secs,
                     **score_imputation(point, samples, target, mask)})
        report(rows[-1])
    runs = {name: peer_lib.PEERS[name] for name in peers}
    if pypots and peer_lib.pypots_available():
        runs["PyPOTS SAITS"] = peer_lib.pypots_saits(imp._window(), seed=imp.seed)
        runs["PyPOTS CSDI"] = peer_lib.pypots_csdi(imp._window(), min(n_samples, 3), imp.channels, imp.layers,
                                                   imp.heads, seed=imp.seed)
    for name, run in runs.items():
        t0 = time.perf_counter()
        points, samples, info = run(list(train), list(inputs), budget_s)
        point = np.concatenate([tr(p) for p in points])
        smp = np.concatenate([tr(s) for s in samples], axis=1) if samples is not None else None
        rows.append({"method": name, "wall_s": time.perf_counter() - t0, **info,
                     **score_imputation(point, smp, target, mask)})
        report(rows[-1])
    return rows


def run_aqi36(path=None, n_samples: int = 100, samplers=DEFAULT_SAMPLERS, valid_month: int = 1,
              test_months: Optional[Sequence[int]] = None, keep_samples: bool = False,
              peers: Sequence[str] = tuple(peer_lib.PEERS), pypots: bool = False,
              report: Optional[Callable[[dict], None]] = None, save_model: Optional[str] = None,
              **imputer_params) -> dict:
    """Train on the training months (validation month held out), impute the test months from
    ``pm25_missing`` and score the hidden entries in original units (CSDI protocol), next to the
    ``peers`` (and PyPOTS SAITS/CSDI with ``pypots``, trained for the same wall time).
    ``test_months`` narrows the test months (the demo uses March alone); ``keep_samples``
    adds the imputer, the samples and the frames to the result; ``save_model`` saves the trained
    imputer there; ``report`` receives each table row as it is measured."""
    data = load_aqi36(path)
    train, valid, all_test = data.split(valid_month)
    test_months = tuple(test_months or all_test)
    if not set(test_months) <= set(all_test):
        raise ValueError(f"test_months must be among CSDI's test months {all_test}, got {test_months}")
    # CSDI evaluates non-overlapping windows, the last one aligned to the month's end; the
    # protocol's own split is the held-out data, so no self-check entries are taken from training
    # (a pretrained network keeps its own windows: 64 rows every 16)
    csdi = imputer_params.get("pretrained", "default") is None
    params = {**({"window": 36, "mask_strategy": "mix", "stride": 36} if csdi else {}), "self_check": 0.0,
              **imputer_params}
    imp = Imputer(**params)
    t0 = time.perf_counter()
    imp.fit_arrays([f.to_numpy() for f in train], [f.to_numpy() for f in valid], columns=list(data.ground.columns))
    train_s = time.perf_counter() - t0
    if save_model and global_rank() == 0:  # data-parallel training: one process writes
        imp.save(save_model)
    sel = [data.ground.index.month == m for m in test_months]
    inputs = [data.missing[s].to_numpy() for s in sel]
    targets = [np.nan_to_num(data.ground[s].to_numpy()) for s in sel]
    masks = [data.eval_mask[s].to_numpy() for s in sel]
    kept: dict = {}
    rows = _evaluate(imp, [f.to_numpy() for f in train], inputs, targets, masks, n_samples, samplers,
                     keep=kept if keep_samples else None, peers=peers, pypots=pypots, budget_s=train_s, report=report)
    result = {"dataset": "AQI-36", "train_s": train_s, "steps": imp.train_result_.optimizer_steps,
              "stopped_by": imp.train_result_.stopped_by, "eval_entries": int(sum(m.sum() for m in masks)),
              "rows": rows, "params": params, "n_samples": n_samples}
    if keep_samples:
        index = data.ground.index[np.any(sel, axis=0)]
        result["artifacts"] = {"imputer": imp, "samples": kept, "index": index, "data": data}
    return result


def run_physionet(path=None, missing_ratio: float = 0.1, n_samples: int = 100, samplers=DEFAULT_SAMPLERS,
                  seed: int = 1, limit: Optional[int] = None, peers: Sequence[str] = tuple(peer_lib.PEERS),
                  pypots: bool = False, report: Optional[Callable[[dict], None]] = None,
                  save_model: Optional[str] = None, **imputer_params) -> dict:
    """CSDI's PhysioNet protocol: hide ``missing_ratio`` of observed values, train on the training
    patients, score the hidden entries of the test patients in normalised units."""
    data = load_physionet(path, limit=limit)
    hidden = eval_mask(data.values, missing_ratio, seed)
    inputs_all = np.where(hidden, np.nan, data.values)
    train, valid, test = csdi_split(len(data.values), seed)
    params = {"window": 48, "train_stride": 48, "stride": 48, "mask_strategy": "random", "self_check": 0.0,
              **imputer_params}
    imp = Imputer(**params)
    t0 = time.perf_counter()
    imp.fit_arrays(list(data.values[train]), list(data.values[valid]),  # CSDI trains on all observed values
                   columns=[str(a) for a in range(data.values.shape[2])])
    train_s = time.perf_counter() - t0
    if save_model and global_rank() == 0:
        imp.save(save_model)
    normalise = lambda a: (a - imp.mean_) / imp.std_
    rows = _evaluate(imp, list(data.values[train]), list(inputs_all[test]), list(np.nan_to_num(data.values[test])),
                     list(hidden[test]), n_samples, samplers, transform=normalise, peers=peers, pypots=pypots,
                     budget_s=train_s, report=report)
    return {"dataset": f"PhysioNet 2012 ({int(missing_ratio * 100)} % hidden)", "train_s": train_s,
            "steps": imp.train_result_.optimizer_steps, "stopped_by": imp.train_result_.stopped_by,
            "eval_entries": int(hidden[test].sum()), "rows": rows, "params": params, "n_samples": n_samples}


# (title, key of a result row, format) of each column of the result table
_COLUMNS = (("method", "method", None), ("NFE", "NFE", "%d"), ("MAE", "MAE", "%.3f"), ("RMSE", "RMSE", "%.3f"),
            ("CRPS", "CRPS", "%.4f"), ("training s", "train_s", "%.0f"), ("imputing s", "sample_s", "%.1f"))


def _table(rows: list) -> str:
    return markdown_table([c[0] for c in _COLUMNS], [[r.get(c[1]) for c in _COLUMNS] for r in rows],
                          [c[2] for c in _COLUMNS])


def format_row(r: dict) -> str:
    """One markdown table row of a result row (as :func:`format_table` writes it)."""
    return _table([r]).splitlines()[-1]


def format_table(result: dict) -> str:
    """Markdown table of a benchmark result."""
    return (f"### {result['dataset']}: multidiff trained {result['train_s']:.0f} s ({result['steps']} steps), "
            f"{result['eval_entries']} evaluation entries, {result.get('n_samples', '?')} samples\n\n"
            + _table(result["rows"]))
