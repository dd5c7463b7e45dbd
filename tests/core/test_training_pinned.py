"""Seeded training runs pinned to the numbers the single-process loop gave before it learnt to run
on Lightning Fabric (recorded on commit 7aeb797): the default settings must train exactly as
before. On the machine they were recorded on they are equal bit for bit; the relative tolerance
of 1e-6 only absorbs other CPUs' kernels (any change to the loop, its seeding, its batches or its
precision moves them by far more)."""
import numpy as np
import pandas as pd
import pytest
import torch

from multidiff.core.training import Batches, TrainConfig, fit

from .test_training import TinyDenoiser, loss_fn

PIN = dict(rel=1e-6, abs=1e-9)


def _data():
    data = torch.randn(40, 2, generator=torch.Generator().manual_seed(1)) * 0.3 + 1
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = TinyDenoiser()
    return data, model


def _rows(history, *keys):
    return [row[k] for row in history for k in keys]


def _sums(model):
    return [float(v.double().sum()) for v in model.state_dict().values()]


def test_default_single_device_fit_is_pinned():
    """Shuffled Batches, warm-up, multistep lr, EMA, clipping, validation and the noise draws."""
    data, model = _data()
    cfg = TrainConfig(epochs=4, lr=3e-3, ema_decay=0.9, progress=False, device="cpu", seed=3, warmup_steps=3)
    train = Batches(40, 8, lambda i: (data[i],), generator=torch.Generator().manual_seed(2))
    val = Batches(16, 8, lambda i: (data[i],), shuffle=False)
    res = fit(model, loss_fn, train, cfg, val_batches=val)
    assert res.optimizer_steps == 20
    assert _rows(res.history, "train_loss", "val_loss", "lr") == pytest.approx([
        0.7504311859607696, 1.1800894439220428, 0.003, 1.464589488506317, 1.1368495225906372, 0.003,
        0.683257520198822, 1.0845872163772583, 0.003, 0.8070302605628967, 1.0473387837409973, 3e-05], **PIN)
    assert _sums(model) == pytest.approx(
        [-1.1882061208598316, -2.0336875384673476, -0.2600532511714846, -0.10917049460113049], **PIN)


def test_bf16_autocast_fit_is_pinned():
    data, model = _data()
    cfg = TrainConfig(epochs=2, lr=3e-3, ema_decay=0, progress=False, device="cpu", seed=5, precision="bf16",
                      lr_schedule="cosine")
    res = fit(model, loss_fn, Batches(40, 8, lambda i: (data[i],), generator=torch.Generator().manual_seed(2)), cfg)
    assert _rows(res.history, "train_loss", "lr") == pytest.approx(
        [1.310971236228943, 0.0019635254915624212, 0.7885096579790115, 7.341522555726971e-05], **PIN)
    assert _sums(model) == pytest.approx(
        [-1.2099345768801868, -2.063194967864547, -0.42525508819380775, -0.11619814718142152], **PIN)


def test_default_imputer_fit_is_pinned():
    """The imputation task's window batches, validation split and CSDI loss through the loop."""
    from multidiff.tasks.imputation import Imputer

    rng = np.random.default_rng(0)
    values = np.sin(np.arange(48)[:, None] / 4 + np.arange(3)) + rng.normal(0, 0.1, (48, 3))
    values[rng.random(values.shape) < 0.15] = np.nan
    imp = Imputer(window=8, channels=8, layers=1, heads=1, epochs=3, num_train_steps=10, n_samples=2, batch_size=4,
                  self_check=0.0, validation_fraction=0.2, progress=False, device="cpu",
                  pretrained=None).fit(pd.DataFrame(values))
    assert imp.train_result_.optimizer_steps == 27
    assert _rows(imp.train_result_.history, "train_loss", "val_loss") == pytest.approx([
        0.6889461113346947, 0.712837815284729, 0.9202277329232957, 0.7205006331205368,
        0.7040271394782596, 0.7194145768880844], **PIN)
    # the weights only: 29.3996 with the schedule's alpha-bar table (sum 6.6053) when it was a buffer
    assert float(sum(v.double().sum() for v in imp.model_.state_dict().values())) == pytest.approx(22.794348931365988,
                                                                                                **PIN)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fabric_on_one_device_trains_the_same_run(precision):
    """``accelerator="cpu"`` runs the loop on Lightning Fabric (one process, one device): the same
    losses and weights as the loop in the calling process, bit for bit (Fabric's bf16-mixed would
    cast the batch to bf16; the loop boxes it, so precision still means autocast only)."""
    pytest.importorskip("lightning.fabric")
    runs = []
    for extra in ({}, {"accelerator": "cpu"}):
        data, model = _data()
        cfg = TrainConfig(epochs=2, lr=3e-3, ema_decay=0.9, progress=False, device="cpu", seed=3, warmup_steps=3,
                          precision=precision, **extra)
        assert cfg.distributed() == bool(extra)
        res = fit(model, loss_fn, Batches(40, 8, lambda i: (data[i],), generator=torch.Generator().manual_seed(2)), cfg,
                  val_batches=Batches(16, 8, lambda i: (data[i],), shuffle=False))
        runs.append((res.history, model.state_dict()))
    (h1, w1), (h2, w2) = runs
    assert h1 == h2 and all(torch.equal(w1[k], w2[k]) for k in w1)
