"""Imputer reliability: atomic refits, parameter checks, frame checks, RNG isolation,
checkpoints and batch-independent sampling. Synthetic frames and a tiny model (~0.2 s a fit)."""
import json
import random

import numpy as np
import pandas as pd
import pytest
import torch

import multidiff
from multidiff.tasks.imputation import Imputer
from multidiff.tasks.imputation import api as imputer_module

TINY = dict(window=8, channels=8, layers=1, heads=1, epochs=1, max_steps=3, num_train_steps=10, n_samples=2,
            progress=False, device="cpu", pretrained=None)


def gappy(scale: float = 1.0, rows: int = 48, seed: int = 0, columns=("a", "b", "c")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(rows)[:, None]
    values = (np.sin(t / 4 + np.arange(len(columns))) + rng.normal(0, 0.1, (rows, len(columns)))) * scale
    values[rng.random(values.shape) < 0.15] = np.nan
    return pd.DataFrame(values, columns=list(columns), index=pd.date_range("2024-01-01", periods=rows, freq="h"))


def draws(imp: Imputer, df: pd.DataFrame) -> np.ndarray:
    return imp.impute(df, return_result=True, return_samples=True).samples


@pytest.fixture(scope="module")
def fitted():
    return Imputer(**TINY).fit(gappy())


# ------------------------------------------------------------------ 1. a failed refit changes nothing
def _fitted_state(imp):
    return {k: v for k, v in vars(imp).items() if k.endswith("_")}


def test_a_refit_rejected_by_its_parameters_leaves_the_fit_as_it_was():
    a, b = gappy(), gappy(scale=1000.0, seed=1)
    imp = Imputer(**TINY).fit(a)
    before, state = draws(imp, a), _fitted_state(imp)
    with pytest.raises(ValueError, match=r"lr must be None \(.*\) or a number in \(0, inf\)"):
        imp.set_params(lr=0).fit(b)
    assert _fitted_state(imp).keys() == state.keys() and all(_fitted_state(imp)[k] is v for k, v in state.items())
    np.testing.assert_array_equal(draws(imp.set_params(lr=1e-3), a), before)


def test_a_refit_failing_during_training_leaves_the_fit_as_it_was(monkeypatch):
    a, b = gappy(), gappy(scale=1000.0, seed=1, columns=("a", "b", "c", "d"))
    imp = Imputer(**TINY).fit(a)
    before, state = draws(imp, a), _fitted_state(imp)

    def diverge(*args, **kwargs):
        raise FloatingPointError("training loss became nan at step 1")

    monkeypatch.setattr(imputer_module, "fit", diverge)
    with pytest.raises(FloatingPointError):
        imp.fit(b)
    assert all(_fitted_state(imp)[k] is v for k, v in state.items())
    np.testing.assert_array_equal(draws(imp, a), before)
    fresh = Imputer(**TINY)
    with pytest.raises(FloatingPointError):
        fresh.fit(a)
    assert not _fitted_state(fresh)
    with pytest.raises(RuntimeError, match="not fitted"):
        fresh.impute(a)


# ------------------------------------------------------------------ 2. parameters
@pytest.mark.parametrize("params,message", [
    ({"stride": 9}, r"stride must be None \(one window\) or a whole number in \[1, 8\], got 9"),
    ({"stride": 0}, r"stride .* in \[1, 8\], got 0"),
    ({"stride": -2}, r"stride .* in \[1, 8\], got -2"),
    ({"stride": 2.5}, r"stride .* whole number in \[1, 8\], got 2.5"),
    ({"train_stride": 0}, r"train_stride must be a whole number in \[1, 8\], got 0"),
    ({"train_stride": 9}, r"train_stride must be a whole number in \[1, 8\], got 9"),
    ({"train_stride": 1.0}, r"train_stride must be a whole number"),
    ({"window": 1}, r"window must be None \(64 with a pretrained network, 36 without\) or a whole number >= 2"),
    ({"batch_size": 0}, r"batch_size must be a whole number >= 1"),
    ({"n_samples": 0}, r"n_samples must be a whole number >= 1"),
    ({"epochs": 0}, r"epochs must be a whole number >= 1"),
    ({"max_steps": 0}, r"max_steps must be None \(no limit\) or a whole number >= 1"),
    ({"lr": float("nan")}, r"lr must be None \(.*\) or a number in \(0, inf\)"),
    ({"sampler": "euler_ode"}, r"sampler must be one of \('ddpm', 'ddim', 'dpm_solver'\)"),
    ({"sampler_steps": 0}, r"sampler_steps must be None"),
    ({"sample_batch_size": 0}, r"sample_batch_size must be None \(sized by memory\) or a whole number >= 1"),
    ({"heads": 3}, r"channels \(8\) must be a multiple of heads \(3\)"),
    ({"validation_fraction": 1.0}, r"validation_fraction must be a number in \[0, 1\)"),
    ({"clip": -1.0}, r"clip must be None \(no clipping\) or a number in \[0, inf\)"),
    ({"seed": -1}, r"seed must be a whole number >= 0"),
    ({"mask_strategy": "blocks"}, r"mask_strategy must be one of"),
])
def test_bad_parameters_are_rejected_before_training_with_the_allowed_range(params, message):
    with pytest.raises(ValueError, match=message):
        Imputer(**{**TINY, **params}).fit(gappy())


def test_sampling_parameters_are_checked_again_at_impute_time(fitted):
    imp = Imputer(**TINY)
    imp.__dict__.update(_fitted_state(fitted))  # share the fit, change the sampling settings
    with pytest.raises(ValueError, match=r"stride .* in \[1, 8\], got 20"):
        imp.set_params(stride=20).impute(gappy())
    with pytest.raises(ValueError, match="n_samples must be a whole number >= 1, got 0"):
        fitted.impute(gappy(), n_samples=0)


def test_a_fit_with_nothing_to_train_on_raises():
    sparse = pd.DataFrame({"a": np.where(np.arange(40) % 12 == 0, 1.0, np.nan)})  # one value per 12 rows
    with pytest.raises(ValueError, match="no training window: no window of 8 rows"):
        Imputer(**TINY).fit(sparse)
    with pytest.raises(ValueError, match="validation_fraction=0.5 is held out"):
        Imputer(**{**TINY, "validation_fraction": 0.5}).fit(gappy(rows=8))


# ------------------------------------------------------------------ 3. frames
def test_non_numeric_columns_are_named_in_a_warning(fitted):
    df = gappy().assign(site=pd.Categorical(["beijing"] * 48))  # category, bool, dates: kept, not imputed
    with pytest.warns(UserWarning, match=r"columns \['site'\] are not numeric"):
        Imputer(**TINY).fit(df)
    with pytest.warns(UserWarning, match=r"\['site'\]"):
        out = fitted.impute(df)
    assert (out["site"] == "beijing").all() and not out[["a", "b", "c"]].isna().any().any()
    with pytest.warns(UserWarning, match=r"\['site'\]") as record:
        multidiff.tasks.impute(df, **{**TINY, "n_samples": 2})
    assert sum("site" in str(w.message) for w in record) == 1  # once, not once per fit and impute


def test_object_columns_holding_numbers_are_imputed():
    df = gappy()
    df["b"] = df["b"].astype(object)  # e.g. read from a source that lost the dtype
    imp = Imputer(**TINY).fit(df)
    assert imp.columns_ == ["a", "b", "c"]
    assert not imp.impute(df)[["a", "b", "c"]].isna().any().any()
    with pytest.raises(ValueError, match="'b' holds values that are not numbers"):
        Imputer(**TINY).fit(df.assign(b=df["b"].where(df.index != df.index[5], "n/a")))


def test_duplicated_column_labels_are_rejected():
    df = gappy()
    df.columns = ["a", "a", "c"]
    with pytest.raises(ValueError, match="duplicated"):
        Imputer(**TINY).fit(df)
    with pytest.raises(ValueError, match="duplicated"):
        multidiff.tasks.impute(df, **TINY)


# ------------------------------------------------------------------ 4. the caller's RNGs
def _rng_states():
    return random.getstate(), np.random.get_state(), torch.get_rng_state()


def _assert_same(a, b):
    assert a[0] == b[0]
    assert all(np.array_equal(x, y) for x, y in zip(a[1], b[1]))
    assert torch.equal(a[2], b[2])


def test_fit_and_impute_leave_the_global_random_states_alone():
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    before = _rng_states()
    Imputer(**TINY).fit(gappy())
    _assert_same(_rng_states(), before)
    multidiff.tasks.impute(gappy(), **TINY)
    _assert_same(_rng_states(), before)


# ------------------------------------------------------------------ 5. checkpoints
def _edit_config(path, edit):
    meta = json.loads((path / "config.json").read_text())
    edit(meta["config"])
    (path / "config.json").write_text(json.dumps(meta))


def test_tuple_column_labels_survive_save_and_load(tmp_path):
    df = gappy()
    df.columns = pd.MultiIndex.from_tuples([("pm25", "s1"), ("pm25", "s2"), ("no2", "s1")])
    imp = Imputer(**TINY).fit(df)
    imp.save(tmp_path / "m")
    loaded = Imputer.load(tmp_path / "m")
    assert loaded.columns_ == list(df.columns) and loaded.n_features_in_ == 3
    np.testing.assert_array_equal(draws(loaded, df), draws(imp, df))


def test_checkpoint_problems_get_clear_errors(tmp_path, fitted):
    fitted.save(tmp_path / "m")
    _edit_config(tmp_path / "m", lambda c: c["params"].update(layers=2))
    with pytest.raises(ValueError, match="missing parameters: net.blocks.1"):
        Imputer.load(tmp_path / "m")
    fitted.save(tmp_path / "m")
    _edit_config(tmp_path / "m", lambda c: [c.pop("columns"), c.pop("mean")])
    with pytest.raises(ValueError, match=r"lacks the keys \['columns', 'mean'\]"):
        Imputer.load(tmp_path / "m")
    fitted.save(tmp_path / "m")
    _edit_config(tmp_path / "m", lambda c: c["params"].update(not_a_parameter=1))
    with pytest.raises(ValueError, match="does not know"):
        Imputer.load(tmp_path / "m")
    fitted.save(tmp_path / "m")  # an imputer of an earlier version (its weights carried the alpha-bar table)
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**meta, "kind_version": 4}))
    with pytest.raises(ValueError, match="version 4, written by an earlier multidiff.*fit it again"):
        Imputer.load(tmp_path / "m")


# ------------------------------------------------------------------ 7. batching does not change samples
def test_samples_do_not_depend_on_sample_batch_size(fitted):
    df = gappy()  # 48 rows: 11 windows of 8 with stride 4
    imp = Imputer(**TINY)
    imp.__dict__.update(_fitted_state(fitted))
    one = draws(imp.set_params(sample_batch_size=1), df)  # one window per call
    many = draws(imp.set_params(sample_batch_size=64), df)  # all windows in one call
    # the noise is identical; only float32 rounding of differently shaped matmuls may differ
    np.testing.assert_allclose(one, many, rtol=0, atol=1e-5)
    other_seed = draws(imp.set_params(seed=1), df)
    assert np.abs(other_seed - many).max() > 1e-2
