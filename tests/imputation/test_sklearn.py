"""scikit-learn conventions of the Imputer, and scikit-learn's own estimator checks on a tiny
configuration (each check fits in ~0.1 s; the whole file runs in ~15 s)."""
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks
from sklearn.utils.fixes import parse_version

from multidiff.tasks.imputation import Imputer

TINY = dict(window=2, channels=8, layers=1, heads=1, epochs=1, max_steps=2, num_train_steps=10, n_samples=2,
            progress=False, device="cpu", pretrained=None)

# scikit-learn checks that contradict this imputer, each with the reason
EXPECTED_FAILED = {
    "check_set_output_transform_pandas": "a DataFrame in gives a DataFrame (with its own labels) by default; the "
                                         "check rebuilds the expected frame by label selection, assuming an array",
    "check_global_output_transform_pandas": "same as check_set_output_transform_pandas, via the global config",
}
# checks that check_estimator does not run (scikit-learn runs them in its own test suite only)
EXTRA_CHECKS = ("check_dataframe_column_names_consistency", "check_set_output_transform",
                "check_set_output_transform_pandas", "check_global_output_transform_pandas",
                "check_transformer_get_feature_names_out", "check_transformer_get_feature_names_out_pandas",
                "check_requires_y_none")


def frame(rows=30, columns=("a", "b", "c")):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, len(columns)))
    x[rng.random(x.shape) < 0.2] = np.nan
    return pd.DataFrame(x, columns=list(columns))


def test_scikit_learn_estimator_checks():
    failed, seen = {}, set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for result in estimator_checks.check_estimator(Imputer(**TINY), on_fail=None, on_skip=None):
            seen.add(result["check_name"])
            if result["status"] == "failed" and result["check_name"] not in EXPECTED_FAILED:
                failed[result["check_name"]] = repr(result["exception"])
        for name in EXTRA_CHECKS:
            try:
                getattr(estimator_checks, name)("Imputer", Imputer(**TINY))
            except Exception as err:  # noqa: BLE001 - collect every failure
                if name not in EXPECTED_FAILED:
                    failed[name] = repr(err)
    assert not failed
    assert {"check_transformer_general", "check_n_features_in_after_fitting", "check_fit_idempotent",
            "check_estimators_unfitted", "check_estimators_pickle"} <= seen


def test_not_fitted_error_is_scikit_learns_and_a_runtime_error():
    for call in (lambda imp: imp.transform(frame()), lambda imp: imp.impute(frame()),
                 lambda imp: imp.save("nowhere"), lambda imp: imp.get_feature_names_out()):
        with pytest.raises(NotFittedError):
            call(Imputer(**TINY))
    with pytest.raises(RuntimeError, match="not fitted"):
        Imputer(**TINY).transform(frame())


def test_feature_attributes_follow_scikit_learn():
    with pytest.warns(UserWarning, match=r"\['d'\] are not numeric"):
        imp = Imputer(**TINY).fit(frame().assign(d=pd.Timestamp("2024-01-01")))  # a skipped column still counts
    assert imp.n_features_in_ == 4 and list(imp.feature_names_in_) == ["a", "b", "c", "d"]
    assert list(imp.get_feature_names_out()) == ["a", "b", "c", "d"]
    assert imp.columns_ == ["a", "b", "c"]
    imp.fit(frame().to_numpy())  # refit on an array: no names any more
    assert imp.n_features_in_ == 3 and not hasattr(imp, "feature_names_in_")
    assert list(imp.get_feature_names_out()) == ["x0", "x1", "x2"]
    mixed = frame().set_axis(["a", 1, (2, 3)], axis=1)  # not all strings: no names, and no error
    assert not hasattr(Imputer(**TINY).fit(mixed), "feature_names_in_")


def test_transform_checks_features_and_returns_what_set_output_asks():
    df = frame()
    imp = Imputer(**TINY).fit(df.to_numpy())
    out = imp.transform(df.to_numpy())
    assert isinstance(out, np.ndarray) and out.shape == df.shape and not np.isnan(out).any()
    with pytest.raises(ValueError, match="X has 2 features, but Imputer is expecting 3 features as input"):
        imp.transform(df.to_numpy()[:, :2])
    with pytest.raises(ValueError, match="Expected 2D array"):
        imp.transform(df.to_numpy()[:, 0])
    imp.set_output(transform="pandas")
    out = imp.transform(df.to_numpy())
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["x0", "x1", "x2"]
    imp.set_output(transform="default")
    assert isinstance(imp.transform(df.to_numpy()), np.ndarray)

    named = Imputer(**TINY).fit(df)
    assert isinstance(named.transform(df), pd.DataFrame)
    with pytest.raises(ValueError, match="Feature names unseen at fit time:\n- z"):
        named.transform(df.rename(columns={"c": "z"}))
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        named.transform(df.to_numpy())


@pytest.mark.skipif(parse_version(sklearn.__version__) < parse_version("1.6"),
                    reason="the __sklearn_tags__ API arrived in scikit-learn 1.6")
def test_tags_allow_nan():
    from sklearn.utils import get_tags
    assert get_tags(Imputer()).input_tags.allow_nan
