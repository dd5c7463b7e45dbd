"""Issue 14: the TTS benchmark measures what a listener hears (WER / CER by an offline recogniser), with
the recorded audio and its vocoded mel as the ceiling rows; learning-curve points; resume; the shipped voice."""
import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from multidiff.tasks import tts

from .conftest import TEXT, TINY

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "tts_ljspeech.py"


class StubRecognizer:
    """Hears nothing for the first waveform of a call and the reference itself for the others; records calls."""

    def __init__(self):
        self.calls = []

    def score(self, references, wavs, sample_rate):
        from multidiff.metrics.asr import error_rates

        self.calls.append((list(references), [np.asarray(w) for w in wavs], sample_rate))
        return error_rates(references, [""] + list(references[1:]))


@pytest.fixture(scope="module")
def held_out(short_clips):
    return short_clips  # two short real clips (the tiny voice trained on them: wiring, not quality)


def test_rows_ceiling_prior_decoder_with_error_rates(trained, held_out):
    pytest.importorskip("jiwer")
    model, _ = trained
    rec = StubRecognizer()
    res = tts.evaluate(model, held_out, sampler_steps=(2,), with_f0=False, asr=rec, ceiling=True)
    assert [r["setting"] for r in res.rows] == ["recorded audio", "recorded mel + vocoder", "prior", "euler_ode-2"]
    recorded, vocoded, prior, decoder = res.rows
    assert recorded["mcd"] == 0 and "rtf_end_to_end" not in recorded  # the clip against itself
    assert 0 < vocoded["mcd"] < prior["mcd"] and "rtf_decoder" not in vocoded and vocoded["rtf_end_to_end"] > 0
    assert decoder["sampler_steps"] == 2 and decoder["rtf_decoder"] > 0
    # the recogniser heard the two clips of every row, at the voice's rate, against their transcripts;
    # the stub misses the 2 words of clip 1 ("in eighteen thirteen" has 3) and gets clip 2's 4 right
    assert len(rec.calls) == 4 and all(c[0] == [u.text for u in held_out] and c[2] == 22050 for c in rec.calls)
    assert all(r["wer"] == pytest.approx(3 / 7) for r in res.rows)
    from multidiff.datasets.ljspeech import load_audio
    assert np.array_equal(rec.calls[0][1][0], load_audio(held_out[0].path, 22050))  # row 1 is the recording
    assert res.transcripts["reference"] == ["in eighteen thirteen", "eight the press yard"]
    assert res.transcripts["euler_ode-2"] == ["", "eight the press yard"]
    assert "| wer | cer |" in res.table()


def test_curve_point_matches_the_evaluate_rows(trained, held_out):
    pytest.importorskip("jiwer")
    model, _ = trained
    point = tts.curve_point(model, held_out, asr=StubRecognizer(), sampler_steps=2)
    rows = tts.evaluate(model, held_out, sampler_steps=(2,), with_f0=False, asr=StubRecognizer()).rows
    assert point["mcd"] == rows[1]["mcd"] and point["prior_mcd"] == rows[0]["mcd"]
    assert point["wer"] == rows[1]["wer"] and point["prior_cer"] == rows[0]["cer"]
    assert point["clips"] == 2 and point["sampler_steps"] == 2 and point["eval_seconds"] > 0
    with pytest.raises(TypeError, match="asr must be True, False or a"):
        tts.curve_point(model, held_out, asr="pocketsphinx")


def _train(clips, out, **kw):
    return tts.train(clips, out=out, max_steps=4, epochs=4, batch_size=2, lr=3e-3, holdout=0, net=TINY,
                     diffusion={"segment_frames": 32}, device="cpu", progress=False, frontend="char",
                     train_config=replace(tts.DEFAULT_TRAIN_CONFIG, ema_decay=0.5), **kw)


class Killed(Exception):
    pass


def test_a_killed_voice_resumes_bit_identical(short_clips, tmp_path):
    """Killed after epoch 2's checkpoint (1 step per epoch), then resumed: the same weights, losses and
    seeded synthesis as a run left alone (the loss draws its crops, t and noise from torch's generator)."""
    seen = []
    alone = _train(short_clips, tmp_path / "a", on_epoch_end=lambda voice, info: seen.append((voice, info)))
    assert [info["steps"] for _, info in seen] == [1, 2, 3, 4] and all(isinstance(v, tts.TTS) for v, _ in seen)
    assert not seen[-1][0].net.training

    def kill(voice, info):
        if info["epoch"] == 2:
            raise Killed
    with pytest.raises(Killed):
        _train(short_clips, tmp_path / "b", on_epoch_end=kill)
    resumed = _train(short_clips, tmp_path / "b", resume=True)
    assert resumed.history == alone.history
    for name, a in alone.net.state_dict().items():
        assert torch.equal(resumed.net.state_dict()[name], a), name
    assert torch.equal(resumed.synthesize_mel(TEXT, sampler_steps=2), alone.synthesize_mel(TEXT, sampler_steps=2))
    assert resumed.trained["steps"] == 4 and tts.load(tmp_path / "b", device="cpu").trained["steps"] == 4


def _bench():
    spec = importlib.util.spec_from_file_location("tts_ljspeech", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_learning_curve_points_every_n_minutes_and_resume_appends(trained, held_out, tmp_path):
    pytest.importorskip("jiwer")
    model, _ = trained
    bench = _bench()
    path = tmp_path / "curve.jsonl"
    curve = bench.curve(path, 15, held_out, StubRecognizer(), 2, "euler_ode", 1.5, 0, resume=False)
    for epoch, minutes in enumerate([5, 14.9, 15.2, 20, 31, 44], 1):
        curve(model, {"epoch": epoch, "steps": 10 * epoch, "seconds": 60 * minutes, "train_loss": 1.0 / epoch})
    lines = [json.loads(ln) for ln in path.read_text().splitlines()]
    assert [ln["minutes"] for ln in lines] == [15.2, 31]  # the first epoch end past 15 and past 30 minutes
    assert lines[0]["steps"] == 30 and lines[0]["wer"] == pytest.approx(3 / 7) and "prior_mcd" in lines[0]
    again = bench.curve(path, 15, held_out, StubRecognizer(), 2, "euler_ode", 1.5, 0, resume=True)
    assert again.due == 45
    again(model, {"epoch": 7, "steps": 70, "seconds": 60 * 46, "train_loss": 0.1})
    assert [json.loads(ln)["minutes"] for ln in path.read_text().splitlines()] == [15.2, 31, 46]
    bench.curve(path, 15, held_out, StubRecognizer(), 2, "euler_ode", 1.5, 0, resume=False)
    assert not path.exists()  # a new run starts a new curve


def test_export_voice_writes_what_the_package_ships(trained, tmp_path, monkeypatch):
    model, _ = trained
    bench = _bench()
    sample = {"text": "Hello there.", "wer": 0.5, "heard": "hello", "rtf_end_to_end": 0.25, "file": "samples/s.wav"}
    folder = bench.export_voice(model, tmp_path / "pretrained", {"command": "python benchmarks/tts_ljspeech.py x",
                                                                 "samples": [sample]})
    assert "| Hello there. | 0.500 | hello | 0.250 |\n" in (folder / "samples.md").read_text()
    info = json.loads((folder / "voice.json").read_text())
    assert info["command"].startswith("python benchmarks/tts_ljspeech.py") and 0 < info["weights_mb"] < 20
    monkeypatch.setattr(tts.api, "DEFAULT_VOICE", folder)
    assert torch.equal(tts.load(device="cpu").synthesize_mel(TEXT, sampler_steps=2),
                       model.synthesize_mel(TEXT, sampler_steps=2))
    (folder / "README.md").write_text("the package's own file")
    bench.export_voice(model, folder, {"command": "again"})  # a new voice over the old one keeps the README
    assert (folder / "README.md").read_text() == "the package's own file"
    assert json.loads((folder / "voice.json").read_text())["command"] == "again"
    monkeypatch.setattr(bench, "MAX_VOICE_MB", 1e-4)
    with pytest.raises(SystemExit, match="over the 0 MB a shipped voice may take"):
        bench.export_voice(model, tmp_path / "big", {})


def test_without_a_shipped_voice_load_says_how_to_train_one(tmp_path, monkeypatch):
    monkeypatch.setattr(tts.api, "DEFAULT_VOICE", tmp_path / "pretrained")
    with pytest.raises(FileNotFoundError, match="no voice is shipped with this install.*--preset cpu"):
        tts.load()


def test_presets_cpu_settings_and_flags_that_win():
    s = tts.preset_settings("cpu")
    assert s["size"] == "cpu" and s["batch_size"] == 16 and s["diffusion"] == {"segment_frames": 64}
    assert s["train_config"] == tts.CPU_TRAIN_CONFIG and s["train_config"].warmup_steps == 300
    s = tts.preset_settings("cpu", lr=2e-3, size="tiny", segment_frames=96, max_minutes=1.5)
    assert (s["size"], s["train_config"].lr, s["diffusion"]["segment_frames"], s["train_config"].max_time) == \
        ("tiny", 2e-3, 96, 90.0)
    assert tts.preset_settings()["train_config"] == tts.DEFAULT_TRAIN_CONFIG
    assert tts.preset_settings()["diffusion"] == {"segment_frames": 172}
    with pytest.raises(ValueError, match="preset must be one of cpu"):
        tts.preset_settings("gpu")
    from multidiff.cli import tts as cli_tts
    assert set(cli_tts.SIZES) == set(tts.PRESETS) and set(cli_tts.TRAINING_PRESETS) == set(tts.TRAINING_PRESETS)
    from multidiff.nets.gradtts import GradTTSConfig, GradTTSNet
    n = sum(q.numel() for q in GradTTSNet(GradTTSConfig(n_vocab=200, **tts.PRESETS["cpu"])).parameters())
    assert 4 * n < 20 * 2 ** 20  # fits the 20 MB a shipped voice may take, in float32
