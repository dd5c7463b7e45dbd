from dataclasses import replace

import pytest
import torch

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


def test_device_and_node_options_are_checked_and_default_to_one_device():
    cfg = TrainConfig()
    assert (cfg.accelerator, cfg.devices, cfg.num_nodes, cfg.strategy) == ("auto", 1, 1, "auto")
    assert not cfg.distributed()
    for change in ({"devices": 2}, {"num_nodes": 2}, {"strategy": "ddp"}, {"accelerator": "cpu"}):
        assert replace(cfg, **change).distributed(), change
    for good in ({"devices": -1}, {"devices": "auto"}, {"accelerator": "gpu"},
                 {"strategy": "ddp_find_unused_parameters_true"}):
        replace(cfg, **good).validate()
    for bad, match in [({"devices": 0}, "devices must be a whole number >= 1, or -1 or 'auto'"),
                       ({"devices": True}, "devices must be"), ({"devices": "2"}, "devices must be"),
                       ({"num_nodes": 0}, "num_nodes must be a whole number >= 1"),
                       ({"accelerator": "tpu"}, "accelerator must be one of auto, cpu, cuda, gpu, mps"),
                       ({"strategy": "ddp_spawn"}, "strategy must be one of auto, ddp, .*re-run the calling script"),
                       ({"strategy": "fsdp"}, "strategy must be one of")]:
        with pytest.raises(ValueError, match=match):
            replace(cfg, **bad).validate()


def test_fabric_settings_follow_device_and_precision():
    from multidiff.core.training import _fabric_settings

    cpu = TrainConfig(device="cpu", devices=2, strategy="ddp")
    assert _fabric_settings(cpu) == {"accelerator": "cpu", "devices": 2, "num_nodes": 1, "strategy": "ddp",
                                     "precision": "32-true"}
    assert _fabric_settings(replace(cpu, precision="bf16"))["precision"] == "bf16-mixed"
    assert _fabric_settings(replace(cpu, device="auto", accelerator="cpu", num_nodes=3))["num_nodes"] == 3
    with pytest.raises(ValueError, match="device='cpu' and accelerator='mps' disagree"):
        _fabric_settings(replace(cpu, accelerator="mps"))
    if torch.cuda.is_available():  # a device with an index is that one device
        assert _fabric_settings(TrainConfig(device="cuda:0", strategy="ddp"))["devices"] == [0]
        assert _fabric_settings(TrainConfig(device="auto", accelerator="gpu"))["precision"] == "bf16-mixed"
        with pytest.raises(ValueError, match="is one device, but devices=2"):
            _fabric_settings(TrainConfig(device="cuda:0", devices=2))
