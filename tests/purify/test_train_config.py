"""Purification training settings (one TrainConfig route, today's numbers), checkpoint kinds and the report table."""
from dataclasses import replace

import pytest
import torch

from multidiff.cli import main
import multidiff.tasks.imputation  # noqa: F401  (registers the kind whose loader the message names)
from multidiff.core.checkpoint import save_checkpoint
from multidiff.tasks import purify
from multidiff.tasks.purify import api as purify_api


@pytest.fixture
def seen(monkeypatch):
    configs = []
    real = purify_api.fit
    monkeypatch.setattr(purify_api, "fit", lambda net, loss, b, cfg, **kw: configs.append(cfg) or real(net, loss, b, cfg, **kw))
    return configs


def test_defaults_are_todays_numbers_and_train_config_is_the_route(seen):
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


def test_loading_another_kind_is_a_clear_error_in_the_api_and_the_cli(tmp_path, capsys):
    save_checkpoint(tmp_path / "imp", {"model": {"w": torch.ones(1)}}, {}, kind="imputer")
    with pytest.raises(ValueError, match=r"holds a 'imputer' checkpoint, but this loader reads 'purifier'.*Imputer.load"):
        purify.PurificationModel.load(tmp_path / "imp")
    assert main(["purify", "evaluate", "--checkpoint", str(tmp_path / "imp"), "--device", "cpu"]) == 2
    assert "multidiff impute --model" in capsys.readouterr().err


def test_report_table_by_hand():
    rep = purify.RobustnessReport(labels=[0, 1, 1, 0], predictions={"clean": {"undefended": [0, 1, 1, 1],
                                                                              "defended": [0, 1, 0, 1]},
                                                                    "pgd": {"undefended": [1, 0, 0, 1]}})
    lines = rep.to_markdown().splitlines()
    assert lines[2:6] == ["| attack | undefended | defended |", "|---|---|---|",
                          "| clean | 75.0 % [30.1, 95.4] | 50.0 % [15.0, 85.0] |", "| pgd | 0.0 % [0.0, 49.0] | - |"]


def test_the_initial_weights_follow_the_config_seed_not_the_global_generator():
    """Two runs with the same TrainConfig seed train the same networks, whatever torch's global
    generator holds (it is seeded at random in each process)."""
    import torch

    from multidiff.core.training import TrainConfig
    from multidiff.tasks import purify

    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.arange(16) % 2
    cfg = TrainConfig(epochs=1, max_steps=1, progress=False, device="cpu", seed=3)

    def nets(global_seed):
        torch.manual_seed(global_seed)
        clf = purify.train_classifier(x, y, 2, cfg, batch_size=8)
        den = purify.train_denoiser(x, cfg, batch_size=8, base=8)
        return torch.cat([p.detach().flatten() for net in (clf, den) for p in net.parameters()])

    assert torch.equal(nets(1), nets(2))
