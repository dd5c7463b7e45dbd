"""The voice shipped inside the package (issue 14): on a fresh install it loads without training, fits the
20 MB budget, says how it was made, and `multidiff tts synthesize` speaks with it."""
import json

import numpy as np
import pytest
import soundfile as sf

from multidiff.cli import main
from multidiff.core.checkpoint import CONFIG, WEIGHTS
from multidiff.tasks import tts


def test_the_shipped_voice_is_small_and_records_how_it_was_trained():
    folder = tts.DEFAULT_VOICE
    assert (folder / WEIGHTS).is_file() and (folder / CONFIG).is_file(), f"{folder} lost its voice"
    assert (folder / WEIGHTS).stat().st_size <= 20 * 2 ** 20
    info = json.loads((folder / "voice.json").read_text())
    assert info["command"].startswith("python benchmarks/tts_ljspeech.py --checkpoint")  # its evaluation, then how
    stages = info["training_commands"]  # each stage was trained: the encoder (issue 14), the flow decoder (issue 27)
    assert stages[0].startswith("python benchmarks/tts_ljspeech.py --preset cpu")
    assert stages[1].startswith("python benchmarks/tts_flow_decoder.py train --init shipped")
    assert 0 < info["training_minutes"] <= 180
    assert (folder / "samples.md").read_text().count("\n|") >= 3


def test_synthesize_on_a_fresh_install_speaks_with_the_shipped_voice(tmp_path):
    wav = tmp_path / "out.wav"
    assert main(["tts", "synthesize", "--text", "The quick brown fox.", "-o", str(wav), "--device", "cpu"]) == 0
    audio, rate = sf.read(wav)
    assert rate == tts.load(device="cpu").sample_rate
    assert 0.5 < len(audio) / rate < 5 and np.sqrt(np.mean(audio ** 2)) > 1e-3  # a sentence's length, not silence
    assert (tmp_path / "out.png").stat().st_size > 0


def test_the_shipped_voice_default_sounds_more_natural_than_its_prior():
    """Issue 27: the decoder earns its place. On a fixed sentence the default synthesis (its decoder,
    sampler and steps) scores a higher DNSMOS OVRL than the prior mean through the same vocoder."""
    pytest.importorskip("speechmos")
    pytest.importorskip("onnxruntime")
    from multidiff.metrics.naturalness import dnsmos

    voice = tts.load(device="cpu")
    mu, mask, n = voice.prior(["The birch canoe slid on the smooth planks, then the boat drifted away."])
    mel = voice.decode(mu, mask)  # the defaults synthesize() uses
    prior, decoded = (dnsmos(voice.vocode(m[0, :, : int(n[0])]), voice.sample_rate)["ovrl"] for m in (mu, mel))
    assert decoded > prior + 0.3, (decoded, prior)
