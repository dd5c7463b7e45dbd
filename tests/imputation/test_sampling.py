"""The windowed sampler (multidiff.tasks.imputation.sampling) and the public Imputer methods that
drive it (window_sampler, normalise, observed_range, numeric_frame, check_ready): composed by hand
they give exactly the Imputer's samples."""
import numpy as np
import pytest

from multidiff.tasks.imputation import Imputer
from multidiff.tasks.imputation.api import NotFittedError
from multidiff.tasks.imputation.sampling import WindowSampler


def test_the_public_pieces_give_the_imputers_samples(aqi_week, tiny_imputer):
    imp = tiny_imputer
    values = aqi_week.to_numpy(dtype=np.float64)
    z = imp.normalise(values).astype(np.float32)
    np.testing.assert_allclose(imp.normalise(values) * imp.std_ + imp.mean_, values)
    low, high = imp.observed_range(z)
    assert (low <= imp.low_).all() and (high >= imp.high_).all()
    sampler = imp.window_sampler()
    assert isinstance(sampler, WindowSampler) and sampler.window == 12 and sampler.sampler == imp.sampler
    by_hand = sampler.sample(imp.model_, z, 3, 7, low, high)
    expected = imp.sample(values, 3, seed=7)
    missing = np.isnan(values)
    np.testing.assert_array_equal(np.where(missing[None], by_hand * imp.std_ + imp.mean_, values[None]), expected)


def test_windows_are_planned_and_sampled_only_where_asked(aqi_week, tiny_imputer):
    imp = tiny_imputer
    z = imp.normalise(aqi_week.to_numpy(dtype=np.float64)).astype(np.float32)
    sampler = imp.window_sampler()
    starts, length, per_call = sampler.plan(len(z), z.shape[1], 2)
    assert length == 12 and starts[0] == 0 and starts[-1] == len(z) - 12 and per_call >= 1
    assert sampler.segment_overlap(len(z), z.shape[1], 2) == length - 1 + (per_call - 1) * length
    whole = sampler.sample(imp.model_, z, 2, imp.seed, imp.low_, imp.high_)
    part = sampler.sample(imp.model_, z, 2, imp.seed, imp.low_, imp.high_, rows=np.array([30]))
    window = slice(24, 36)  # the window of length 12 holding row 30 (one window per network call here, so
    np.testing.assert_allclose(part[:, window], whole[:, window], atol=1e-5)  # float32 may round otherwise)
    assert np.isnan(part[:, :24]).all() and np.isnan(part[:, 36:]).all()


def test_numeric_frame_reads_the_fitted_columns_in_fitted_order(aqi_week, tiny_imputer):
    shuffled = aqi_week[list(reversed(aqi_week.columns))].assign(note="x")
    with pytest.warns(UserWarning, match="not numeric"):
        frame = tiny_imputer.numeric_frame(shuffled)
    assert frame.columns == list(aqi_week.columns)
    np.testing.assert_array_equal(frame.values, aqi_week.to_numpy(dtype=np.float64))
    with pytest.raises(ValueError, match="differ from those seen in fit"):
        tiny_imputer.numeric_frame(aqi_week.iloc[:, :3])


def test_check_ready_refuses_an_unfitted_imputer_and_a_bad_parameter(aqi_week, tiny_imputer, tiny):
    with pytest.raises(NotFittedError):
        Imputer(**tiny).check_ready()
    with pytest.raises(NotFittedError):
        Imputer(**tiny).numeric_frame(aqi_week)
    assert tiny_imputer.check_ready() is tiny_imputer
    broken = Imputer(**tiny)
    broken.__dict__.update({k: v for k, v in tiny_imputer.__dict__.items() if k.endswith("_")})
    broken.set_params(sampler_steps=0)
    with pytest.raises(ValueError, match="sampler_steps"):
        broken.check_ready()
