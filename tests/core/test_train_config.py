from dataclasses import replace

import pytest

from multidiff.core.training import TrainConfig, resolve_train_config

DEFAULT = TrainConfig(epochs=30, lr=2e-3, lr_schedule="cosine", ema_decay=0.99)


def test_keywords_at_their_default_defer_to_train_config_others_override():
    assert resolve_train_config(DEFAULT) == DEFAULT
    given = replace(DEFAULT, weight_decay=0.0, lr=5e-4)
    cfg = resolve_train_config(DEFAULT, given, {"lr": 2e-3, "epochs": 7}, {"seed": 3, "device": "cpu"})
    assert (cfg.lr, cfg.epochs, cfg.weight_decay, cfg.seed, cfg.device) == (5e-4, 7, 0.0, 3, "cpu")
    assert cfg.lr_schedule == "cosine" and given.epochs == 30  # the caller's config is not modified
    with pytest.raises(TypeError, match="train_config must be a multidiff.core.training.TrainConfig"):
        resolve_train_config(DEFAULT, {"lr": 1.0})
    with pytest.raises(ValueError, match="lr must be > 0"):
        resolve_train_config(DEFAULT, None, {"lr": 0.0})


def test_ema_min_windows_caps_the_decay_of_short_runs():
    cfg = TrainConfig(ema_decay=0.999, ema_min_windows=10)
    assert cfg.effective_ema_decay() == 0.999  # no step limit: no cap
    assert replace(cfg, max_steps=300).effective_ema_decay() == pytest.approx(1 - 10 / 300)
    assert replace(cfg, max_steps=20000).effective_ema_decay() == 0.999
    assert replace(cfg, max_steps=5).effective_ema_decay() == 0.0
    assert replace(cfg, ema_min_windows=0, max_steps=300).effective_ema_decay() == 0.999
    with pytest.raises(ValueError, match="ema_min_windows must be >= 0"):
        TrainConfig(ema_min_windows=-1).validate()
