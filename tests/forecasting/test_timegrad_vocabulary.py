"""TimeGrad speaks the package's vocabulary (issue 10): ``num_train_steps`` (was ``diff_steps``) and
``sampler_steps`` (was ``sampling_steps``). The old keywords work for one release with a
``DeprecationWarning``, and predictors saved with the old names still load.

The predictor "saved before the rename" is written by the test (no weights in git): a tiny predictor
serialized today, its files then given the layout ``TimeGradPredictor.serialize`` wrote at commit
1160bc5, checked field by field against a predictor that commit wrote: ``predictor.json`` with
``diff_steps`` and ``sampling_steps`` in ``model_kwargs``, ``weights/config.json`` with
``sampling_steps`` and kind version 1; everything else (the weights, their hash) is as today."""
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from multidiff.tasks.forecasting import TimeGradEstimator, TimeGradPredictor
from multidiff.tasks.forecasting.timegrad_model import TimeGradModel

OLD_NAMES = ("diff_steps", "sampling_steps")
SMALL = dict(freq="D", prediction_length=2, target_dim=2, hidden_size=4, num_layers=1, residual_layers=1,
             residual_channels=2, device="cpu")


def _vocabulary_warnings(record) -> list[str]:
    return [str(w.message) for w in record if any(name in str(w.message) for name in OLD_NAMES)]


def test_old_estimator_keywords_are_translated_before_gluonts_records_them():
    from gluonts.core.serde import dump_json

    with pytest.warns(DeprecationWarning, match="TimeGradEstimator\\(\\): the keyword 'diff_steps' is deprecated .* "
                                                "use 'num_train_steps'") as record:
        est = TimeGradEstimator(**SMALL, diff_steps=7, sampling_steps=3)
    assert len(_vocabulary_warnings(record)) == 2 and record[0].filename == __file__
    assert (est.model_kwargs["num_train_steps"], est.model_kwargs["sampler_steps"]) == (7, 3)
    # @validated() saw the new names only: they are what the estimator serializes
    assert {"num_train_steps", "sampler_steps"} <= set(est.__init_args__) and not set(OLD_NAMES) & set(est.__init_args__)
    assert not any(name in dump_json(est) for name in OLD_NAMES)
    with pytest.raises(ValueError, match="num_train_steps must be a whole number"):  # checked under the new name
        TimeGradEstimator(**SMALL, diff_steps=2.5)


def test_new_keywords_are_silent_and_both_names_is_an_error():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        est = TimeGradEstimator(**SMALL, num_train_steps=7, sampler_steps=3)
        model = TimeGradModel(2, 3, 2, 4, num_train_steps=5, sampler="ddim", sampler_steps=2)
        model.set_sampler("dpm_solver", sampler_steps=4)
    assert est.model_kwargs["num_train_steps"] == 7 and (model.sampler_steps, len(model.alpha_bars)) == (4, 5)
    with pytest.raises(TypeError, match="got both 'sampling_steps' \\(deprecated\\) and 'sampler_steps'"):
        TimeGradEstimator(**SMALL, sampling_steps=3, sampler_steps=3)
    with pytest.raises(TypeError, match="got both 'diff_steps'"):
        TimeGradModel(2, 3, 2, 4, diff_steps=5, num_train_steps=5)
    with pytest.raises(TypeError, match="got both"):
        model.set_sampler("ddim", sampling_steps=2, sampler_steps=2)


def test_old_model_keywords_and_attribute_warn():
    with pytest.warns(DeprecationWarning, match="'diff_steps' is deprecated"):
        model = TimeGradModel(2, 3, 2, 4, diff_steps=5, sampler="ddim")
    assert len(model.alpha_bars) == 5 == model.num_train_steps
    with pytest.warns(DeprecationWarning, match="'sampling_steps' is deprecated"):
        model.set_sampler("ddim", sampling_steps=3)
    with pytest.warns(DeprecationWarning, match="TimeGradModel.sampling_steps is deprecated .* TimeGradModel.sampler_steps"):
        assert model.sampling_steps == 3 == model.sampler_steps


def _dataset():
    from gluonts.dataset.common import ListDataset

    target = np.stack([np.sin(np.arange(12) / 3), np.cos(np.arange(12) / 4) + 2]).astype(np.float32)
    return ListDataset([{"start": pd.Period("2024-01-01", freq="D"), "target": target}], freq="D", one_dim_target=False)


def _samples(predictor, seed=0):
    torch.manual_seed(seed)  # GluonTS predictors draw from torch's global generator
    return next(iter(predictor.predict(_dataset()))).samples


def _saved_before_the_rename(folder: Path) -> Path:
    """A tiny predictor (num_train_steps 8, ddim with 3 steps) as the code before the rename saved it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        est = TimeGradEstimator(**SMALL, num_train_steps=8, sampler="ddim", sampler_steps=3, max_epochs=1,
                                num_batches_per_epoch=1, batch_size=2, seed=0)
        est.train(_dataset()).serialize(folder)
    predictor = folder / "predictor.json"
    predictor.write_text(predictor.read_text().replace('"num_train_steps"', '"diff_steps"')
                         .replace('"sampler_steps"', '"sampling_steps"'))
    config = folder / "weights" / "config.json"
    cfg = json.loads(config.read_text())
    cfg["kind_version"], cfg["config"]["sampling_steps"] = 1, cfg["config"].pop("sampler_steps")
    config.write_text(json.dumps(cfg, indent=1))
    return folder


def test_a_predictor_saved_before_the_rename_loads_quietly_and_saves_the_new_names(tmp_path):
    OLD = _saved_before_the_rename(tmp_path / "old")
    assert '"diff_steps": 8' in (OLD / "predictor.json").read_text()  # the layout the old code wrote
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        old = TimeGradPredictor.deserialize(OLD, device="cpu")
    assert _vocabulary_warnings(record) == []  # the file chose the old names, not the caller
    model = old.model
    assert (model.num_train_steps, len(model.alpha_bars), model.sampler, model.sampler_steps) == (8, 8, "ddim", 3)
    old.serialize(tmp_path / "again")
    texts = {p.relative_to(tmp_path).as_posix(): p.read_text() for p in (tmp_path / "again").rglob("*.json")}
    assert not [(name, f) for f, text in texts.items() for name in OLD_NAMES if name in text]
    model_kwargs = json.loads(texts["again/predictor.json"])["kwargs"]["prediction_net"]["kwargs"]["model_kwargs"]
    assert (model_kwargs["num_train_steps"], model_kwargs["sampler_steps"]) == (8, 3)
    again = TimeGradPredictor.deserialize(tmp_path / "again", device="cpu")
    ours = _samples(old)
    np.testing.assert_array_equal(_samples(again), ours)
    assert np.isfinite(ours).all() and not np.array_equal(_samples(again, seed=1), ours)
