"""Clean / robust accuracy with confidence intervals, as pure functions.

Robust accuracy is the fraction of test inputs still classified correctly after the attack
(Madry et al. 2018); the worst case over several attacks counts an input as robust only if
it survives every one of them (Croce & Hein 2020; Lee & Kim 2023).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["accuracy", "correct", "worst_case_correct", "first_converged", "wilson_interval", "normal_interval",
           "mean_interval"]


def correct(predictions: Sequence[int], labels: Sequence[int]) -> np.ndarray:
    """Boolean array: prediction equals label, element-wise (both 1-D, same length)."""
    p, y = np.asarray(predictions), np.asarray(labels)
    if p.ndim != 1 or p.shape != y.shape:
        raise ValueError(f"predictions and labels must be 1-D of equal length, got shapes {p.shape} and {y.shape}")
    return p == y


def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """Fraction of correct predictions."""
    c = correct(predictions, labels)
    if c.size == 0:
        raise ValueError("accuracy of zero examples is undefined; pass at least one prediction")
    return float(c.mean())


def worst_case_correct(labels: Sequence[int], *predictions: Sequence[int]) -> np.ndarray:
    """Correct under every prediction set (one per attack)."""
    if not predictions:
        raise ValueError("pass at least one prediction set")
    return np.logical_and.reduce([correct(p, labels) for p in predictions])


def first_converged(values: Sequence[float], tol: float) -> tuple[int, bool]:
    """Where a sequence of accuracies under ever stronger attacks has converged: the first index
    ``k >= 1`` with ``|values[k] - values[k - 1]| <= tol``, and True; else the last index and False
    (also for a single value: one point shows no convergence)."""
    v = [float(a) for a in values]
    if not v:
        raise ValueError("pass at least one value")
    if not (tol >= 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    for k in range(1, len(v)):
        if abs(v[k] - v[k - 1]) <= tol + 1e-12:  # 1e-12: k/n differences are not exact in floating point
            return k, True
    return len(v) - 1, False


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    from scipy.stats import norm
    return float(norm.ppf(0.5 + confidence / 2))


def _check_counts(k: int, n: int) -> None:
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, got k={k}, n={n}")


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k/n (Wilson 1927); good also near 0 and 1."""
    _check_counts(k, n)
    z = _z(confidence)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def normal_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wald (normal-approximation) interval p +- z sqrt(p(1-p)/n), clipped to [0, 1]."""
    _check_counts(k, n)
    z, p = _z(confidence), k / n
    half = z * math.sqrt(p * (1 - p) / n)
    return max(0.0, p - half), min(1.0, p + half)


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval over repeated runs (e.g. seeds): ``(mean, low, high)``.
    A single run gives a zero-width interval."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0 or not np.isfinite(v).all():
        raise ValueError("values must be a non-empty 1-D sequence of finite numbers")
    m = float(v.mean())
    if v.size == 1:
        return m, m, m
    from scipy.stats import t
    half = float(t.ppf(0.5 + confidence / 2, v.size - 1)) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return m, m - half, m + half
