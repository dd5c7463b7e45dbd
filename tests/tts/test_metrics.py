import math

import numpy as np
import pytest

from multidiff.metrics.audio import (dtw_path, f0_track, log_f0_rmse, mel_cepstral_distortion, mel_cepstrum,
                                     speech_metrics)

K = 10 / math.log(10) * math.sqrt(2)


def test_mcd_by_hand():
    rng = np.random.default_rng(0)
    c = rng.normal(size=(30, 24))
    delta = np.zeros(24)
    delta[[0, 5]] = [0.3, 0.4]  # |delta| = 0.5
    assert mel_cepstral_distortion(c, c) == 0
    ident = np.stack([np.arange(30)] * 2, 1)
    assert mel_cepstral_distortion(c, c + delta, ident) == pytest.approx(K * 0.5)
    assert mel_cepstral_distortion(c, c + delta) == pytest.approx(K * 0.5, rel=1e-6)


def test_dtw_undoes_a_time_stretch():
    c = np.cumsum(np.random.default_rng(1).normal(size=(20, 24)), axis=0)
    slow = np.repeat(c, 2, axis=0)
    path = dtw_path(c, slow)
    assert path[0].tolist() == [0, 0] and path[-1].tolist() == [19, 39]
    assert mel_cepstral_distortion(c, slow) == pytest.approx(0, abs=1e-9)


def test_mel_cepstrum_is_the_orthonormal_dct():
    log_mel = np.zeros((80, 5))
    log_mel[:, 2] = 1.0  # a flat spectrum is pure c0
    cep = mel_cepstrum(log_mel, order=24)
    assert cep.shape == (5, 24) and np.allclose(cep, 0)


def test_log_f0_rmse_by_hand():
    ref = np.array([100, 200, np.nan, 0, 150.0])
    syn = np.array([200, 200, 120, 130, np.nan])
    # voiced in both: frames 0 and 1 -> sqrt((ln 2)^2 / 2)
    assert log_f0_rmse(ref, syn) == pytest.approx(math.log(2) / math.sqrt(2))
    assert math.isnan(log_f0_rmse(np.array([np.nan]), np.array([100.0])))


def test_pyin_semitone_apart_sines():
    sr = 22050
    t = np.arange(sr) / sr
    low, high = [0.5 * np.sin(2 * np.pi * f * t).astype(np.float32) for f in (220.0, 220.0 * 2 ** (1 / 12))]
    f0 = f0_track(low, sr)
    assert len(f0) == sr // 256 and np.nanmedian(f0) == pytest.approx(220, rel=0.01)
    m = speech_metrics(low, high, sr)
    assert m["log_f0_rmse"] == pytest.approx(math.log(2) / 12, abs=0.01)
    assert m["mcd"] > 0
