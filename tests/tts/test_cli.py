import json

import soundfile as sf

from multidiff.cli import main

from .conftest import TEXT


def test_synthesize_one_sentence_and_a_text_file(trained, tmp_path):
    _, ckpt = trained
    wav = tmp_path / "one.wav"
    assert main(["tts", "synthesize", "--checkpoint", str(ckpt), "--text", TEXT, "-o", str(wav), "--sampler-steps", "2",
                 "--png", "--device", "cpu"]) == 0
    audio, sr = sf.read(wav)
    assert sr == 22050 and audio.ndim == 1 and len(audio) > 0 and (tmp_path / "one.png").stat().st_size > 0
    lines = tmp_path / "lines.txt"
    lines.write_text("The press yard.\n\nIn being comparatively modern.\n")
    assert main(["tts", "synthesize", "--checkpoint", str(ckpt), "--text-file", str(lines), "-o",
                 str(tmp_path / "batch.wav"), "--sampler-steps", "2", "--device", "cpu"]) == 0
    assert sorted(p.name for p in tmp_path.glob("batch_*.wav")) == ["batch_001.wav", "batch_002.wav"]


def test_evaluate_on_a_held_out_clip(trained, tmp_path, lj_dir):
    _, ckpt = trained
    out = tmp_path / "rows.json"
    assert main(["tts", "evaluate", "--checkpoint", str(ckpt), "--data", str(lj_dir), "--clips", "1",
                 "--sampler-steps", "2", "--no-f0", "--no-asr", "--json", str(out), "--png", str(tmp_path / "m.png"),
                 "--device", "cpu"]) == 0
    rows = json.loads(out.read_text())
    assert [r["setting"] for r in rows] == ["recorded audio", "recorded mel + vocoder", "prior", "euler_ode-2"]
    assert rows[0]["mcd"] == 0 and all(r["mcd"] > 0 and r["rtf_end_to_end"] > 0 for r in rows[1:])
    assert rows[2]["rtf_decoder"] == 0 and not any("wer" in r for r in rows)
    assert (tmp_path / "m.png").is_file()


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["tts", "synthesize", "--checkpoint", str(tmp_path / "none"), "--text", "hi"]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    assert main(["tts", "train", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no metadata.csv" in capsys.readouterr().err


def test_synthesize_with_a_checkpoint_of_another_kind_names_its_loader(tmp_path, capsys):
    import torch

    import multidiff.tasks.points  # noqa: F401  (registers the kind whose loader the message names)
    from multidiff.core.checkpoint import save_checkpoint
    save_checkpoint(tmp_path / "gen", {"net": {"w": torch.ones(1)}}, {}, kind="points.generator")
    assert main(["tts", "synthesize", "--checkpoint", str(tmp_path / "gen"), "--text", "hi", "-o",
                 str(tmp_path / "o.wav"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "holds a 'points.generator' checkpoint, but this loader reads 'tts'" in err and "multidiff points sample" in err


def test_synthesize_without_a_checkpoint_speaks_with_the_shipped_voice(trained, tmp_path, monkeypatch, capsys):
    """Issue 14: on a fresh install `multidiff tts synthesize --text ... -o out.wav` writes a WAV and a mel PNG."""
    from multidiff.tasks.tts import api

    _, ckpt = trained
    monkeypatch.setattr(api, "DEFAULT_VOICE", ckpt / "final")
    wav = tmp_path / "out.wav"
    assert main(["tts", "synthesize", "--text", TEXT, "-o", str(wav), "--sampler-steps", "2", "--device", "cpu"]) == 0
    assert sf.read(wav)[0].size > 0 and (tmp_path / "out.png").stat().st_size > 0
    assert main(["tts", "synthesize", "--text", TEXT, "-o", str(tmp_path / "b.wav"), "--no-png", "--sampler-steps", "2",
                 "--device", "cpu"]) == 0
    assert not (tmp_path / "b.png").exists()
    monkeypatch.setattr(api, "DEFAULT_VOICE", tmp_path / "absent")
    capsys.readouterr()
    assert main(["tts", "synthesize", "--text", TEXT, "-o", str(wav)]) == 2
    err = capsys.readouterr().err
    assert "no voice is shipped with this install" in err and "--preset cpu" in err and "--checkpoint" in err


def test_error_rates_without_the_recogniser_say_how_to_install_it(trained, lj_dir, monkeypatch, capsys):
    import sys

    _, ckpt = trained
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)
    assert main(["tts", "evaluate", "--checkpoint", str(ckpt), "--data", str(lj_dir), "--clips", "1",
                 "--sampler-steps", "2", "--no-f0", "--no-ceiling", "--device", "cpu"]) == 2
    assert 'pip install "multidiff[bench]"' in capsys.readouterr().err


def test_train_preset_flags(monkeypatch, tmp_path):
    """`multidiff tts train --preset cpu` trains with tasks.tts.TRAINING_PRESETS["cpu"]; flags given win."""
    from multidiff.tasks import tts

    seen = {}

    def spy(data, **kw):
        seen.update(kw)
        raise ValueError("stop")
    monkeypatch.setattr(tts, "train", spy)
    assert main(["tts", "train", "--out", str(tmp_path), "--preset", "cpu", "--lr", "2e-3", "--max-minutes", "30"]) == 2
    assert seen["size"] == "cpu" and seen["batch_size"] == 16 and seen["diffusion"] == {"segment_frames": 64}
    assert seen["train_config"].lr == 2e-3 and seen["train_config"].warmup_steps == 300
    assert seen["train_config"].max_time == 1800
    assert main(["tts", "train", "--out", str(tmp_path)]) == 2
    assert seen["size"] == "gradtts" and seen["train_config"] == tts.DEFAULT_TRAIN_CONFIG
