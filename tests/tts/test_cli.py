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
                 "--sampler-steps", "2", "--no-f0", "--json", str(out), "--png", str(tmp_path / "m.png"),
                 "--device", "cpu"]) == 0
    rows = json.loads(out.read_text())
    assert [r["setting"] for r in rows] == ["prior", "euler_ode-2"]
    assert all(r["mcd"] > 0 and r["rtf_end_to_end"] > 0 for r in rows) and rows[0]["rtf_decoder"] == 0
    assert (tmp_path / "m.png").is_file()


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["tts", "synthesize", "--checkpoint", str(tmp_path / "none"), "--text", "hi"]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    assert main(["tts", "train", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no metadata.csv" in capsys.readouterr().err


def test_synthesize_with_a_checkpoint_of_another_kind_names_its_loader(tmp_path, capsys):
    import torch

    from multidiff.core.checkpoint import save_checkpoint
    save_checkpoint(tmp_path / "gen", {"net": {"w": torch.ones(1)}}, {}, kind="points.generator")
    assert main(["tts", "synthesize", "--checkpoint", str(tmp_path / "gen"), "--text", "hi", "-o",
                 str(tmp_path / "o.wav"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "holds a 'points.generator' checkpoint, but this loader reads 'tts'" in err and "multidiff points sample" in err
