import json
import random
import time

import numpy as np
import pytest
import torch
from torch import nn

from multidiff.core import schedules as S
from multidiff.core.checkpoint import load_checkpoint, save_checkpoint
from multidiff.core.denoiser import add_noise
from multidiff.core.training import Batches, TrainConfig, fit

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
    assert r1.optimizer_steps == 15 * 8 and r1.best_val == min(h["val_loss"] for h in r1.history)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)


def fixed_noise_loss(model, batch):
    """The loss of ``loss_fn`` with t and eps carried by the batch: no RNG, so a training run is a
    function of the weights, the optimizer state, the EMA and the step counter alone."""
    x0, t, eps = batch
    return ((model(add_noise(x0, eps, AB[t]), t) - eps) ** 2).mean()


def fixed_noise_batches(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(64, 2, generator=g) * 0.3 + 1.0, torch.randint(0, 100, (64,), generator=g),
             torch.randn(64, 2, generator=g)) for _ in range(n)]


def assert_same(a, b, path="states"):
    """Nested state dicts equal bit for bit."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), path
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


class Crash(Exception):
    pass


def test_checkpoint_resume_continues_where_it_stopped(tmp_path):
    """A run killed in epoch 4 and resumed from its last checkpoint ends bit-identical to the same
    run left alone: this holds only if the weights, AdamW's moments and step counts, the EMA, the
    step counter (the cosine lr schedule) and the epoch history all come back from the checkpoint."""
    cfg = TrainConfig(epochs=6, lr=3e-3, ema_decay=0.9, progress=False, device="cpu", seed=1, lr_schedule="cosine")
    init = TinyDenoiser().state_dict()
    data = fixed_noise_batches()
    full = TinyDenoiser()
    full.load_state_dict(init)
    ref = fit(full, fixed_noise_loss, data, cfg, checkpoint_dir=tmp_path / "a")

    calls = 0

    def crashing_loss(model, batch):  # the process dies at the 4th step of epoch 4
        nonlocal calls
        calls += 1
        if calls > 3 * 8 + 3:
            raise Crash
        return fixed_noise_loss(model, batch)

    part = TinyDenoiser()
    part.load_state_dict(init)
    with pytest.raises(Crash):
        fit(part, crashing_loss, data, cfg, checkpoint_dir=tmp_path / "b")
    states, conf = load_checkpoint(tmp_path / "b" / "last")
    assert conf["loop"]["epoch"] == 3 and conf["loop"]["steps"] == 24 and "optimizer" in states and "ema" in states
    assert conf["loop"]["history"] == ref.history[:3]

    resumed = TinyDenoiser()  # fresh weights: only the checkpoint can make it continue
    res = fit(resumed, fixed_noise_loss, data, cfg, checkpoint_dir=tmp_path / "b", resume=True)
    assert res.optimizer_steps == ref.optimizer_steps == 48 and res.stopped_by == "epochs"
    assert res.history == ref.history  # epochs 1-3 from the checkpoint, 4-6 trained on at the same lr and loss
    for name, a in full.state_dict().items():  # the EMA weights fit leaves in the model
        assert torch.equal(resumed.state_dict()[name], a), name
    # the last checkpoints agree too: raw weights, EMA, AdamW's moments and step counts, lr
    assert_same(load_checkpoint(tmp_path / "b" / "last")[0], load_checkpoint(tmp_path / "a" / "last")[0])
    # no pickle: the config is plain JSON
    json.loads((tmp_path / "b" / "last" / "config.json").read_text())


def shuffled(n=8, seed=0):
    """A shuffled Batches over fixed data: its permutation generator moves on from epoch to epoch."""
    data = torch.randn(8 * n, 2, generator=torch.Generator().manual_seed(seed)) * 0.3 + 1.0
    return Batches(len(data), 8, lambda i: (data[i],), shuffle=True, generator=torch.Generator().manual_seed(seed))


def test_resume_continues_the_random_draws(tmp_path):
    """Issue 14: a run whose loss draws noise (t, eps) from torch and whose batches are shuffled, killed
    in epoch 4 and resumed, ends bit-identical to the run left alone: the checkpoint carries torch's
    generator and the batches' one (before, the resumed run reseeded them and drew other noise)."""
    cfg = TrainConfig(epochs=6, lr=3e-3, ema_decay=0.9, progress=False, device="cpu", seed=1, lr_schedule="cosine")
    init = TinyDenoiser().state_dict()
    full = TinyDenoiser()
    full.load_state_dict(init)
    ref = fit(full, loss_fn, shuffled(), cfg, checkpoint_dir=tmp_path / "a")
    calls = 0

    def crashing_loss(model, batch):
        nonlocal calls
        calls += 1
        if calls > 3 * 8 + 3:
            raise Crash
        return loss_fn(model, batch)

    part = TinyDenoiser()
    part.load_state_dict(init)
    with pytest.raises(Crash):
        fit(part, crashing_loss, shuffled(), cfg, checkpoint_dir=tmp_path / "b")
    resumed = TinyDenoiser()
    res = fit(resumed, loss_fn, shuffled(), cfg, checkpoint_dir=tmp_path / "b", resume=True)  # a fresh Batches
    assert res.history == ref.history
    for name, a in full.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], a), name
    assert_same(load_checkpoint(tmp_path / "b" / "last")[0], load_checkpoint(tmp_path / "a" / "last")[0])


def test_on_epoch_end_sees_the_sampling_weights_and_changes_nothing(tmp_path):
    """The callback gets a copy of the EMA weights in eval mode after each epoch; drawing random numbers,
    changing its copy and taking time in it leave the run bit-identical and off the clock."""
    cfg = TrainConfig(epochs=4, lr=3e-3, ema_decay=0.9, progress=False, device="cpu", seed=2)
    init = TinyDenoiser().state_dict()
    plain = TinyDenoiser()
    plain.load_state_dict(init)
    ref = fit(plain, loss_fn, shuffled(), cfg)
    seen = []

    def callback(model, info):
        seen.append(({k: v.clone() for k, v in model.state_dict().items()}, model.training, dict(info)))
        torch.randn(100)  # the run's generator must not move
        with torch.no_grad():
            for q in model.parameters():
                q.add_(1.0)  # nor may the copy be the training model
        time.sleep(0.4)

    watched = TinyDenoiser()
    watched.load_state_dict(init)
    res = fit(watched, loss_fn, shuffled(), cfg, checkpoint_dir=tmp_path, on_epoch_end=callback)
    assert res.history == ref.history
    for name, a in plain.state_dict().items():
        assert torch.equal(watched.state_dict()[name], a), name
    assert [info["epoch"] for _, _, info in seen] == [1, 2, 3, 4]
    assert [info["steps"] for _, _, info in seen] == [8, 16, 24, 32]
    assert [info["train_loss"] for _, _, info in seen] == [h["train_loss"] for h in ref.history]
    assert not any(training for _, training, _ in seen)
    for name, a in seen[-1][0].items():  # the last epoch's EMA: the weights fit leaves in the model
        assert torch.equal(a, plain.state_dict()[name]), name
    assert res.seconds < 0.8 < 4 * 0.4  # the 1.6 s spent in the callback are not training time
    assert seen[-1][2]["seconds"] <= res.seconds


def test_early_stopping_and_bad_config():
    cfg = TrainConfig(epochs=50, lr=1e-9, patience=2, progress=False, device="cpu", lr_schedule="constant")
    res = fit(TinyDenoiser(), loss_fn, batches(2), cfg, val_batches=batches(1, 5))
    assert res.stopped_early and res.stopped_by == "early_stopping" and len(res.history) < 50
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

    from multidiff.core.io import write_atomic
    write_atomic(tmp_path / "a.txt", lambda tmp: Path(tmp).write_text("hi"))
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "a.txt").read_text() == "hi"


def test_fit_leaves_the_callers_rngs_alone_and_seeds_its_own():
    cfg = TrainConfig(epochs=2, lr=3e-3, progress=False, device="cpu", seed=4)
    m1, m2 = TinyDenoiser(), TinyDenoiser()
    m2.load_state_dict(m1.state_dict())
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    before = random.getstate(), np.random.get_state(), torch.get_rng_state()
    fit(m1, loss_fn, batches(3), cfg)
    after = random.getstate(), np.random.get_state(), torch.get_rng_state()
    assert after[0] == before[0]
    assert all(np.array_equal(a, b) for a, b in zip(after[1], before[1]))
    assert torch.equal(after[2], before[2])
    torch.manual_seed(999)  # another global state: the run is still the same, seeded by config.seed
    fit(m2, loss_fn, batches(3), cfg)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)


def test_max_time_stops_training_and_drives_the_lr_schedule():
    cfg = TrainConfig(epochs=500, lr=1e-3, ema_decay=0, progress=False, device="cpu", max_time=0.4)
    t = time.perf_counter()
    res = fit(TinyDenoiser(), loss_fn, batches(4), cfg)
    # not a speed test: 500 epochs would take minutes, the budget stops it after one step past 0.4 s
    assert time.perf_counter() - t < 60 and res.seconds >= 0.4
    assert res.stopped_by == "max_time" and not res.stopped_early and res.optimizer_steps >= 1
    # multistep's last phase (x0.01 after 90 %) is reached within the time budget, not after 10**6 epochs
    assert res.history[-1]["lr"] == pytest.approx(1e-5)
    if len(res.history) > 2:
        assert res.history[0]["lr"] == pytest.approx(1e-3)


def test_max_time_counts_the_time_of_resumed_runs(tmp_path):
    cfg = TrainConfig(epochs=500, ema_decay=0, progress=False, device="cpu", max_time=0.2)
    first = fit(TinyDenoiser(), loss_fn, batches(4), cfg, checkpoint_dir=tmp_path)
    again = fit(TinyDenoiser(), loss_fn, batches(4), cfg, checkpoint_dir=tmp_path, resume=True)
    assert first.stopped_by == again.stopped_by == "max_time"
    assert again.optimizer_steps == first.optimizer_steps and again.history == first.history and again.seconds >= 0.2


def test_stopped_by_and_config_validation():
    quick = dict(ema_decay=0, progress=False, device="cpu")
    assert fit(TinyDenoiser(), loss_fn, batches(2), TrainConfig(epochs=2, **quick)).stopped_by == "epochs"
    res = fit(TinyDenoiser(), loss_fn, batches(4), TrainConfig(epochs=9, max_steps=6, **quick))
    assert res.stopped_by == "max_steps" and res.optimizer_steps == 6 and len(res.history) == 2
    for bad, match in [({"epochs": 0}, "epochs must be"), ({"max_steps": 0}, "max_steps must be"),
                       ({"max_steps": 2.5}, "max_steps must be"), ({"max_time": 0}, "max_time must be"),
                       ({"max_time": -1.0}, "max_time must be")]:
        with pytest.raises(ValueError, match=match):
            fit(TinyDenoiser(), loss_fn, batches(1), TrainConfig(**{**quick, **bad}))
    with pytest.raises(ValueError, match="0 training steps would run"):
        fit(TinyDenoiser(), loss_fn, [], TrainConfig(**quick))
    with pytest.raises(ValueError, match="0 training steps would run.*epoch 2"):
        fit(TinyDenoiser(), loss_fn, iter(batches(2)), TrainConfig(epochs=2, **quick))


def test_progress_bar_counts_steps_or_seconds_and_stays_quiet_when_off(capsys):
    fit(TinyDenoiser(), loss_fn, batches(4), TrainConfig(epochs=3, max_steps=10, ema_decay=0, device="cpu"))
    err = capsys.readouterr().err
    assert "10/10" in err and "step" in err and "loss=" in err
    fit(TinyDenoiser(), loss_fn, batches(4), TrainConfig(epochs=500, max_time=0.3, ema_decay=0, device="cpu"))
    assert "time budget" in capsys.readouterr().err
    fit(TinyDenoiser(), loss_fn, batches(4), TrainConfig(epochs=3, max_time=100, ema_decay=0, device="cpu"))
    final = capsys.readouterr().err.split("\r")[-1]  # the step limit binds long before 100 s: the bar ends on steps
    assert "12/12" in final and "time budget" not in final
    fit(TinyDenoiser(), loss_fn, batches(2), TrainConfig(epochs=2, progress=False, device="cpu"))
    assert capsys.readouterr().err == ""


def test_every_minutes_fires_once_per_mark_passed_and_skips_marks_done():
    from multidiff.core.training import EveryMinutes
    seen = []
    curve = EveryMinutes(20, lambda model, info: seen.append((info["mark"], info["minutes"], info["steps"])))
    for steps, minutes in enumerate([5, 19.9, 20.5, 30, 61, 62, 79.9, 80]):
        curve(None, {"seconds": 60 * minutes, "steps": steps})
    # the first epoch end past each mark; 40 and 60 passed within one epoch: one call, at mark 60
    assert seen == [(20, 20.5, 2), (60, 61, 4), (80, 80, 7)]
    resumed = []
    curve = EveryMinutes(20, lambda model, info: resumed.append(info["mark"]), done=61)
    for minutes in (62, 75, 81):
        curve(None, {"seconds": 60 * minutes, "steps": 0})
    assert resumed == [80]
    with pytest.raises(ValueError, match="every must be a number of minutes > 0"):
        EveryMinutes(0, print)
