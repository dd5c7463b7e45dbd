"""The Imputer's training settings: one TrainConfig route, today's numbers as the default."""
import inspect
from dataclasses import replace

import pytest

import multidiff.tasks.points  # noqa: F401  (registers the kind whose loader the message names)
from multidiff.core.checkpoint import CheckpointKindError, save_checkpoint
from multidiff.core.training import TrainConfig
from multidiff.tasks.imputation import Imputer
from multidiff.tasks.imputation import api as imputer_module
from multidiff.tasks.imputation.api import DEFAULT_TRAIN_CONFIG

from .test_imputer_reliability import TINY, gappy


def test_default_is_csdis_settings_and_the_keywords_default_to_it():
    cfg = Imputer(pretrained=None)._train_config()
    assert (cfg.epochs, cfg.lr, cfg.weight_decay, cfg.lr_schedule, cfg.grad_clip, cfg.ema_decay, cfg.max_time,
            cfg.max_steps, cfg.patience) == (1000, 1e-3, 1e-6, "multistep", 1.0, 0.0, 120.0, None, 0)
    # a pretrained network is fine-tuned at a tenth of its pretraining rate, for the same 120 s
    cfg = Imputer()._train_config()
    assert (cfg.lr, cfg.weight_decay, cfg.lr_schedule, cfg.ema_decay, cfg.max_time) == (1e-4, 1e-4, "constant", 0.0, 120.0)
    assert Imputer(lr=3e-4)._train_config().lr == 3e-4
    defaults = inspect.signature(Imputer).parameters
    for name in imputer_module._TRAIN_KEYWORDS:
        assert defaults[name].default == (None if name == "lr" else getattr(DEFAULT_TRAIN_CONFIG, name)), name
    assert Imputer(lr=1e-3)._train_config().lr == 1e-3  # an explicit rate holds, even CSDI's for a fine-tune
    assert Imputer(max_time=None)._train_config().max_time is None


def test_train_config_reaches_fit_and_keywords_override_it(monkeypatch, tmp_path):
    seen = []

    def spy(model, loss_fn, batches, config, **kw):
        seen.append(config)
        return real(model, loss_fn, batches, config, **kw)

    real = imputer_module.fit
    monkeypatch.setattr(imputer_module, "fit", spy)
    given = replace(DEFAULT_TRAIN_CONFIG, weight_decay=0.0, lr_schedule="cosine", grad_clip=0.0, lr=5e-4)
    imp = Imputer(**{**TINY, "max_steps": 2}, train_config=given).fit(gappy())
    cfg = seen[-1]
    assert (cfg.weight_decay, cfg.lr_schedule, cfg.grad_clip, cfg.lr) == (0.0, "cosine", 0.0, 5e-4)
    assert (cfg.max_steps, cfg.epochs, cfg.device, cfg.progress) == (2, 1, "cpu", False)  # keywords win
    imp.save(tmp_path / "m")
    assert Imputer.load(tmp_path / "m").get_params() == imp.get_params()
    with pytest.raises(TypeError, match="train_config must be a multidiff.core.training.TrainConfig"):
        Imputer(**TINY, train_config={"lr": 1.0}).fit(gappy())


def test_loading_another_kind_names_the_kind_and_its_loader(tmp_path):
    import torch
    save_checkpoint(tmp_path / "g", {"net": {"w": torch.ones(1)}}, {}, kind="points.generator")
    with pytest.raises(CheckpointKindError, match=r"holds a 'points.generator' checkpoint.*reads 'imputer'.*"
                                                  r"Generator.load"):
        Imputer.load(tmp_path / "g")
