"""Point clouds: one TrainConfig route, today's numbers as the default, checkpoint kinds."""
import inspect
from dataclasses import replace

import pytest
import torch

from multidiff.core.checkpoint import CheckpointKindError
from multidiff.tasks import points
from multidiff.tasks.points import DEFAULT_TRAIN_CONFIG, model as points_model

SMALL = dict(num_points=16, channels=8, layers=1, k=4, num_train_steps=20, batch_size=4, progress=False, device="cpu")


def test_default_is_todays_and_the_keywords_default_to_it():
    cfg = points.Generator(**SMALL)._train_config()
    assert (cfg.epochs, cfg.lr, cfg.weight_decay, cfg.lr_schedule, cfg.grad_clip, cfg.ema_decay, cfg.max_steps) == \
        (100, 1e-3, 1e-6, "cosine", 1.0, 0.999, None)
    defaults = inspect.signature(points.Generator).parameters
    for name in points_model._TRAIN_KEYWORDS:
        assert defaults[name].default == getattr(DEFAULT_TRAIN_CONFIG, name), name


def test_train_config_reaches_the_loop(monkeypatch):
    seen = []
    real = points_model.train_loop
    monkeypatch.setattr(points_model, "train_loop", lambda net, loss, b, cfg, **kw: seen.append(cfg) or real(net, loss, b, cfg, **kw))
    given = replace(DEFAULT_TRAIN_CONFIG, lr_schedule="constant", weight_decay=0.0, ema_decay=0.5)
    points.Generator(**SMALL, max_steps=1, train_config=given).fit(torch.randn(4, 16, 3))
    assert (seen[0].lr_schedule, seen[0].weight_decay, seen[0].ema_decay, seen[0].max_steps) == ("constant", 0.0, 0.5, 1)


def test_load_of_the_other_kind_names_the_loader(tmp_path):
    clouds = torch.randn(4, 16, 3, generator=torch.Generator().manual_seed(0))  # unseeded, a scan could see < 16 points
    points.Completer(**SMALL, max_steps=1, views=1).fit(clouds).save(tmp_path / "c")
    with pytest.raises(CheckpointKindError, match=r"'points.completer' checkpoint.*Completer.load"):
        points.Generator.load(tmp_path / "c")
    assert isinstance(points.Completer.load(tmp_path / "c"), points.Completer)
