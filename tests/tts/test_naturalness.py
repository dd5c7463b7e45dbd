"""Issue 27: DNSMOS P.835 naturalness beside WER / CER. The judge itself (speechmos' ONNX models) runs
only where speechmos is installed (the bench extra); its refusals and the evaluation's wiring (with
a stub judge) run everywhere."""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from multidiff.metrics import naturalness
from multidiff.metrics.naturalness import MIN_SECONDS, dnsmos, dnsmos_mean
from multidiff.tasks import tts

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "tts_ljspeech.py"
SR = 22050


@pytest.fixture(scope="module")
def clip(short_clips):
    """A recorded LJ Speech clip (LJ002-0020, 1.5 s) at 22.05 kHz."""
    from multidiff.datasets.ljspeech import load_audio

    return load_audio(short_clips[0].path, SR)


def _noise_like(wav, seed=0):
    """White noise of the same length and RMS level as ``wav``."""
    noise = np.random.default_rng(seed).standard_normal(len(wav))
    return (noise * np.sqrt(np.mean(wav.astype(np.float64) ** 2) / np.mean(noise ** 2))).astype(np.float32)


def test_a_recording_sounds_more_natural_than_noise_of_its_loudness(clip):
    pytest.importorskip("speechmos")
    pytest.importorskip("onnxruntime")
    noise = _noise_like(clip)
    clip_before, noise_before = clip.copy(), noise.copy()
    speech, hiss = dnsmos(clip, SR), dnsmos(noise, SR)
    print(f"recorded {speech}\nnoise {hiss}")
    assert set(speech) == {"ovrl", "sig", "bak", "p808_mos"} and all(isinstance(v, float) for v in speech.values())
    assert all(1 <= v <= 5 for v in [*speech.values(), *hiss.values()])
    assert speech["ovrl"] > hiss["ovrl"] + 1  # measured 2.90 against 1.11
    assert speech["sig"] > hiss["sig"] and speech["bak"] > hiss["bak"]
    # the caller's arrays are not touched (resampled and clipped on a copy)
    assert np.array_equal(clip, clip_before) and np.array_equal(noise, noise_before) and clip.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_judge_hears_a_clipped_16k_copy_and_leaves_the_input_alone(dtype):
    wav = np.linspace(-1.5, 1.5, 16000, dtype=dtype)  # beyond full scale, already at 16 kHz
    before = wav.copy()
    heard = naturalness._audio(wav, 16000)
    assert heard.dtype == np.float64 and heard.min() == -1 and heard.max() == 1 and len(heard) == 16000
    assert np.array_equal(wav, before)
    assert len(naturalness._audio(np.zeros(22050), 22050)) == 16000  # resampled to 16 kHz


def test_dnsmos_mean_averages_each_key_over_the_clips(monkeypatch):
    scores = iter([{"ovrl": 2.0, "sig": 3.0, "bak": 4.0, "p808_mos": 3.0}, {"ovrl": 3.0, "sig": 4.0, "bak": 2.0}])
    monkeypatch.setattr(naturalness, "dnsmos", lambda wav, sr: next(scores))
    assert dnsmos_mean([np.zeros(1), np.zeros(1)], SR) == {"ovrl": 2.5, "sig": 3.5, "bak": 3.0}  # p808 of one: left out
    with pytest.raises(ValueError, match="at least one clip"):
        dnsmos_mean([], SR)


@pytest.mark.parametrize("wav, sr, error, words", [
    (np.zeros(0, np.float32), SR, ValueError, "empty"),
    (np.r_[np.zeros(SR), np.nan].astype(np.float32), SR, ValueError, "1 non-finite"),
    (np.r_[np.zeros(SR), np.inf, -np.inf], SR, ValueError, "2 non-finite"),
    (np.zeros((2, SR), np.float32), SR, ValueError, "1-D array; got shape (2, 22050)"),
    (np.zeros(int(0.2 * SR), np.float32), SR, ValueError, f"0.200 s long; DNSMOS needs at least {MIN_SECONDS} s"),
    (np.zeros(SR, np.int16), SR, TypeError, "float audio in [-1, 1], got int16; scale int16 PCM by 1/32768"),
    (np.zeros(SR, np.complex64), SR, TypeError, "real float audio"),
    (np.zeros(SR, np.float32), 0, ValueError, "sample_rate must be a positive integer"),
    (np.zeros(SR, np.float32), 22050.0, ValueError, "sample_rate must be a positive integer"),
], ids=["empty", "nan", "inf", "stereo", "too-short", "int16", "complex", "rate-0", "rate-float"])
def test_refusals_say_what_is_wrong(wav, sr, error, words):
    with pytest.raises(error) as info:
        dnsmos(wav, sr)
    assert words in str(info.value)


def test_without_speechmos_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "speechmos", None)
    monkeypatch.setitem(sys.modules, "speechmos.dnsmos", None)
    with pytest.raises(ImportError, match="pip install speechmos"):
        dnsmos(np.zeros(SR, np.float32), SR)
    with pytest.raises(ImportError, match="pip install speechmos"):  # before any synthesis
        tts.evaluate(object(), [object()], mos=True)


class StubJudge:
    """dnsmos_mean that checks each clip as the real judge would, records the calls and returns call-numbered scores."""

    def __init__(self):
        self.calls = []

    def __call__(self, wavs, sample_rate):
        for w in wavs:
            naturalness._audio(w, sample_rate)  # the syntheses are clips the judge accepts
        self.calls.append(([np.array(w) for w in wavs], sample_rate))
        k = len(self.calls)
        return {"ovrl": float(k), "sig": k + 0.25, "bak": k + 0.5, "p808_mos": k + 0.75}


@pytest.fixture
def judge(monkeypatch):
    stub = StubJudge()
    monkeypatch.setattr(naturalness, "dnsmos_mean", stub)
    monkeypatch.setattr(naturalness, "require_speechmos", lambda: None)
    return stub


def test_every_row_is_judged_ceiling_included(trained, short_clips, judge):
    from multidiff.datasets.ljspeech import load_audio

    model, _ = trained
    res = tts.evaluate(model, short_clips, sampler_steps=(2,), with_f0=False, ceiling=True, mos=True)
    assert [r["setting"] for r in res.rows] == ["recorded audio", "recorded mel + vocoder", "prior", "euler_ode-2"]
    assert [(r["dnsmos_ovrl"], r["dnsmos_sig"], r["dnsmos_bak"]) for r in res.rows] == \
        [(k, k + 0.25, k + 0.5) for k in (1.0, 2.0, 3.0, 4.0)]
    assert all("dnsmos_p808_mos" not in r for r in res.rows)
    assert len(judge.calls) == 4 and all(len(wavs) == 2 and sr == SR for wavs, sr in judge.calls)
    assert np.array_equal(judge.calls[0][0][0], load_audio(short_clips[0].path, SR))  # row 1 is the recording
    assert "| dnsmos_ovrl | dnsmos_sig | dnsmos_bak |" in res.table()
    # without mos: the rows and table of before, and the judge is not asked
    plain = tts.evaluate(model, short_clips, sampler_steps=(2,), with_f0=False)
    assert len(judge.calls) == 4 and not any(k.startswith("dnsmos") for r in plain.rows for k in r)
    assert "dnsmos" not in plain.table()
    assert [r["mcd"] for r in plain.rows] == [r["mcd"] for r in res.rows[2:]]


def test_curve_point_judges_the_decoder_and_the_prior(trained, short_clips, judge):
    model, _ = trained
    point = tts.curve_point(model, short_clips, asr=False, sampler_steps=2, mos=True)
    assert (point["prior_dnsmos_ovrl"], point["prior_dnsmos_sig"], point["prior_dnsmos_bak"]) == (1.0, 1.25, 1.5)
    assert (point["dnsmos_ovrl"], point["dnsmos_sig"], point["dnsmos_bak"]) == (2.0, 2.25, 2.5)
    assert "dnsmos_ovrl" not in tts.curve_point(model, short_clips, asr=False, sampler_steps=2)


def test_a_real_judgement_of_a_tiny_voice(trained, short_clips):
    """The real judge on the vocoder's output: a voice trained 30 steps sounds worse than the recording."""
    pytest.importorskip("speechmos")
    pytest.importorskip("onnxruntime")
    model, _ = trained
    rows = tts.evaluate(model, short_clips[:1], sampler_steps=(2,), with_f0=False, ceiling=True, prior=False,
                        mos=True).rows
    recorded, decoder = rows[0], rows[-1]
    assert all(1 <= r[k] <= 5 for r in rows for k in ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"))
    assert recorded["dnsmos_ovrl"] > decoder["dnsmos_ovrl"]


def _bench():
    spec = importlib.util.spec_from_file_location("tts_ljspeech", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_curve_lines_carry_dnsmos(trained, short_clips, judge, tmp_path):
    model, _ = trained
    path = tmp_path / "curve.jsonl"
    curve = _bench().curve(path, 15, short_clips, False, 2, "euler_ode", 1.5, 0, resume=False, mos=True)
    curve(model, {"epoch": 1, "steps": 10, "seconds": 60 * 16, "train_loss": 1.0})
    line = json.loads(path.read_text())
    assert line["dnsmos_ovrl"] == 2.0 and line["prior_dnsmos_bak"] == 1.5


def test_benchmark_without_speechmos_says_so_before_training(monkeypatch, capsys, lj_dir, tmp_path):
    def missing():
        raise ImportError("DNSMOS needs speechmos and onnxruntime: pip install speechmos onnxruntime")
    monkeypatch.setattr(naturalness, "require_speechmos", missing)
    with pytest.raises(SystemExit) as info:
        _bench().main(["--data", str(lj_dir), "--no-asr", "--ceiling-only", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "pip install speechmos" in err and "or pass --no-mos" in err
    assert not (tmp_path / "report.json").exists()
