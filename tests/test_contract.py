"""The contract every task keeps (multidiff.core.task; as GluonTS' tests do for each estimator),
driven from the registry: every class of ``TASKS`` fits a few steps on tiny synthetic data, saves,
loads, and the loaded object gives exactly the seeded samples of the one that was saved. A toy
sixth task, defined here in a few lines over the core, passes the same test."""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import replace
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import multidiff.tasks
from multidiff.core import samplers
from multidiff.core.checkpoint import checkpoint_identity, load_checkpoint, register_kind, save_checkpoint
from multidiff.core.device import resolve_device
from multidiff.core.losses import draw_discrete_t, eps_mse
from multidiff.core.schedules import DiscreteSchedule
from multidiff.core.task import TASKS, register_task
from multidiff.core.training import Batches, TrainConfig, fit, resolve_train_config

# every task package registers its public classes when imported
PACKAGES = sorted(m.name for m in pkgutil.iter_modules(multidiff.tasks.__path__) if m.ispkg)
for _name in PACKAGES:
    importlib.import_module(f"multidiff.tasks.{_name}")


# ---------------------------------------------------------------------------------------------------
# The sixth task: a toy defined here, a 1-D Gaussian learnt by a tiny MLP denoiser. It follows the
# checklist "Adding a sixth task" of docs/architecture.md, step by step (keep the two in step):
#  1. Network: an nn.Module mapping (x_t, t) to the noise eps; no schedule, loss or sampling loop
#     in it (a real task puts it in nets/<name>.py and tests its shapes).
#  2. Schedule from core.schedules (here DiscreteSchedule), loss from core.losses (eps_mse on
#     draw_discrete_t times); sampling through core.samplers.run(model, sampler=, sampler_steps=,
#     schedule=, shape=, generator=): no grid, sampler table or training loop of the task's own.
#  3. Training through core.training.fit with the task's DEFAULT_TRAIN_CONFIG (a TrainConfig),
#     replaced by train_config= and merged with the task's own keywords by
#     core.training.resolve_train_config; mini-batches from core.training.Batches.
#  4. Checkpoint: core.checkpoint.register_kind(KIND, "<the call that loads DIR>") at import;
#     save_checkpoint(..., kind=KIND) with the schedule recorded (schedule.to_config());
#     load_checkpoint(..., kind=KIND, max_kind_version=...).
#  5. The public class follows core.task.Task: class attribute kind, fit(data) -> self,
#     sample(..., seed=), save(directory) -> Path, classmethods load(directory, device=) and
#     default_train_config(); register it with core.task.register_task.
#  6. Contract: add a tiny example of it to EXAMPLES below; this file then drives it as every task.
#  7. Around it: cli/<verb>.py, benchmarks/<verb>_<dataset>.py, docs/<noun>.md, tests/<noun>/;
#     tests/test_architecture.py checks the new package's imports with no change to the test.
# ---------------------------------------------------------------------------------------------------
TOY_KIND = "tests.toy_gaussian"
register_kind(TOY_KIND, "tests/test_contract.py: ToyGaussian.load(DIR)")
TOY_TRAIN_CONFIG = TrainConfig(epochs=15, lr=1e-2, lr_schedule="cosine", ema_decay=0.0, progress=False)


class ToyNet(nn.Module):
    """eps from (x_t, t): an MLP over the value and the scaled step."""

    def __init__(self, width: int, num_train_steps: int):
        super().__init__()
        self.num_train_steps = num_train_steps
        self.layers = nn.Sequential(nn.Linear(2, width), nn.SiLU(), nn.Linear(width, 1))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.layers(torch.cat([x_t, t.to(x_t)[:, None] / self.num_train_steps], 1))


@register_task
class ToyGaussian:
    kind = TOY_KIND

    def __init__(self, width: int = 64, num_train_steps: int = 50, seed: int = 0, train_config=None):
        self.width, self.seed, self.train_config = width, seed, train_config
        self.schedule = DiscreteSchedule(num_train_steps=num_train_steps, beta_end=0.3)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = ToyNet(width, num_train_steps)

    @classmethod
    def default_train_config(cls) -> TrainConfig:
        return TOY_TRAIN_CONFIG

    def fit(self, data) -> "ToyGaussian":
        x = torch.as_tensor(data, dtype=torch.float32).reshape(-1, 1)
        config = resolve_train_config(TOY_TRAIN_CONFIG, self.train_config, task_wide={"seed": self.seed})

        def loss(net, x0):
            return eps_mse(net, x0, draw_discrete_t(len(x0), len(self.schedule)), self.schedule.alpha_bar_of)
        batches = Batches(len(x), 32, lambda i: x[i], generator=torch.Generator().manual_seed(self.seed))
        fit(self.net, loss, batches, config)
        return self

    @torch.no_grad()
    def sample(self, n: int, sampler_steps: int = 10, sampler: str = "ddim", seed=None) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed if seed is None else seed)
        return samplers.run(self.net.cpu(), sampler=sampler, sampler_steps=sampler_steps, schedule=self.schedule,
                            shape=(n, 1), generator=generator)

    def save(self, directory) -> Path:
        config = {"width": self.width, "seed": self.seed, "schedule": self.schedule.to_config()}
        return save_checkpoint(directory, {"net": self.net.state_dict()}, config, kind=self.kind)

    @classmethod
    def load(cls, directory, device: str = "auto") -> "ToyGaussian":
        states, config = load_checkpoint(directory, kind=cls.kind, max_kind_version=1)
        schedule = DiscreteSchedule.from_config(config["schedule"])
        model = cls(config["width"], schedule.num_train_steps, config["seed"])
        model.net.load_state_dict(states["net"])
        model.net.to(resolve_device(device)).eval()
        return model


# ---------------------------------------------------------------------------------------------------
# one tiny example per registered kind: the unfitted object (trained with ``train_config``), what
# fit takes, what sample takes (besides seed=)
class Example(NamedTuple):
    model: object
    fit_args: tuple
    sample_args: tuple
    fit_kwargs: dict = {}
    core_loop: bool = True  # trains through core.training.fit (TimeGrad: Lightning's Trainer)


def _clouds() -> torch.Tensor:
    return torch.randn(8, 32, 3, generator=torch.Generator().manual_seed(0))


_POINTS = dict(num_points=32, batch_size=4, progress=False, device="cpu")
_TINY_LATENT = dict(latent_dim=8, train_points=16, encoder_points=16, encoder_widths=(16,), decoder_widths=(16, 16))


def _imputer(tmp_path, train_config):
    from multidiff.tasks.imputation import Imputer

    rng = np.random.default_rng(0)
    values = np.sin(np.arange(48)[:, None] / 4 + np.arange(3)) + rng.normal(0, 0.1, (48, 3))
    values[rng.random(values.shape) < 0.15] = np.nan
    df = pd.DataFrame(values, columns=["a", "b", "c"])
    imp = Imputer(window=8, channels=8, layers=1, heads=1, num_train_steps=10, n_samples=2, self_check=0.0,
                  progress=False, device="cpu", pretrained=None, train_config=train_config)
    return Example(imp, (df,), (df.to_numpy(), 2))


def _forecasting_data():
    from gluonts.dataset.common import ListDataset

    t = np.arange(120)
    target = np.stack([np.sin(t / 5), np.cos(t / 7) + 2]).astype(np.float32)
    target += 0.05 * np.random.default_rng(0).normal(size=(2, 120)).astype(np.float32)
    return ListDataset([{"start": pd.Period("2024-01-01", freq="D"), "target": target}], freq="D", one_dim_target=False)


def _timegrad(tmp_path, train_config):
    from multidiff.tasks.forecasting import TimeGradForecaster

    ds = _forecasting_data()
    model = TimeGradForecaster(freq="D", prediction_length=4, target_dim=2, context_length=4, hidden_size=8,
                               num_layers=1, residual_layers=2, residual_channels=4, batch_size=8, num_batches_per_epoch=2,
                               num_parallel_samples=3, num_train_steps=10, sampler="ddim", sampler_steps=3, seed=0,
                               device="cpu", train_config=train_config)
    return Example(model, (ds,), (ds,), core_loop=False)


def _csdi(tmp_path, train_config):
    from multidiff.tasks.forecasting import CSDIForecaster

    ds = _forecasting_data()
    model = CSDIForecaster(freq="D", prediction_length=4, target_dim=2, channels=8, layers=1, heads=1, batch_size=4,
                           num_batches_per_epoch=2, num_parallel_samples=3, num_train_steps=10, sampler_steps=3,
                           device="cpu", train_config=train_config)
    return Example(model, (ds,), (ds,))


def _generator(tmp_path, train_config):
    from multidiff.tasks import points

    model = points.Generator(channels=8, layers=1, k=4, num_train_steps=50, train_config=train_config, **_POINTS)
    return Example(model, (_clouds(),), (2, 3, "ddpm"))


def _completer(tmp_path, train_config):
    from multidiff.tasks import points

    model = points.Completer(channels=8, layers=1, k=4, num_train_steps=50, views=1, train_config=train_config,
                             **_POINTS)
    return Example(model, (_clouds(),), (_clouds()[0, :12], 3, "ddpm"))


def _latent(tmp_path, train_config):
    from multidiff.tasks import points

    model = points.LatentGenerator(prior_width=16, prior_layers=1, prior_max_steps=2, train_config=train_config,
                                   **_TINY_LATENT, **_POINTS)
    return Example(model, (_clouds(),), (2, 3, "ddpm"))


def _latent_completer(tmp_path, train_config):
    from multidiff.tasks import points

    model = points.LatentCompleter(num_train_steps=50, views=1, train_config=train_config, **_TINY_LATENT, **_POINTS)
    return Example(model, (_clouds(),), (_clouds()[0, :12], 3, "ddpm"))


def _tts_items(tmp_path) -> list:
    import soundfile as sf

    from multidiff.datasets.ljspeech import Utterance

    items = []
    for i, (f0, text) in enumerate([(180.0, "a cat sat"), (120.0, "on the mat")]):
        wave = 0.3 * np.sin(2 * np.pi * f0 * np.arange(int(0.6 * 22050)) / 22050)
        sf.write(tmp_path / f"u{i}.wav", wave.astype(np.float32), 22050)
        items.append(Utterance(f"u{i}", text, tmp_path / f"u{i}.wav"))
    return items


def _tts(tmp_path, train_config):
    from multidiff.tasks import tts

    net = dict(enc_channels=16, enc_filter=32, enc_layers=1, dp_filter=16, dec_dim=8, dec_mults=(1, 2), dec_groups=4,
               dec_attn_dim=8)
    voice = tts.TTS.build(net=net, diffusion={"segment_frames": 16}, frontend="char", device="cpu")
    return Example(voice, (_tts_items(tmp_path),), (["a cat"], 3),
                   dict(batch_size=2, holdout=0, progress=False, train_config=train_config))


def _purifier(tmp_path, train_config):
    from multidiff.tasks import purify

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, 1, 8, 8, generator=g), torch.arange(16) % 2
    quick = TrainConfig(epochs=1, max_steps=2, progress=False, device="cpu")
    model = purify.PurificationModel(train_config=train_config, classifier_train_config=quick, batch_size=8,
                                     classifier_batch_size=8, denoiser_net=dict(base=8, mults=(1,), time_dim=16),
                                     classifier_net=dict(width=8))
    return Example(model, (x, y, 2), (x[:4], 0.2, 3, "ddpm"))


def _toy(tmp_path, train_config):
    data = 2.0 + 0.5 * torch.randn(64, generator=torch.Generator().manual_seed(0))
    return Example(ToyGaussian(train_config=train_config), (data,), (16,))


EXAMPLES: dict[str, Callable] = {
    "imputer": _imputer, "forecasting.timegrad": _timegrad, "forecasting.csdi": _csdi, "points.generator": _generator,
    "points.completer": _completer, "points.latent": _latent, "points.latent_completer": _latent_completer,
    "tts": _tts, "purifier": _purifier, TOY_KIND: _toy}


def _example(kind: str, tmp_path, train_config) -> Example:
    if kind == "tts":
        pytest.importorskip("soundfile")
    assert kind in EXAMPLES, f"the task {TASKS[kind].__qualname__} ({kind!r}) has no example in EXAMPLES"
    example = EXAMPLES[kind](tmp_path, train_config)
    assert isinstance(example.model, TASKS[kind])
    return example


def _array(samples) -> np.ndarray:
    if isinstance(samples, (list, tuple)):  # e.g. TTS: one mel per text, of its own length
        return np.concatenate([np.asarray(s).ravel() for s in samples])
    return np.asarray(samples)


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_fit_save_load_gives_the_same_seeded_samples(kind, tmp_path):
    torch.set_num_threads(1)
    cls = TASKS[kind]
    default = cls.default_train_config()
    assert isinstance(default, TrainConfig)
    quick = replace(default, epochs=1, max_steps=2, max_time=None, progress=False, device="cpu")
    model, fit_args, sample_args, fit_kwargs, _ = _example(kind, tmp_path, quick)
    assert model.fit(*fit_args, **fit_kwargs) is model
    saved = model.save(tmp_path / "saved")
    assert Path(saved) == tmp_path / "saved"
    # the saved folder holds checkpoints of the class's kind (forecasting: weights/ beside GluonTS' files)
    assert {checkpoint_identity(p.parent)[0] for p in Path(saved).rglob("config.json")} == {kind}
    loaded = cls.load(saved, device="cpu")
    assert type(loaded) is cls
    ours = _array(model.sample(*sample_args, seed=0))
    np.testing.assert_array_equal(_array(loaded.sample(*sample_args, seed=0)), ours)
    assert np.isfinite(ours).all()
    # the comparison can fail: another seed gives other samples
    assert not np.array_equal(_array(loaded.sample(*sample_args, seed=1)), ours)


def test_every_task_package_registers_a_task():
    registered = {cls.__module__.split(".")[2] for cls in TASKS.values()
                  if cls.__module__.startswith("multidiff.tasks.")}
    assert registered == set(PACKAGES)


def test_the_toy_task_learns_its_gaussian(tmp_path):
    """The toy is a task, not a stub: trained longer it samples N(2, 0.5^2)."""
    torch.set_num_threads(1)
    data = 2.0 + 0.5 * torch.randn(512, generator=torch.Generator().manual_seed(0))
    model = ToyGaussian(train_config=replace(TOY_TRAIN_CONFIG, device="cpu")).fit(data)
    x = model.sample(4000, sampler_steps=50, sampler="ddpm", seed=0)
    assert abs(float(x.mean()) - 2.0) < 0.1 and abs(float(x.std()) - 0.5) < 0.1


def test_register_task_names_what_a_class_lacks():
    class NoSample:
        kind = "tests.no_sample"

        def fit(self, data):
            return self

        def save(self, directory):
            return directory

        @classmethod
        def load(cls, directory, device="auto"):
            return cls()

        @classmethod
        def default_train_config(cls):
            return TOY_TRAIN_CONFIG

    with pytest.raises(TypeError, match=r"NoSample does not follow the task contract.*no sample\(\)"):
        register_task(NoSample)
    NoSample.sample = lambda self, n: n  # without seed=
    with pytest.raises(TypeError, match=r"sample\(\) must take seed="):
        register_task(NoSample)
    NoSample.sample = lambda self, n, seed=None: n
    NoSample.load = lambda self, directory: self  # not a classmethod
    with pytest.raises(TypeError, match="load must be a classmethod"):
        register_task(NoSample)
    NoSample.load = classmethod(lambda cls, directory, device="auto": cls())
    NoSample.kind = TOY_KIND  # held by ToyGaussian
    with pytest.raises(ValueError, match="registered by ToyGaussian"):
        register_task(NoSample)
    assert "tests.no_sample" not in TASKS and TASKS[TOY_KIND] is ToyGaussian


class _Reached(Exception):
    pass


@pytest.mark.parametrize("kind", sorted(k for k in TASKS if k != "forecasting.timegrad"))
def test_device_and_node_options_reach_the_core_loop_through_train_config(kind, tmp_path, monkeypatch):
    """One route for every task that trains through ``core.training.fit``: ``train_config=`` with
    accelerator / devices / num_nodes / strategy reaches the loop, which then runs on Fabric;
    the task's other settings are its defaults, and its seed, device and progress still win.
    (TimeGrad trains through Lightning: tests/forecasting checks its Trainer's arguments.)"""
    from multidiff.core import training

    seen = []

    def fabric(config):  # stands in for Lightning Fabric: records what would be launched, launches nothing
        seen.append(config)
        raise _Reached
    monkeypatch.setattr(training, "_Fabric", fabric)
    options = dict(accelerator="cpu", devices=2, num_nodes=3, strategy="ddp")
    default = TASKS[kind].default_train_config()
    model, fit_args, _, fit_kwargs, core_loop = _example(kind, tmp_path, replace(default, **options))
    assert core_loop
    with pytest.raises(_Reached):
        model.fit(*fit_args, **fit_kwargs)
    assert len(seen) == 1
    cfg = seen[0]
    assert {k: getattr(cfg, k) for k in options} == options and cfg.distributed()
    assert (cfg.lr, cfg.lr_schedule, cfg.ema_decay, cfg.weight_decay) == (
        default.lr, default.lr_schedule, default.ema_decay, default.weight_decay)
