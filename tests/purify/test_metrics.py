import math

import numpy as np
import pytest

from multidiff.metrics.robustness import (accuracy, correct, first_converged, mean_interval, normal_interval,
                                          wilson_interval, worst_case_correct)


def test_accuracy_and_worst_case():
    y = [0, 1, 2, 3]
    assert accuracy([0, 1, 0, 0], y) == 0.5
    assert worst_case_correct(y, [0, 1, 2, 0], [0, 0, 2, 3]).tolist() == [True, False, True, False]
    assert correct(np.array([1, 1]), np.array([1, 0])).tolist() == [True, False]
    with pytest.raises(ValueError, match="equal length"):
        accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="zero examples"):
        accuracy([], [])


def test_wilson_interval_against_hand_computation():
    # k = 2, n = 4, z = 1.959964: centre 0.5, half = z / (1 + z^2/4) * sqrt(1/16 + z^2/64)
    z = 1.959963984540054
    half = z / (1 + z * z / 4) * math.sqrt(1 / 16 + z * z / 64)
    lo, hi = wilson_interval(2, 4)
    assert math.isclose(lo, 0.5 - half, rel_tol=1e-12) and math.isclose(hi, 0.5 + half, rel_tol=1e-12)
    assert math.isclose(lo, 0.15003899, abs_tol=1e-7)  # statsmodels proportion_confint(2, 4, method="wilson")
    lo0, hi0 = wilson_interval(0, 10)  # non-degenerate at 0, unlike the Wald interval
    assert lo0 == 0.0 and math.isclose(hi0, 0.27753279, abs_tol=1e-7)
    assert normal_interval(0, 10) == (0.0, 0.0)
    lo, hi = normal_interval(8, 10)
    assert math.isclose(0.8 - lo, z * math.sqrt(0.8 * 0.2 / 10), rel_tol=1e-12) and hi == 1.0  # clipped


def test_mean_interval_is_student_t():
    m, lo, hi = mean_interval([1.0, 2.0, 3.0])
    assert m == 2.0 and math.isclose(hi - m, 4.302652729911275 / math.sqrt(3), rel_tol=1e-9)
    assert mean_interval([0.7]) == (0.7, 0.7, 0.7)


@pytest.mark.parametrize("args", [(5, 4), (-1, 4), (0, 0)])
def test_bad_counts(args):
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(*args)


def test_first_converged_by_hand():
    assert first_converged([0.71, 0.66, 0.63, 0.64, 0.60], 0.01) == (3, True)  # 0.05, 0.03, then 0.01 <= 0.01
    assert first_converged([0.71, 0.66, 0.63], 0.01) == (2, False)
    assert first_converged([0.5, 0.5], 0.0) == (1, True)
    assert first_converged([0.5], 0.5) == (0, False)  # one point shows no convergence
    assert first_converged([0.57, 0.58], 0.01) == (1, True)  # 0.58 - 0.57 = 0.010000000000000009 in floating point
    with pytest.raises(ValueError, match="at least one value"):
        first_converged([], 0.01)
    with pytest.raises(ValueError, match="tol must be"):
        first_converged([0.5, 0.4], -0.1)
