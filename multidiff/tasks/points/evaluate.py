"""The point-cloud benchmark protocol: generation metrics (MMD/COV/1-NNA with CD and EMD) for a
:class:`~.api.Generator`, completion metrics (CD/EMD/F-score) for a :class:`~.api.Completer`, and
the nearest-neighbour retrieval baseline for completion."""
from __future__ import annotations

import time
from typing import Optional, Sequence

import torch

from ...core.deprecation import renamed_kwargs
from ...datasets.pointclouds import check_points, normalize
from ...metrics import points as M
from .api import Completer, Generator, completion_pairs

__all__ = ["evaluate", "retrieve"]


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


@renamed_kwargs(n_steps="sampler_steps")
def evaluate(model, data, classes: Optional[Sequence[str]] = None, split: str = "test", sampler_steps: int = 50,
             sampler: str = "ddpm", max_shapes: Optional[int] = None, n_samples: Optional[int] = None,
             metrics: Sequence[str] = ("cd", "emd"), emd_points: Optional[int] = None, threshold: float = 0.05,
             seed: int = 0, baseline: Optional[dict] = None) -> dict:
    """Score a fitted model on ``data/CLASS/split``.

    Generator: MMD/COV/1-NNA (PointFlow) of ``n_samples`` (default: as many as references) samples
    vs the split, both in the training normalisation; ``samples_per_s`` is the sampling throughput.
    Completer: mean CD, EMD and F-score@``threshold`` between completion and ground truth in the
    ground truth's unit-sphere frame, over one scan per test shape (seeded by file name);
    ``baseline`` (a training :func:`completion_pairs`) adds the same numbers for :func:`retrieve`.
    ``emd_points`` subsamples clouds for the EMD only (a CPU budget knob; None keeps all).
    """
    folder = model._folder(data, classes, split, max_shapes)
    if isinstance(model, Generator):
        n = n_samples or len(folder)
        t0 = time.perf_counter()
        gen = model.sample(n, sampler_steps, sampler, seed=seed)
        rate = n / (time.perf_counter() - t0)
        ref = folder.points
        report = {"samples_per_s": rate, "n_gen": n, "n_ref": len(ref)}
        for m in metrics:
            g, r = (_subsample(gen, emd_points), _subsample(ref, emd_points)) if m.startswith("emd") else (gen, ref)
            report.update(M.generation_metrics(g, r, metrics=(m,)))
        return report
    if not isinstance(model, Completer):
        raise TypeError(f"evaluate expects a Generator or a Completer, got {type(model).__name__}")
    pairs = completion_pairs(folder, 1, model.max_known, seed)
    truth = pairs["frame"].invert(pairs["x0"])  # folder-normalised frame
    partials = [t[: int(k.sum())] for t, k in zip(truth, pairs["known"])]
    t0 = time.perf_counter()
    preds = {"model": model.complete(partials, sampler_steps, sampler, seed=seed).float()}
    rate = len(partials) / (time.perf_counter() - t0)
    if baseline is not None:
        preds["nn_retrieval"] = retrieve(partials, baseline).float()
    gt, sphere = normalize(truth.double(), "unit_sphere")
    report = {"n_shapes": len(partials), "completions_per_s": rate, "threshold": threshold}
    for name, pred in preds.items():
        p = sphere.apply(pred.double()).float()
        g = gt.float()
        report[name] = {"CD": float(M.chamfer(p, g).mean()),
                        "EMD": float(M.emd_sinkhorn(_subsample(p, emd_points), _subsample(g, emd_points)).mean()),
                        f"F@{threshold}": float(M.fscore(p, g, threshold).mean())}
    return report
