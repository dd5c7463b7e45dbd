"""TTS training settings: one TrainConfig route, today's numbers as the default, checkpoint kinds."""
import inspect

import numpy as np
import pytest

from multidiff.core.checkpoint import CheckpointKindError
from multidiff.tasks import tts
from multidiff.tasks.tts import api as tts_api


class Stop(Exception):
    pass


@pytest.fixture
def seen(monkeypatch):
    """The TrainConfig train() hands to the loop (which is not run)."""
    configs = []

    def spy(net, loss, batches, config, **kw):
        configs.append(config)
        raise Stop
    monkeypatch.setattr(tts_api, "fit", spy)
    return configs


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    import soundfile as sf

    from multidiff.datasets.ljspeech import Utterance

    d = tmp_path_factory.mktemp("clips")
    for i in range(2):
        sf.write(d / f"u{i}.wav", (0.3 * np.sin(np.arange(8000) / (7 + i))).astype(np.float32), 22050)
    return [Utterance(f"u{i}", "a cat", d / f"u{i}.wav") for i in range(2)]


def _train(clips, **kw):
    with pytest.raises(Stop):
        tts.train(clips, holdout=0, size="tiny", frontend="char", device="cpu", progress=False, **kw)


@pytest.mark.parametrize("max_steps, decay", [(None, 0.999), (300, 1 - 10 / 300), (20000, 0.999), (5, 0.0)])
def test_default_is_todays_numbers(clips, seen, max_steps, decay):
    _train(clips, max_steps=max_steps)
    cfg = seen[-1]
    assert (cfg.epochs, cfg.lr, cfg.lr_schedule, cfg.weight_decay, cfg.grad_clip, cfg.max_steps) == \
        (1000, 1e-4, "constant", 1e-6, 1.0, max_steps)
    assert cfg.effective_ema_decay() == pytest.approx(decay)  # the former _ema_decay(max_steps)
    defaults = inspect.signature(tts.train).parameters
    for name in ("epochs", "lr", "max_steps"):
        assert defaults[name].default == getattr(tts.DEFAULT_TRAIN_CONFIG, name), name


def test_train_config_is_the_base_and_other_keywords_are_refused(clips, seen):
    from dataclasses import replace

    _train(clips, max_steps=300, train_config=replace(tts.DEFAULT_TRAIN_CONFIG, weight_decay=0.0, lr=3e-3))
    assert (seen[-1].weight_decay, seen[-1].lr, seen[-1].max_steps) == (0.0, 3e-3, 300)
    with pytest.raises(TypeError, match="unexpected keyword argument 'ema_decay'"):
        _train(clips, ema_decay=0.9999)  # TrainConfig fields go through train_config


def test_loading_a_training_state_or_another_kind_names_the_loader(trained):
    _, out = trained
    from multidiff.core.checkpoint import save_checkpoint
    import multidiff.tasks.points  # noqa: F401  (registers the kind whose loader the message names)
    import torch
    save_checkpoint(out / "other", {"net": {"w": torch.ones(1)}}, {}, kind="points.generator")
    with pytest.raises(CheckpointKindError, match=r"'points.generator' checkpoint.*reads 'tts'.*Generator.load"):
        tts.load(out / "other")
