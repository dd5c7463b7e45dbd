import json

import pytest
import torch
from torch import nn

from multidiff.core import schedules as S
from multidiff.core.checkpoint import load_checkpoint, save_checkpoint
from multidiff.core.denoiser import add_noise
from multidiff.core.training import TrainConfig, fit

AB = S.alpha_bars(S.linear_betas(100, 1e-4, 0.05)).float()


class TinyDenoiser(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 32), nn.SiLU(), nn.Linear(32, 2))

    def forward(self, x, t):
        return self.net(torch.cat([x, t.float().unsqueeze(-1) / 100], -1))


def loss_fn(model, batch):
    x0 = batch[0]
    t = torch.randint(0, 100, (len(x0),))
    eps = torch.randn_like(x0)
    return ((model(add_noise(x0, eps, AB[t]), t) - eps) ** 2).mean()


def batches(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(64, 2, generator=g) * 0.3 + 1.0,) for _ in range(n)]


def test_fit_reduces_loss_and_is_seeded(tmp_path):
    cfg = TrainConfig(epochs=15, lr=3e-3, ema_decay=0.9, progress=False, device="cpu", seed=3)
    torch.manual_seed(0)
    m1 = TinyDenoiser()
    m2 = TinyDenoiser()
    m2.load_state_dict(m1.state_dict())
    r1 = fit(m1, loss_fn, batches(), cfg, val_batches=batches(2, 1))
    r2 = fit(m2, loss_fn, batches(), cfg, val_batches=batches(2, 1))
    assert r1.history[-1]["train_loss"] < 0.7 * r1.history[0]["train_loss"]
    assert r1.steps == 15 * 8 and r1.best_val == min(h["val_loss"] for h in r1.history)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)


def test_checkpoint_resume_continues_where_it_stopped(tmp_path):
    cfg = TrainConfig(epochs=6, lr=3e-3, progress=False, device="cpu", seed=1, lr_schedule="cosine")
    full = TinyDenoiser()
    torch.manual_seed(0)
    ref = fit(full, loss_fn, batches(), cfg, checkpoint_dir=tmp_path / "a")
    part = TinyDenoiser()
    fit(part, loss_fn, batches(), TrainConfig(**{**cfg.__dict__, "max_steps": 3 * 8}), checkpoint_dir=tmp_path / "b")
    states, conf = load_checkpoint(tmp_path / "b" / "last")
    assert conf["loop"]["epoch"] == 3 and "optimizer" in states and "ema" in states
    resumed = TinyDenoiser()
    res = fit(resumed, loss_fn, batches(), cfg, checkpoint_dir=tmp_path / "b", resume=True)
    assert res.steps == ref.steps == 48 and len(res.history) == 6
    # no pickle: the config is plain JSON
    json.loads((tmp_path / "b" / "last" / "config.json").read_text())


def test_early_stopping_and_bad_config():
    cfg = TrainConfig(epochs=50, lr=1e-9, patience=2, progress=False, device="cpu", lr_schedule="constant")
    res = fit(TinyDenoiser(), loss_fn, batches(2), cfg, val_batches=batches(1, 5))
    assert res.stopped_early and len(res.history) < 50
    with pytest.raises(ValueError, match="lr must be > 0"):
        fit(TinyDenoiser(), loss_fn, batches(1), TrainConfig(lr=0, progress=False))


def test_checkpoint_is_atomic_and_overwrites(tmp_path):
    d = tmp_path / "ck"
    save_checkpoint(d, {"w": {"a": torch.ones(2)}}, {"k": 1})
    save_checkpoint(d, {"w": {"a": torch.zeros(2)}}, {"k": 2})
    states, conf = load_checkpoint(d)
    assert conf["k"] == 2 and torch.equal(states["w"]["a"], torch.zeros(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no temporary left behind
    with pytest.raises(FileNotFoundError, match="not a multidiff checkpoint"):
        load_checkpoint(tmp_path / "nothing")


def test_write_atomic_leaves_normal_permissions(tmp_path):
    import os
    from pathlib import Path

    from multidiff.core.checkpoint import write_atomic
    write_atomic(tmp_path / "a.txt", lambda tmp: Path(tmp).write_text("hi"))
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "a.txt").read_text() == "hi"
