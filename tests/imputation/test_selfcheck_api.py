"""The self-check a user reads after fit (issue: imputation on a CPU): the imputer holds out some
observed entries, imputes them, and reports its MAE next to linear interpolation's; it warns
exactly when it does not win."""
import warnings

import numpy as np

from multidiff.tasks.imputation import Imputer


def test_fit_reports_a_held_out_check_and_warns_only_when_interpolation_wins(aqi_week, tiny):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        imp = Imputer(**tiny).fit(aqi_week)
    check = imp.check_
    assert check["entries"] > 0 and np.isfinite(check["model_mae"]) and np.isfinite(check["interpolation_mae"])
    assert f"{check['model_mae']:.4g}" in check["message"] and f"{check['interpolation_mae']:.4g}" in check["message"]
    warned = [w for w in caught if "self-check" in str(w.message)]
    assert bool(warned) == (check["model_mae"] >= check["interpolation_mae"])
    res = imp.impute(aqi_week, n_samples=2, return_result=True)
    assert res.check == check


def test_the_check_can_be_switched_off(aqi_week, tiny):
    imp = Imputer(**{**tiny, "self_check": 0.0}).fit(aqi_week)
    assert imp.check_ is None and imp.impute(aqi_week, n_samples=2, return_result=True).check is None
