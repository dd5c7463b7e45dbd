"""The contract every task keeps (as GluonTS' tests do for each estimator): train a few steps,
save, load, and the loaded object gives exactly the seeded samples of the one that was saved.
One case per task, each a few seconds on one CPU thread, on synthetic data."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch


def _imputation(tmp_path):
    from multidiff.tasks.imputation import Imputer

    rng = np.random.default_rng(0)
    values = np.sin(np.arange(48)[:, None] / 4 + np.arange(3)) + rng.normal(0, 0.1, (48, 3))
    values[rng.random(values.shape) < 0.15] = np.nan
    df = pd.DataFrame(values, columns=["a", "b", "c"])
    imp = Imputer(window=8, channels=8, layers=1, heads=1, epochs=1, max_steps=3, num_train_steps=10, n_samples=2,
                  self_check=0.0, progress=False, device="cpu", pretrained=None).fit(df)
    imp.save(tmp_path / "m")

    def sample(model, seed):
        return model.sample_array(df.to_numpy(), 2, generator_seed=seed)
    return imp, tmp_path / "m", Imputer.load, sample, {"format": "multidiff.Imputer/2"}


def _forecasting(tmp_path):
    from gluonts.dataset.common import ListDataset

    from multidiff.tasks.forecasting import TimeGradEstimator, TimeGradPredictor

    t = np.arange(120)
    target = np.stack([np.sin(t / 5), np.cos(t / 7) + 2]).astype(np.float32) + 0.05 * np.random.default_rng(0).normal(size=(2, 120)).astype(np.float32)
    ds = ListDataset([{"start": pd.Period("2024-01-01", freq="D"), "target": target}], freq="D", one_dim_target=False)
    est = TimeGradEstimator(freq="D", prediction_length=4, target_dim=2, context_length=4, hidden_size=8, num_layers=1,
                            residual_layers=2, residual_channels=4, batch_size=8, num_batches_per_epoch=2, max_epochs=1,
                            num_parallel_samples=3, num_train_steps=10, sampler="ddim", sampler_steps=3, seed=0, device="cpu")
    predictor = est.train(ds)
    predictor.serialize(tmp_path / "p")

    def sample(model, seed):
        torch.manual_seed(seed)  # GluonTS predictors draw from torch's global generator
        return next(iter(model.predict(ds))).samples
    return predictor, tmp_path / "p", lambda p: TimeGradPredictor.deserialize(p, device="cpu"), sample, None


def _points(tmp_path):
    from multidiff.tasks import points

    clouds = torch.randn(8, 32, 3, generator=torch.Generator().manual_seed(0))
    gen = points.Generator(num_points=32, channels=8, layers=1, k=4, num_train_steps=50, epochs=1, max_steps=2, batch_size=4,
                           progress=False, device="cpu").fit(clouds)
    gen.save(tmp_path / "g")

    def sample(model, seed):
        return model.sample(2, sampler_steps=3, sampler="ddpm", seed=seed)
    return gen, tmp_path / "g", lambda p: points.Generator.load(p, device="cpu"), sample, {"task": "Generator"}


def _points_latent(tmp_path):
    from multidiff.tasks import points

    clouds = torch.randn(8, 32, 3, generator=torch.Generator().manual_seed(0))
    gen = points.LatentGenerator(num_points=32, epochs=1, max_steps=2, batch_size=4, progress=False, device="cpu",
                                 **_TINY_LATENT).fit(clouds)
    gen.save(tmp_path / "g")

    def sample(model, seed):
        return model.sample(2, sampler_steps=3, sampler="ddpm", seed=seed)
    return gen, tmp_path / "g", lambda p: points.LatentGenerator.load(p, device="cpu"), sample, None


_TINY_LATENT = dict(latent_dim=8, train_points=16, encoder_points=16, prior_width=16, prior_layers=1, prior_max_steps=2,
                    encoder_widths=(16,), decoder_widths=(16, 16))


def _tts_items(tmp_path) -> list:
    import soundfile as sf

    from multidiff.datasets.ljspeech import Utterance

    items = []
    for i, (f0, text) in enumerate([(180.0, "a cat sat"), (120.0, "on the mat")]):
        wave = 0.3 * np.sin(2 * np.pi * f0 * np.arange(int(0.6 * 22050)) / 22050)
        sf.write(tmp_path / f"u{i}.wav", wave.astype(np.float32), 22050)
        items.append(Utterance(f"u{i}", text, tmp_path / f"u{i}.wav"))
    return items


def _tts(tmp_path):
    from multidiff.tasks import tts

    items = _tts_items(tmp_path)
    net = dict(enc_channels=16, enc_filter=32, enc_layers=1, dp_filter=16, dec_dim=8, dec_mults=(1, 2), dec_groups=4,
               dec_attn_dim=8)
    voice = tts.train(items, max_steps=2, epochs=2, batch_size=2, holdout=0, net=net, diffusion={"segment_frames": 16},
                      frontend="char", device="cpu", progress=False)
    voice.save(tmp_path / "v")

    def sample(model, seed):
        return model.synthesize_mel("a cat", sampler_steps=3, seed=seed)
    return voice, tmp_path / "v", lambda p: tts.load(p, device="cpu"), sample, {"kind": "gradtts"}


def _purification(tmp_path):
    from multidiff.core.training import TrainConfig
    from multidiff.tasks import purify

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, 1, 8, 8, generator=g), torch.arange(16) % 2
    quick = TrainConfig(epochs=1, max_steps=2, lr=2e-3, progress=False, device="cpu")
    den = purify.train_denoiser(x, quick, batch_size=8, base=8, mults=(1,), time_dim=16)
    clf = purify.train_classifier(x, y, 2, quick, batch_size=8, width=8)
    purify.save_models(tmp_path / "c", den, clf, {"data_range": [0.0, 1.0]})

    def sample(models, seed):
        denoiser, classifier = models
        purifier = purify.Purifier(denoiser, t_star=0.2, sampler_steps=3, sampler="ddpm")
        with torch.no_grad():
            purified = purifier(x[:4], generator=torch.Generator().manual_seed(seed))
            return torch.cat([purified.flatten(1), classifier(purified)], 1)
    return (den, clf), tmp_path / "c", lambda p: purify.load_models(p, device="cpu")[:2], sample, {}


TASKS = {"imputation": _imputation, "forecasting": _forecasting, "points": _points, "points.latent": _points_latent,
         "tts": _tts, "purification": _purification}


# what each task's checkpoint called num_train_steps / sampler_steps before the vocabulary rename
# (issue 10), and the kind version it had then
BEFORE_VOCABULARY = {"imputation": ({"num_train_steps": "num_steps"}, 2),
                     "forecasting": ({"num_train_steps": "diff_steps", "sampler_steps": "sampling_steps"}, 1),
                     "points": ({"num_train_steps": "num_steps"}, 1)}


def _as_written_before_the_vocabulary(directory, old_names: dict, kind_version: int) -> None:
    """Rewrite every JSON file of a saved model (config.json, GluonTS' predictor.json) with the
    names the code before the vocabulary rename wrote, and that code's kind version."""
    def rename(obj):
        if isinstance(obj, dict):
            return {old_names.get(k, k): rename(v) for k, v in obj.items()}
        return [rename(v) for v in obj] if isinstance(obj, list) else obj
    found = set()
    for path in directory.rglob("*.json"):
        text = path.read_text()
        found |= {k for k in old_names if f'"{k}"' in text}
        meta = rename(json.loads(text))
        if "kind_version" in meta:
            meta["kind_version"] = kind_version
        path.write_text(json.dumps(meta))
    assert found == set(old_names)  # the rewrite can fail: each new name was in a saved file


def _as_written_before_kinds(directory, tag: dict) -> None:
    """Rewrite a checkpoint as the code before checkpoint kinds wrote it: format 1, no kind, the
    task's old tag (if it had one) in its config."""
    meta = json.loads((directory / "config.json").read_text())
    del meta["kind"], meta["kind_version"]
    meta["format_version"] = 1
    meta["config"].update(tag)
    (directory / "config.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("task", list(TASKS))
def test_train_save_load_gives_the_same_seeded_samples(task, tmp_path):
    """Also: a checkpoint as the code before kinds, or before the vocabulary rename, wrote it still
    loads, with the same samples."""
    torch.set_num_threads(1)
    trained, path, load, sample, old_tag = TASKS[task](tmp_path)
    ours, theirs = np.asarray(sample(trained, 0)), np.asarray(sample(load(path), 0))
    np.testing.assert_array_equal(theirs, ours)
    assert np.isfinite(ours).all()
    # the comparison can fail: another seed gives other samples
    assert not np.array_equal(np.asarray(sample(load(path), 1)), ours)
    if task in BEFORE_VOCABULARY:  # saved with num_steps, diff_steps, sampling_steps: loads, same samples
        _as_written_before_the_vocabulary(path, *BEFORE_VOCABULARY[task])
        np.testing.assert_array_equal(np.asarray(sample(load(path), 0)), ours)
    if old_tag is not None:
        _as_written_before_kinds(path, old_tag)
        np.testing.assert_array_equal(np.asarray(sample(load(path), 0)), ours)


class _Reached(Exception):
    pass


def _train_with(task: str, tmp_path, train_config_of):
    """Start ``task``'s training with ``train_config=train_config_of(<the task's default>)``."""
    if task == "imputation":
        from multidiff.tasks.imputation import Imputer
        from multidiff.tasks.imputation.api import DEFAULT_TRAIN_CONFIG
        rng = np.random.default_rng(0)
        Imputer(window=8, channels=8, layers=1, heads=1, num_train_steps=10, progress=False, pretrained=None,
                train_config=train_config_of(DEFAULT_TRAIN_CONFIG)).fit(rng.normal(size=(32, 3)))
    elif task == "forecasting":  # CSDI trains through the core loop (TimeGrad: Lightning's trainer_kwargs)
        from gluonts.dataset.common import ListDataset

        from multidiff.tasks.forecasting.csdi import DEFAULT_TRAIN_CONFIG, CSDIForecastEstimator
        ds = ListDataset([{"start": pd.Period("2024-01-01", freq="D"), "target": np.random.default_rng(0).normal(
            size=(2, 40)).astype(np.float32)}], freq="D", one_dim_target=False)
        CSDIForecastEstimator(freq="D", prediction_length=4, target_dim=2, channels=8, layers=1, heads=1,
                              train_config=train_config_of(DEFAULT_TRAIN_CONFIG)).train(ds)
    elif task == "points":
        from multidiff.tasks import points
        points.Generator(num_points=32, channels=8, layers=1, k=4, progress=False,
                         train_config=train_config_of(points.DEFAULT_TRAIN_CONFIG)).fit(torch.randn(4, 32, 3))
    elif task == "points.latent":
        from multidiff.tasks import points
        latent = points.LatentGenerator(num_points=32, progress=False, **_TINY_LATENT,
                                        train_config=train_config_of(points.DEFAULT_LATENT_TRAIN_CONFIG))
        latent.fit(torch.randn(4, 32, 3))
    elif task == "tts":
        from multidiff.tasks import tts
        tts.train(_tts_items(tmp_path), batch_size=2, holdout=0, size="tiny", diffusion={"segment_frames": 16}, frontend="char",
                  progress=False, train_config=train_config_of(tts.DEFAULT_TRAIN_CONFIG))
    else:
        from multidiff.tasks import purify
        x = torch.rand(8, 1, 8, 8)
        purify.train_denoiser(x, train_config_of(purify.DEFAULT_DENOISER_TRAIN_CONFIG), batch_size=4, base=8,
                              mults=(1,), time_dim=16)


@pytest.mark.parametrize("task", list(TASKS))
def test_device_and_node_options_reach_the_core_loop_through_train_config(task, tmp_path, monkeypatch):
    """One route for every task that trains through ``core.training.fit``: ``train_config=`` with
    accelerator / devices / num_nodes / strategy reaches the loop, which then runs on Fabric;
    the task's other settings are its defaults, and its seed, device and progress still win."""
    from dataclasses import replace

    from multidiff.core import training

    seen = []

    def fabric(config):  # stands in for Lightning Fabric: records what would be launched, launches nothing
        seen.append(config)
        raise _Reached
    monkeypatch.setattr(training, "_Fabric", fabric)
    options = dict(accelerator="cpu", devices=2, num_nodes=3, strategy="ddp")
    defaults = []

    def train_config_of(default):
        defaults.append(default)
        return replace(default, **options)
    if task == "tts":
        pytest.importorskip("soundfile")
    with pytest.raises(_Reached):
        _train_with(task, tmp_path, train_config_of)
    assert len(seen) == 1 and len(defaults) == 1
    cfg = seen[0]
    assert {k: getattr(cfg, k) for k in options} == options and cfg.distributed()
    assert (cfg.lr, cfg.lr_schedule, cfg.ema_decay, cfg.weight_decay) == (
        defaults[0].lr, defaults[0].lr_schedule, defaults[0].ema_decay, defaults[0].weight_decay)
