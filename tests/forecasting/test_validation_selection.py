"""The fair protocol of issue 32: validation windows held out before the test range, and each
estimator keeping the weights of its epoch with the lowest validation loss (a stubbed sequence of
losses says which epoch that is)."""
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from multidiff.core import training
from multidiff.datasets.gluonts_adapters import validation_split
from multidiff.tasks.forecasting import CSDIForecastEstimator, TimeGradEstimator, TimeGradLightningModule
from multidiff.tasks.forecasting.timegrad import TRAINING_INPUT_NAMES

H, D = 4, 2
LOSSES = [5.0, 3.0, 4.0, 2.5, 6.0]  # the validation loss of epochs 0..4: epoch 3 is the best
BEST = 3


def _entry(n: int = 120) -> dict:
    t = np.arange(n, dtype=np.float64)
    target = np.stack([np.sin(2 * np.pi * t / 12) + 0.01 * t, np.cos(2 * np.pi * t / 7)]).astype(np.float32)
    return {"start": pd.Period("2020-01-01", freq="D"), "target": target, "item_id": "a"}


def _state(module: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_validation_split_holds_out_the_windows_before_the_end():
    entry = _entry(40)
    train, val = validation_split([entry], prediction_length=H, n_windows=3)
    assert [e["target"].shape for e in train] == [(D, 40 - 3 * H)]
    assert [e["target"].shape[1] for e in val] == [40 - 2 * H, 40 - H, 40]
    np.testing.assert_array_equal(val[0]["target"], entry["target"][:, :40 - 2 * H])
    assert [e["item_id"] for e in val] == ["a:val0", "a:val1", "a:val2"] and train[0]["start"] == entry["start"]
    with pytest.raises(ValueError, match="too few for 9 validation windows"):
        validation_split([entry], prediction_length=H, n_windows=9)


def test_csdi_keeps_the_weights_of_its_best_validation_epoch(monkeypatch):
    states = []

    def scripted(model, loss_fn, batches, engine, seed):  # core.training's validation scorer, stubbed
        states.append(_state(model))
        return LOSSES[len(states) - 1]

    monkeypatch.setattr(training, "_validate", scripted)
    train, val = validation_split([_entry()], H, 2)
    est = CSDIForecastEstimator(freq="D", prediction_length=H, target_dim=D, context_length=8, channels=8, layers=1,
                                heads=2, num_train_steps=10, batch_size=4, num_batches_per_epoch=1, epochs=len(LOSSES),
                                max_steps=None, max_time=None, seed=0)
    predictor = est.train(train, validation_data=val)
    assert len(states) == len(LOSSES) and est.train_result_.best_val == LOSSES[BEST]
    assert not _same(states[BEST], states[-1])  # the epochs did change the weights
    assert _same(_state(predictor.model), states[BEST])


def _timegrad(**kw) -> TimeGradEstimator:
    return TimeGradEstimator(freq="D", prediction_length=H, target_dim=D, context_length=H, hidden_size=8,
                             num_layers=1, residual_layers=2, residual_channels=4, num_train_steps=10, batch_size=8,
                             num_batches_per_epoch=1, epochs=len(LOSSES), seed=0, **kw)


def test_timegrad_keeps_the_weights_of_its_best_validation_epoch(monkeypatch):
    states = []

    def scripted(self, batch, batch_idx):  # the Lightning module's validation loss, stubbed
        if self.trainer.sanity_checking:
            return None
        states.append(_state(self))
        self.log("val_loss", torch.tensor(LOSSES[self.current_epoch]), on_epoch=True, on_step=False, batch_size=1)

    monkeypatch.setattr(TimeGradLightningModule, "validation_step", scripted)
    train, val = validation_split([_entry()], H, 2)
    predictor = _timegrad().train(train, validation_data=val)
    assert len(states) == len(LOSSES)
    assert not _same(states[BEST], states[-1])
    assert _same(_state(predictor.prediction_net), states[BEST])


def test_timegrad_validation_loss_draws_the_same_noise_every_epoch():
    est = _timegrad()
    module = est.create_lightning_module()
    data = est.create_transformation().apply(validation_split([_entry()], H, 2)[1], is_train=True)
    batch = next(iter(est.create_validation_data_loader(data, module)))
    before = torch.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log outside a Trainer
        losses = [float(module.validation_step(batch, 0)) for _ in range(3)]
    assert losses[0] == losses[1] == losses[2]
    assert torch.equal(torch.get_rng_state(), before)  # training's draws are not shifted by validation
    assert float(module.model.loss(**{k: batch[k] for k in TRAINING_INPUT_NAMES})) != losses[0]
