"""Purification training settings (one TrainConfig route, today's numbers), checkpoint kinds and the report table."""
from dataclasses import replace

import pytest
import torch

from multidiff.cli import main
from multidiff.core.checkpoint import save_checkpoint
from multidiff.tasks import purify
from multidiff.tasks.purify import api as purify_api


@pytest.fixture
def seen(monkeypatch):
    configs = []
    real = purify_api.fit
    monkeypatch.setattr(purify_api, "fit", lambda net, loss, b, cfg, **kw: configs.append(cfg) or real(net, loss, b, cfg, **kw))
    return configs


def test_defaults_are_todays_numbers_and_train_config_is_the_route(seen, recwarn):
    x, y = torch.rand(8, 1, 4, 4), torch.arange(8) % 2
    quick = dict(max_steps=1, device="cpu")
    purify.train_denoiser(x, replace(purify.DEFAULT_DENOISER_TRAIN_CONFIG, **quick), batch_size=4, base=4, mults=(1,),
                          time_dim=8)
    purify.train_classifier(x, y, 2, train_config=replace(purify.DEFAULT_CLASSIFIER_TRAIN_CONFIG, **quick),
                            batch_size=4, width=4)
    den, clf = seen
    assert (den.epochs, den.lr, den.lr_schedule, den.ema_decay, den.weight_decay, den.grad_clip, den.progress) == \
        (50, 2e-3, "cosine", 0.999, 1e-6, 1.0, False)
    assert (clf.epochs, clf.lr, clf.lr_schedule, clf.ema_decay) == (30, 2e-3, "cosine", 0.99)
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]
    with pytest.warns(DeprecationWarning, match=r"train_classifier\(config=...\) is deprecated"):
        purify.train_classifier(x, y, 2, config=replace(purify.DEFAULT_CLASSIFIER_TRAIN_CONFIG, lr=1e-3, **quick),
                                batch_size=4, width=4)
    assert seen[-1].lr == 1e-3
    with pytest.raises(TypeError, match="got both train_config and config"):
        purify.train_denoiser(x, purify.DEFAULT_DENOISER_TRAIN_CONFIG, config=purify.DEFAULT_DENOISER_TRAIN_CONFIG)


def test_loading_another_kind_is_a_clear_error_in_the_api_and_the_cli(tmp_path, capsys):
    save_checkpoint(tmp_path / "imp", {"model": {"w": torch.ones(1)}}, {}, kind="imputer")
    with pytest.raises(ValueError, match=r"holds a 'imputer' checkpoint, but this loader reads 'purifier'.*Imputer.load"):
        purify.load_models(tmp_path / "imp")
    assert main(["purify", "evaluate", "--checkpoint", str(tmp_path / "imp"), "--device", "cpu"]) == 2
    assert "multidiff impute --model" in capsys.readouterr().err


def test_report_table_by_hand():
    rep = purify.RobustnessReport(labels=[0, 1, 1, 0], predictions={"clean": {"undefended": [0, 1, 1, 1],
                                                                              "defended": [0, 1, 0, 1]},
                                                                    "pgd": {"undefended": [1, 0, 0, 1]}})
    lines = rep.to_markdown().splitlines()
    assert lines[2:6] == ["| attack | undefended | defended |", "|---|---|---|",
                          "| clean | 75.0 % [30.1, 95.4] | 50.0 % [15.0, 85.0] |", "| pgd | 0.0 % [0.0, 49.0] | - |"]
