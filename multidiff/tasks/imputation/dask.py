"""A fitted :class:`~multidiff.tasks.imputation.Imputer` applied to a Dask DataFrame: tables larger
than one machine, imputed on the workers of a Dask cluster.

Two ways to cut the table (see docs/scaling.md):

- ``by=<column>``: each value of the column (a station, a patient) is a separate series, imputed
  whole on one worker exactly as ``imputer.impute(group)`` would impute it on one machine
  (:func:`impute_groups` is that pandas computation). Partitions that already hold whole groups
  are used as they are; otherwise the frame is shuffled by the key first.
- no ``by``: one long series in time order, split across partitions (known divisions). Each
  partition is imputed with ``map_overlap``, borrowing from its neighbours the rows its windows
  reach, and the result equals ``imputer.impute(ddf.compute())`` value for value: the windows,
  their seeds, the groups of windows that share a network call and the interpolation base are
  those of the whole series, whatever the partition boundaries.

The imputer ships to the workers as a small pickle (weights on the CPU, no training history),
or as the path of a saved imputer that each worker process loads once (a shared file system).
"""
from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import pandas as pd

try:
    import dask
    import dask.dataframe as dd
except ImportError as e:  # an optional dependency: say how to get it
    raise ImportError("multidiff.tasks.imputation.dask needs Dask: pip install 'multidiff[dask]' "
                      f"(dask[dataframe] and distributed); {e}") from e

from ...core.validate import check_whole
from ...datasets.frames import NumericFrame, is_number_dtype, with_values
from .api import SKIPPED, Imputer, NotFittedError
from .windows import interpolate_series

__all__ = ["impute", "impute_groups", "shippable"]

_ROW = "__multidiff_row__"    # global row number, added for the time split and dropped again
_PART = "__multidiff_part__"  # partition number, added to keep the row order through a shuffle

ImputerLike = Union[Imputer, str, os.PathLike]


def impute(ddf, imputer: ImputerLike, by=None, n_samples: Optional[int] = None, shuffle: Optional[bool] = None):
    """Fill the NaNs of a Dask DataFrame's numeric columns with a fitted imputer; returns a lazy
    Dask DataFrame with the same columns (imputed ones as float), index labels and partitions.

    ``imputer``: a fitted :class:`Imputer`, or the directory of one saved with ``Imputer.save``
    (read by every worker process once, so it must be on a file system the workers share).
    ``ddf`` must hold the numeric columns the imputer was fitted on (in any order) and no other
    numeric column; other columns pass through, as in :meth:`Imputer.impute`. ``n_samples``
    defaults to the imputer's; the fill is the median of the samples.

    ``by=None`` (an ``Imputer(pretrained=None)`` only): ``ddf`` is one series in time order across its partitions (known divisions, each
    partition at least ``imputer.window_sampler().segment_overlap(...)`` rows: about ``window`` times the windows of
    one network call). Before returning, one pass over the data (computed now) counts the rows
    of each partition and finds the observations nearest to its edges; the imputation itself runs
    when the result is computed and equals ``imputer.impute(ddf.compute(), n_samples)``.

    ``by=<column>``: each group is imputed as its own series (:func:`impute_groups`). ``shuffle``:
    None checks (one pass over the key column, now) whether every group lies in one partition and
    shuffles by the key only if not; False requires it (and raises otherwise); True shuffles
    without checking. Without a shuffle rows keep their order and divisions; after one, each output
    partition holds whole groups with the rows in input order (sort by index to compare frames).
    """
    if not isinstance(ddf, dd.DataFrame):
        if isinstance(ddf, pd.DataFrame):
            raise TypeError("expected a Dask DataFrame, got a pandas DataFrame; impute it with imputer.transform(df), "
                            "or make it a Dask one with dask.dataframe.from_pandas(df, npartitions=...)")
        raise TypeError(f"expected a Dask DataFrame, got {type(ddf).__name__}")
    imp = _client_imputer(imputer)
    n = imp.n_samples if n_samples is None else check_whole("n_samples", n_samples, 1)
    columns = list(ddf.columns)
    if by is not None and by not in columns:
        raise ValueError(f"by={by!r} is not a column of the frame; its columns are {columns[:10]}")
    for name in (_ROW, _PART):
        if name in columns:
            raise ValueError(f"the frame has a column named {name!r}, which this function uses itself; rename it")
    drop_by = by is not None and by not in list(imp.input_columns_)
    _check_columns(ddf._meta, imp, [by] if drop_by else [])
    skipped = [c for c in columns if c not in imp.columns_ and c != imp.time_column and c != by]
    if skipped:
        warnings.warn(f"columns {skipped[:10]}{' ...' if len(skipped) > 10 else ''} {SKIPPED} (not imputed); "
                      "convert them to numbers to have them imputed", UserWarning, stacklevel=2)
    ship = _Ship(shippable(imp) if isinstance(imputer, Imputer) else str(Path(imputer).resolve()))
    meta = _output_meta(ddf._meta, imp)
    if by is None:
        if imp.pretrained is not None:
            raise ValueError("a pretrained Imputer blends in a regression fitted on the whole series, so one series "
                             "cannot be imputed partition by partition; pass by=<column> when the partitions hold "
                             "separate series, impute ddf.compute() with imputer.transform, or fit "
                             "Imputer(pretrained=None) (CSDI) for a series split by time")
        return _time_split(ddf, imp, ship, n, meta)
    return _group_split(ddf, imp, ship, n, by, drop_by, shuffle, meta)


def impute_groups(df: pd.DataFrame, imputer: ImputerLike, by, n_samples: Optional[int] = None) -> pd.DataFrame:
    """pandas: every group of the column ``by`` imputed as its own series by
    ``imputer.impute(group, n_samples)`` (the ``by`` column itself is handed to the imputer only
    if it was fitted with it). Returns a copy of ``df``, rows in their order, NaN keys a group of
    their own. This is what :func:`impute` computes on a cluster with ``by``."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if by not in df.columns:
        raise ValueError(f"by={by!r} is not a column of the frame; its columns are {list(df.columns)[:10]}")
    imp = _client_imputer(imputer)
    n = imp.n_samples if n_samples is None else check_whole("n_samples", n_samples, 1)
    return _impute_groups(df, imp, by, by not in list(imp.input_columns_), n)


def shippable(imputer: Imputer) -> Imputer:
    """A copy of a fitted imputer that is cheap to send to workers: the weights on the CPU and the
    training history (``train_result_``) left out; sampling is unchanged (the seed, the
    hyper-parameters and the normalisation travel with it). The imputer itself is not modified."""
    if not isinstance(imputer, Imputer):
        raise TypeError(f"expected a fitted Imputer, got {type(imputer).__name__}")
    imputer.check_ready()
    light = copy.copy(imputer)
    light.__dict__.pop("train_result_", None)
    if any(p.device.type != "cpu" for p in imputer.model_.parameters()):
        light.model_ = copy.deepcopy(imputer.model_).cpu()
    return light


# ---------------------------------------------------------------------------------- the imputer
@dataclass(frozen=True)
class _Ship:
    """What travels to a worker: a fitted imputer, or the path of a saved one."""
    imputer: ImputerLike

    def get(self) -> Imputer:
        if isinstance(self.imputer, Imputer):
            return self.imputer
        path = Path(self.imputer).resolve()
        try:
            stamp = hashlib.sha256((path / "config.json").read_bytes()).hexdigest()
        except OSError as e:
            raise FileNotFoundError(f"the worker process {os.getpid()} cannot read the saved imputer {path} ({e}); "
                                    "the workers need it on a file system they share with the client") from e
        return _load_saved(str(path), stamp)


@functools.lru_cache(maxsize=4)
def _load_saved(path: str, stamp: str) -> Imputer:
    """Once per worker process and checkpoint content (``stamp``: the hash of its config.json, which
    holds the weights' checksum): a checkpoint saved again at the same path is read again."""
    return Imputer.load(path)


def _client_imputer(imputer: ImputerLike) -> Imputer:
    if isinstance(imputer, Imputer):
        return imputer.check_ready()
    if isinstance(imputer, (str, os.PathLike)):
        return Imputer.load(imputer).check_ready()
    raise TypeError(f"imputer must be a fitted Imputer or the directory of a saved one, got {type(imputer).__name__}")


def _check_columns(meta: pd.DataFrame, imp: Imputer, skip: list) -> None:
    """The frame must hold the numeric columns the imputer was fitted on, in any order, and no
    other numeric column (as ``Imputer.impute`` asks); text columns holding numbers are only
    seen by the workers, which raise for them."""
    columns = [c for c in meta.columns if c not in skip]
    missing = [c for c in imp.columns_ if c not in columns]
    extra = [c for c in columns if c not in imp.columns_ and c != imp.time_column and is_number_dtype(meta[c].dtype)]
    if missing or extra:
        raise ValueError(f"the frame's numeric columns differ from those the imputer was fitted on: missing "
                         f"{missing[:5]}, unexpected {extra[:5]}; pass the fitted ones (imputer.columns_: "
                         f"{list(imp.columns_)[:5]}{' ...' if len(imp.columns_) > 5 else ''}) or refit")


def _output_meta(meta: pd.DataFrame, imp: Imputer) -> pd.DataFrame:
    """An empty frame ``meta`` with the dtypes imputing gives: the imputed columns become float."""
    out = meta.iloc[:0].copy()
    for c in imp.columns_:
        out[c] = pd.Series(index=out.index, dtype=np.float64)
    return out


@contextlib.contextmanager
def _quiet():
    """Inside a task: the warning about columns left as they are was given once on the client."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=f".*{SKIPPED}", category=UserWarning)
        yield


def _reraise(e: Exception, where: str):
    """``e`` again, its message prefixed with the partition or group it came from."""
    if type(e) in (ValueError, TypeError, FileNotFoundError, NotFittedError):
        raise type(e)(f"{where}: {e}") from e
    raise e


# ---------------------------------------------------------------------------- one long series
def _time_split(ddf, imp: Imputer, ship, n: int, meta: pd.DataFrame):
    if not ddf.known_divisions:
        raise ValueError("the frame's divisions are unknown, so its partitions are not known to be in time order; "
                         "give it a sorted index first (ddf.set_index('time', sorted=True), or "
                         "dask.dataframe.from_pandas(df.sort_index(), npartitions=...)), or pass by=<column> "
                         "if its partitions are separate series")
    divisions = list(ddf.divisions)
    if any(a > b for a, b in zip(divisions, divisions[1:])):
        raise ValueError(f"the frame's divisions are not sorted ({divisions[:5]} ...); sort it by time first")
    shipped = dask.delayed(ship, pure=True)  # one key, sent once to each worker
    stats = dask.compute(*[dask.delayed(_edge_stats)(part, shipped, i) for i, part in enumerate(ddf.to_delayed())])
    sizes = np.array([s["rows"] for s in stats])
    total = int(sizes.sum())
    sampler = imp.window_sampler()
    if total <= sampler.window or ddf.npartitions == 1:  # one window, or nothing to split: one task
        one = ddf.repartition(npartitions=1) if ddf.npartitions > 1 else ddf
        return one.map_partitions(_impute_one, shipped, n_samples=n, meta=meta)
    overlap = sampler.segment_overlap(total, len(imp.columns_), n)
    small = np.flatnonzero(sizes < overlap)
    if len(small):
        i, per_call = int(small[0]), sampler.plan(total, len(imp.columns_), n)[2]
        raise ValueError(f"partition {i} has {sizes[i]} rows, fewer than the {overlap} rows that a partition borrows "
                         f"from each neighbour (the windows of {sampler.window} rows that reach across its edges, in "
                         f"network calls of {per_call} windows as on one machine); repartition into fewer, larger "
                         f"partitions (ddf.repartition(npartitions={max(1, total // (10 * overlap))})), or lower the "
                         "imputer's sample_batch_size")
    offsets = tuple(int(o) for o in np.concatenate([[0], np.cumsum(sizes)]))
    names = [_base_name(j) for j in range(len(imp.columns_))] if imp.base is not None else []
    extra = {_ROW: np.int64(0), **{c: np.float32(0) for c in names}}
    prepared = ddf.map_partitions(_prepare, shipped, dask.delayed(_edges(stats, offsets, imp), pure=True),
                                  offsets=offsets, meta=ddf._meta.assign(**extra).iloc[:0])
    # map_overlap takes no Delayed argument (it would arrive unresolved): the imputer goes with each
    # task, a pickle about the size of its weights (450 kB for the defaults); the path of a saved
    # imputer is a short string instead, read once per worker process
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # columns with no observation in a partition
        seen = np.stack([np.nanmin([s["low"] for s in stats if s["rows"]], axis=0),
                         np.nanmax([s["high"] for s in stats if s["rows"]], axis=0)])
    bounds = imp.observed_range(imp.normalise(seen).astype(np.float32))  # as the whole series', warned here
    return prepared.map_overlap(_impute_chunk, overlap, overlap, ship=ship, offsets=offsets, overlap=overlap,
                                n_samples=n, bounds=bounds, meta=meta)


def _base_name(j: int) -> str:
    return f"__multidiff_base_{j}__"


def _edge_stats(part: pd.DataFrame, ship, i: int) -> dict:
    """Rows of partition ``i`` and, per column, its first and last observations (row, value; row
    -1 for none) and its lowest and highest: all that the other partitions need to know of it to
    interpolate across it and to bound the samples as the whole series bounds them."""
    if len(part) == 0:
        return {"rows": 0}
    with _quiet():
        try:
            values = ship.get().numeric_frame(part).values
        except Exception as e:
            _reraise(e, f"partition {i}")
    obs = ~np.isnan(values)
    cols = np.arange(values.shape[1])
    first = np.where(obs.any(0), obs.argmax(0), -1)
    last = np.where(obs.any(0), len(obs) - 1 - obs[::-1].argmax(0), -1)
    value = lambda pos: np.where(pos >= 0, values[np.clip(pos, 0, None), cols], 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
    return {"rows": len(part), "first": (first, value(first)), "last": (last, value(last)), "low": low, "high": high}


def _edges(stats, offsets: tuple, imp: Imputer) -> list:
    """For each partition, per column the nearest observation before its first row and after its
    last, as :func:`interpolate_series` takes them: (distance in rows or 0 for none, normalised value)."""
    k, parts = len(imp.columns_), len(stats)
    norm = lambda v: imp.normalise(v[None]).astype(np.float32)[0]  # as the whole series is normalised

    def running(order, key):  # nearest observation (global row, raw value) up to and including each partition
        row, val, out = np.full(k, -1), np.zeros(k), [None] * parts
        for j in order:
            pos, v = stats[j][key]
            row, val = np.where(pos >= 0, offsets[j] + pos, row), np.where(pos >= 0, v, val)
            out[j] = (row, val)
        return out

    upto, downfrom = running(range(parts), "last"), running(range(parts - 1, -1, -1), "first")
    edges = []
    for i in range(parts):
        before = after = None
        if i > 0:
            row, val = upto[i - 1]
            before = (np.where(row >= 0, offsets[i] - row, 0), norm(val))
        if i < parts - 1:
            row, val = downfrom[i + 1]
            after = (np.where(row >= 0, row - (offsets[i + 1] - 1), 0), norm(val))
        edges.append((before, after))
    return edges


def _prepare(part: pd.DataFrame, ship, edges: list, offsets: tuple, partition_info=None) -> pd.DataFrame:
    """Partition ``i`` with its global row numbers and (interpolation models) its rows of the
    whole series' interpolation base, so that a neighbour borrowing its rows borrows those too."""
    i = partition_info["number"]
    out = part.assign(**{_ROW: np.arange(offsets[i], offsets[i + 1], dtype=np.int64)})
    try:
        imp = ship.get()
        if imp.base is None:
            return out
        with _quiet():
            z = imp.normalise(imp.numeric_frame(part).values).astype(np.float32)
    except Exception as e:
        _reraise(e, f"partition {i}")
    base = interpolate_series(z, *edges[i])
    return out.assign(**{_base_name(j): base[:, j] for j in range(base.shape[1])})


def _impute_chunk(chunk: pd.DataFrame, ship, offsets: tuple, overlap: int, n_samples: int, bounds: tuple) -> pd.DataFrame:
    """One partition with ``overlap`` rows of each neighbour -> the same rows, the partition's own
    filled (``map_overlap`` drops the neighbours' rows again)."""
    rows = chunk[_ROW].to_numpy()
    parts = len(offsets) - 1
    span = lambda i: (offsets[i] - (overlap if i > 0 else 0), offsets[i + 1] + (overlap if i < parts - 1 else 0))
    i = next(i for i in range(parts) if span(i) == (rows[0], rows[-1] + 1))
    names = [c for c in chunk.columns if isinstance(c, str) and c.startswith("__multidiff_base_")]
    base = chunk[names].to_numpy(dtype=np.float32) if names else None
    data = chunk.drop(columns=[_ROW, *names])
    return _fill(data, ship, i, int(rows[0]), (offsets[i], offsets[i + 1]), offsets[-1], base, n_samples, bounds)


def _impute_one(part: pd.DataFrame, ship, n_samples: int) -> pd.DataFrame:
    return _fill(part, ship, 0, 0, (0, len(part)), len(part), None, n_samples)


def _fill(data: pd.DataFrame, ship, i: int, start: int, own: tuple, total: int, base: Optional[np.ndarray],
          n_samples: int, bounds: Optional[tuple] = None) -> pd.DataFrame:
    """``data``: the rows ``start..`` of a series of ``total`` rows; its rows ``own = (a, b)`` are
    filled as ``imputer.impute(whole series)`` fills them, the others are returned as they are.
    ``base``: the whole series' interpolation at those rows and ``bounds`` the range its samples
    may reach (None: computed here, when ``data`` is the whole series)."""
    a, b = own
    try:
        imp = ship.get()
        with _quiet():
            frame = imp.numeric_frame(data)
        values = frame.values
        mine = values[a - start:b - start]
        filled = values.copy()
        if np.isnan(mine).any():
            z = imp.normalise(values).astype(np.float32)
            if base is None and imp.base is not None:
                base = interpolate_series(z)
            low, high = imp.observed_range(z) if bounds is None else bounds
            samples = imp.window_sampler().sample_segment(imp.model_, z, base, start, total, own, n_samples, imp.seed,
                                                          low, high)
            draws = np.where(np.isnan(mine)[None], samples * imp.std_ + imp.mean_, mine[None])
            filled[a - start:b - start] = np.median(draws, axis=0)
        return with_values(data, frame, filled)
    except Exception as e:
        _reraise(e, f"partition {i} (rows {a}..{b - 1} of the series)")


# ------------------------------------------------------------------------- separate series
def _group_split(ddf, imp: Imputer, ship, n: int, by, drop_by: bool, shuffle: Optional[bool], meta: pd.DataFrame):
    if shuffle is not None and not isinstance(shuffle, bool):
        raise ValueError(f"shuffle must be None (only when needed), True or False, got {shuffle!r}")
    aligned = False
    if shuffle is not True:
        keys = dask.compute(*[dask.delayed(_keys)(p) for p in ddf[by].to_delayed()])
        seen, split = {}, None
        for i, ks in enumerate(keys):
            for key in ks:
                if key in seen and split is None:
                    split = (key, seen[key], i)
                seen.setdefault(key, i)
        aligned = split is None
        if not aligned and shuffle is False:
            key, i, j = split
            raise ValueError(f"the group {by}={key!r} lies in partitions {i} and {j}, but shuffle=False asks for every "
                             "group in one partition; pass shuffle=None (shuffle when needed) or repartition by the key")
    tagged = ddf.map_partitions(_tag_rows, meta=ddf._meta.assign(**{_PART: np.int64(0), _ROW: np.int64(0)}).iloc[:0])
    if not aligned:
        tagged = tagged.shuffle(on=by)
    return tagged.map_partitions(_impute_part_groups, dask.delayed(ship, pure=True), by=by, drop_by=drop_by,
                                 n_samples=n, meta=meta, clear_divisions=not aligned)


def _keys(column: pd.Series) -> list:
    """The distinct keys of one partition in order of appearance (None standing for the missing key)."""
    keys = column.dropna().unique().tolist()
    return keys + [None] if column.isna().any() else keys


def _tag_rows(part: pd.DataFrame, partition_info=None) -> pd.DataFrame:
    return part.assign(**{_PART: np.int64(partition_info["number"]), _ROW: np.arange(len(part), dtype=np.int64)})


def _impute_part_groups(part: pd.DataFrame, ship, by, drop_by: bool, n_samples: int) -> pd.DataFrame:
    """The whole groups of one partition, each imputed as its own series, rows in input order."""
    order = np.lexsort((part[_ROW].to_numpy(), part[_PART].to_numpy()))
    data = part.iloc[order].drop(columns=[_ROW, _PART])
    imp = ship.get()
    if len(data) == 0:  # a partition the shuffle left empty
        return _output_meta(data, imp)
    return _impute_groups(data, imp, by, drop_by, n_samples)


def _impute_groups(df: pd.DataFrame, imp: Imputer, by, drop_by: bool, n: int) -> pd.DataFrame:
    filled = np.full((len(df), len(imp.columns_)), np.nan)
    with _quiet():
        for key, rows in df.groupby(by, sort=False, dropna=False, observed=True).indices.items():
            group = df.iloc[rows]
            try:
                out = imp.impute(group.drop(columns=[by]) if drop_by else group, n_samples=n)
            except Exception as e:
                _reraise(e, f"group {by}={key!r}")
            filled[rows] = out[list(imp.columns_)].to_numpy(dtype=np.float64)
    frame = NumericFrame(values=filled, columns=list(imp.columns_), time=None, time_column=imp.time_column)
    return with_values(df, frame, filled)
