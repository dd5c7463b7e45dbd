"""TimeGrad speaks the package's vocabulary (issue 10): ``num_train_steps`` and ``sampler_steps``,
in its keywords, in what GluonTS' ``@validated()`` records, and in the files a predictor writes."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from multidiff.tasks.forecasting import TimeGradEstimator, TimeGradPredictor
from multidiff.tasks.forecasting.timegrad_model import TimeGradModel

OLD_NAMES = ("diff_steps", "sampling_steps")
SMALL = dict(freq="D", prediction_length=2, target_dim=2, hidden_size=4, num_layers=1, residual_layers=1,
             residual_channels=2, device="cpu")


def test_the_estimator_records_and_serializes_the_vocabulary():
    from gluonts.core.serde import dump_json

    est = TimeGradEstimator(**SMALL, num_train_steps=7, sampler_steps=3)
    assert (est.model_kwargs["num_train_steps"], est.model_kwargs["sampler_steps"]) == (7, 3)
    assert {"num_train_steps", "sampler_steps"} <= set(est.__init_args__)
    assert not any(name in dump_json(est) for name in OLD_NAMES)
    with pytest.raises(ValueError, match="num_train_steps must be a whole number"):
        TimeGradEstimator(**SMALL, num_train_steps=2.5)
    for old in OLD_NAMES:
        with pytest.raises(TypeError, match=old):
            TimeGradEstimator(**SMALL, **{old: 3})


def test_the_model_takes_the_vocabulary():
    model = TimeGradModel(2, 3, 2, 4, num_train_steps=5, sampler="ddim", sampler_steps=2)
    model.set_sampler("dpm_solver", sampler_steps=4)
    assert (model.num_train_steps, model.sampler, model.sampler_steps) == (5, "dpm_solver", 4)
    assert not any(hasattr(model, name) for name in OLD_NAMES)


def _dataset():
    from gluonts.dataset.common import ListDataset

    target = np.stack([np.sin(np.arange(12) / 3), np.cos(np.arange(12) / 4) + 2]).astype(np.float32)
    return ListDataset([{"start": pd.Period("2024-01-01", freq="D"), "target": target}], freq="D", one_dim_target=False)


def test_a_saved_predictor_names_the_vocabulary(tmp_path):
    torch.manual_seed(0)
    est = TimeGradEstimator(**SMALL, num_train_steps=8, sampler="ddim", sampler_steps=3, epochs=1,
                            num_batches_per_epoch=1, batch_size=2, seed=0)
    est.train(_dataset()).serialize(tmp_path / "p")
    texts = {p.relative_to(tmp_path).as_posix(): p.read_text() for p in (tmp_path / "p").rglob("*.json")}
    assert not [(name, f) for f, text in texts.items() for name in OLD_NAMES if name in text]
    model_kwargs = json.loads(texts["p/predictor.json"])["kwargs"]["prediction_net"]["kwargs"]["model_kwargs"]
    assert (model_kwargs["num_train_steps"], model_kwargs["sampler_steps"]) == (8, 3)
    model = TimeGradPredictor.deserialize(tmp_path / "p", device="cpu").model
    assert (model.num_train_steps, model.sampler, model.sampler_steps) == (8, "ddim", 3)
