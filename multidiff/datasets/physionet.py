"""PhysioNet/CinC Challenge 2012 set-a, read from ``set-a.tar.gz`` as PhysioNet distributes it.

Each ``RecordID.txt`` is long format ``Time,Parameter,Value``. Following CSDI (Tashiro et al.
2021): the 35 time-varying variables below, 48 hourly steps (hour = floor of HH:MM, the last
value in an hour wins), 10/50/90 % of observed values hidden as evaluation targets, and the
split of CSDI's code (seeded shuffle: 20 % test, then 70 % of all patients for training).
"""
from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from .fetch import locate

__all__ = ["ATTRIBUTES", "PhysioNet", "load_physionet", "eval_mask", "csdi_split"]

ATTRIBUTES = ["DiasABP", "HR", "Na", "Lactate", "NIDiasABP", "PaO2", "WBC", "pH", "Albumin", "ALT", "Glucose",
              "SaO2", "Temp", "AST", "Bilirubin", "HCO3", "BUN", "RespRate", "Mg", "HCT", "SysABP", "FiO2", "K",
              "GCS", "Cholesterol", "NISysABP", "TroponinT", "MAP", "TroponinI", "PaCO2", "Platelets", "Urine",
              "NIMAP", "Creatinine", "ALP"]
HOURS = 48


@dataclass
class PhysioNet:
    record_ids: np.ndarray  # (N,) sorted
    values: np.ndarray      # (N, 48, 35) float64, NaN where not measured


def _parse_record(text: str) -> np.ndarray:
    df = pd.read_csv(io.StringIO(text))
    if list(df.columns[:3]) != ["Time", "Parameter", "Value"]:
        raise ValueError(f"unexpected PhysioNet record header {list(df.columns)}")
    hours = df["Time"].str.split(":", n=1).str[0].astype(int).to_numpy()
    col = pd.Series(range(len(ATTRIBUTES)), index=ATTRIBUTES).reindex(df["Parameter"]).to_numpy()
    keep = (hours < HOURS) & ~np.isnan(col)
    out = np.full((HOURS, len(ATTRIBUTES)), np.nan)
    out[hours[keep], col[keep].astype(int)] = df["Value"].to_numpy(dtype=np.float64)[keep]  # last write wins
    return out


def load_physionet(path: Optional[str | os.PathLike] = None, limit: Optional[int] = None,
                   download: bool = True) -> PhysioNet:
    """Read ``set-a.tar.gz`` (no extraction to disk). ``limit`` reads only the first records (tests)."""
    folder = locate("physionet2012", path, download=download)
    records = {}
    with tarfile.open(folder / "set-a.tar.gz", "r:gz") as tf:
        for member in tf:
            name = os.path.basename(member.name)
            if not (member.isfile() and name.endswith(".txt") and name[:-4].isdigit()):
                continue
            records[int(name[:-4])] = _parse_record(tf.extractfile(member).read().decode())
            if limit is not None and len(records) >= limit:
                break
    if not records:
        raise ValueError(f"{folder / 'set-a.tar.gz'} holds no RecordID.txt files")
    ids = np.array(sorted(records))
    return PhysioNet(record_ids=ids, values=np.stack([records[i] for i in ids]))


def eval_mask(values: np.ndarray, ratio: float, seed: int = 1) -> np.ndarray:
    """Hide ``ratio`` of each patient's observed entries (CSDI: per patient, without replacement)."""
    if not 0 < ratio < 1:
        raise ValueError(f"missing ratio must lie in (0, 1), got {ratio}")
    rng = np.random.RandomState(seed)
    mask = np.zeros(values.shape, dtype=bool)
    for i, patient in enumerate(values):
        obs = np.flatnonzero(~np.isnan(patient))
        hide = rng.choice(obs, int(len(obs) * ratio), replace=False)
        m = np.zeros(patient.size, dtype=bool)
        m[hide] = True
        mask[i] = m.reshape(patient.shape)
    return mask


def csdi_split(n: int, seed: int = 1, fold: int = 0):
    """Indices (train, valid, test) exactly as CSDI's ``get_dataloader`` draws them."""
    ind = np.arange(n)
    np.random.RandomState(seed).shuffle(ind)
    start, end = int(fold * 0.2 * n), int((fold + 1) * 0.2 * n)
    test = ind[start:end]
    remain = np.delete(ind, np.arange(start, end))
    np.random.RandomState(seed).shuffle(remain)
    n_train = int(n * 0.7)
    return remain[:n_train], remain[n_train:], test
