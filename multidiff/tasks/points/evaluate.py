"""The point-cloud benchmark protocol: generation metrics (MMD/COV/1-NNA with CD and EMD) for a
:class:`~.api.Generator` on Luo & Hu's published protocol (every cloud in its bounding-box frame),
the reference rows that calibrate them (real training shapes vs test shapes, noise), completion
metrics (CD/EMD/F-score) for a :class:`~.api.Completer`, and the nearest-neighbour retrieval
baseline for completion."""
from __future__ import annotations

import time
from typing import Optional, Sequence

import torch

from ...datasets.pointclouds import PointCloudFolder, check_points, load_folder, normalize
from ...metrics import points as M
from .api import Completer, Generator, LatentCompleter, LatentGenerator, completion_pairs

__all__ = ["evaluate", "retrieve", "reference_rows", "score_generated", "distinct_references"]


def retrieve(partials: Sequence, library: dict, points: int = 256) -> torch.Tensor:
    """Nearest-neighbour retrieval baseline for completion.

    ``library`` is :func:`completion_pairs` of the training set: full shapes in the frames of their
    partial scans. Each query scan is put in its own frame, the library shape with the lowest
    one-sided squared Chamfer distance from the scan to the shape (on ``points`` random points of
    each shape) is chosen, and returned mapped back into the scan's units.
    """
    lib = library["x0"]
    sub = lib[:, torch.randperm(lib.shape[1], generator=torch.Generator().manual_seed(0))[:points]]
    out = []
    for i, p in enumerate(partials):
        z, frame = normalize(torch.tensor(check_points(p, f"partial cloud {i}")), "unit_std")
        z = z.float()
        scores = torch.cat([M.one_sided_chamfer(z.expand(len(c), -1, -1), c) for c in sub.split(256)])
        out.append(frame.invert(lib[int(scores.argmin())].double()))
    return torch.stack(out)


def _subsample(x: torch.Tensor, n: Optional[int], seed: int = 0) -> torch.Tensor:
    if n is None or n >= x.shape[1]:
        return x
    return x[:, torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(seed))[:n]]


def distinct_references(folder: PointCloudFolder, n: int, seed: int = 0) -> torch.Tensor:
    """(S, n, 3) clouds of ``folder`` without repeated points: a seeded subset of each cloud's
    distinct points (its first ``min(file points, num_points)`` rows, see ``resample``)."""
    rows = []
    sizes = folder.file_points or [folder.points.shape[1]] * len(folder)
    g = torch.Generator().manual_seed(seed)
    for cloud, m in zip(folder.points, sizes):
        m = min(m, cloud.shape[0])
        if m < n:
            raise ValueError(f"a cloud has only {m} distinct points, fewer than the {n} asked for")
        rows.append(cloud[torch.randperm(m, generator=g)[:n]])
    return torch.stack(rows)


def _eval_points(folder: PointCloudFolder, wanted: int) -> tuple[int, Optional[str]]:
    """Points per cloud to score at: ``wanted``, or the data's distinct points when the files
    hold fewer (comparing denser generated clouds with sparser references would bias the CD)."""
    have = folder.distinct_points()
    if have >= wanted:
        return wanted, None
    return have, (f"the reference files hold {have} distinct points per cloud, fewer than {wanted}: both sets "
                  f"are scored at {have} points (a seeded subset of each generated or completed cloud)")


def score_generated(gen: torch.Tensor, ref: torch.Tensor, metrics: Sequence[str] = ("cd", "emd"),
                    emd_points: Optional[int] = None, protocol: str = "luo_hu", seed: int = 0,
                    ref_cache: Optional[dict] = None) -> dict:
    """MMD / COV / 1-NNA of ``gen`` vs ``ref`` (equal points per cloud) under ``protocol``.

    The sets are normalised once (:func:`~multidiff.metrics.points.protocol_normalize`); EMD
    metrics use a seeded ``emd_points`` subset of every normalised cloud. ``ref_cache`` (a dict,
    filled on first use) keeps the reference-vs-reference matrices for the next call with the
    same references, metrics and settings.
    """
    if gen.shape[1] != ref.shape[1]:
        raise ValueError(f"generated and reference clouds must have equal points per cloud, got {gen.shape[1]} "
                         f"and {ref.shape[1]}; subsample the larger set")
    g, r = M.protocol_normalize(gen, ref, protocol)
    report = {}
    for m in metrics:
        gm, rm = (_subsample(g, emd_points, seed), _subsample(r, emd_points, seed)) if m.startswith("emd") else (g, r)
        cached = None
        if ref_cache is not None:
            key = (m, protocol, emd_points if m.startswith("emd") else None, seed)
            if key not in ref_cache:
                ref_cache[key] = M.reference_distances(rm, (m,))
            cached = ref_cache[key]
        report.update(M.generation_metrics(gm, rm, metrics=(m,), protocol="none", ref_distances=cached))
    return report


def reference_rows(data, classes: Optional[Sequence[str]] = None, num_points: int = 2048,
                   max_shapes: Optional[int] = None, metrics: Sequence[str] = ("cd", "emd"),
                   emd_points: Optional[int] = None, protocol: str = "luo_hu", seed: int = 0,
                   ref_cache: Optional[dict] = None) -> dict:
    """The rows that calibrate a generation table, with no model: real **training** shapes (as
    many as test shapes, a seeded random subset) vs the test split, which a perfect generator
    matches (1-NNA near 50 %), and Gaussian **noise** clouds, which any generator should beat
    (1-NNA near 100 %). Scored exactly as :func:`evaluate` scores a Generator."""
    ref_folder = load_folder(data, classes, "test", num_points, "unit_std", max_shapes, seed)
    n_pts, note = _eval_points(ref_folder, num_points)
    ref = distinct_references(ref_folder, n_pts, seed)
    train_folder = load_folder(data, classes, "train", num_points, "unit_std", None, seed)
    pick = torch.randperm(len(train_folder), generator=torch.Generator().manual_seed(seed))[:len(ref)]
    train = distinct_references(train_folder, n_pts, seed + 1)[pick]
    noise = torch.randn(len(ref), n_pts, 3, generator=torch.Generator().manual_seed(seed + 2))
    cache = {} if ref_cache is None else ref_cache
    out = {"n_ref": len(ref), "n_train": len(train), "eval_points": n_pts, "protocol": protocol}
    if note:
        out["note"] = note
    for name, clouds in (("train_vs_test", train), ("noise", noise)):
        t0 = time.perf_counter()
        out[name] = score_generated(clouds, ref, metrics, emd_points, protocol, seed, cache)
        out[name]["eval_s"] = time.perf_counter() - t0
    return out


def evaluate(model, data, classes: Optional[Sequence[str]] = None, split: str = "test", sampler_steps: int = 50,
             sampler: str = "ddpm", max_shapes: Optional[int] = None, n_samples: Optional[int] = None,
             metrics: Sequence[str] = ("cd", "emd"), emd_points: Optional[int] = None, threshold: float = 0.05,
             seed: int = 0, baseline: Optional[dict] = None, protocol: str = "luo_hu",
             eval_points: Optional[int] = None, ref_cache: Optional[dict] = None) -> dict:
    """Score a fitted model on ``data/CLASS/split``.

    Generator: MMD/COV/1-NNA (PointFlow's definitions, :mod:`multidiff.metrics.points`) of
    ``n_samples`` (default: as many as references) samples vs the split under ``protocol``:
    ``"luo_hu"`` (default; Luo & Hu 2021 ``test_gen.py``: every generated and reference cloud in
    its own bounding-box frame), ``"pointflow"`` (one dataset-wide frame) or ``"none"``. Clouds
    are scored at ``eval_points`` points (default ``num_points``, capped by the points the files
    hold); ``samples_per_s`` is the sampling throughput. ``ref_cache`` (a dict) keeps the
    reference matrices between calls (a learning curve scores many snapshots against one split).
    Completer or LatentCompleter: mean CD, EMD and F-score@``threshold`` between completion and ground
    truth in the ground truth's unit-sphere frame, over one scan per test shape (seeded by file name),
    both at ``eval_points`` points (the truth's distinct points, a seeded subset of the completion);
    ``baseline`` (a training :func:`completion_pairs`) adds the same numbers for :func:`retrieve`.
    ``emd_points`` subsamples clouds for the EMD only (a CPU budget knob; None keeps all); EMD is
    exact (``linear_sum_assignment``).
    """
    if protocol not in M.PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(M.PROTOCOLS)}, got {protocol!r}")
    folder = model.read_clouds(data, classes, split, max_shapes)
    if isinstance(model, (Generator, LatentGenerator)):
        n_pts, note = _eval_points(folder, eval_points or model.num_points)
        ref = distinct_references(folder, n_pts, seed)
        n = n_samples or len(folder)
        t0 = time.perf_counter()
        gen = model.sample(n, sampler_steps, sampler, seed=seed)
        rate = n / (time.perf_counter() - t0)
        gen = _subsample(gen, n_pts, seed + 1)
        report = {"samples_per_s": rate, "n_gen": n, "n_ref": len(ref), "eval_points": n_pts, "protocol": protocol}
        if note:
            report["note"] = note
        t0 = time.perf_counter()
        report.update(score_generated(gen, ref, metrics, emd_points, protocol, seed, ref_cache))
        report["eval_s"] = time.perf_counter() - t0
        return report
    if not isinstance(model, (Completer, LatentCompleter)):
        raise TypeError("evaluate expects a Generator, a LatentGenerator, a Completer or a LatentCompleter, got "
                        f"{type(model).__name__}")
    n_pts, note = _eval_points(folder, eval_points or model.num_points)
    pairs = completion_pairs(folder, 1, model.max_known, seed)
    partials = [t[: int(k.sum())] for t, k in zip(pairs["frame"].invert(pairs["x0"]), pairs["known"])]
    truth = distinct_references(folder, n_pts, seed).double()  # folder-normalised frame, no repeated points
    t0 = time.perf_counter()
    preds = {"model": model.complete(partials, sampler_steps, sampler, seed=seed)}
    rate = len(partials) / (time.perf_counter() - t0)
    if baseline is not None:
        preds["nn_retrieval"] = retrieve(partials, baseline)
    gt, sphere = normalize(truth, "unit_sphere")
    report = {"n_shapes": len(partials), "completions_per_s": rate, "threshold": threshold, "eval_points": n_pts}
    if note:
        report["note"] = note
    for name, pred in preds.items():
        p = sphere.apply(_subsample(pred.double(), n_pts, seed + 1)).float()
        g = gt.float()
        report[name] = {"CD": float(M.chamfer(p, g).mean()),
                        "EMD": float(M.emd_exact(_subsample(p, emd_points), _subsample(g, emd_points)).mean()),
                        f"F@{threshold}": float(M.fscore(p, g, threshold).mean())}
    return report
