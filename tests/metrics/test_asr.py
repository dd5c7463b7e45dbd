import sys

import numpy as np
import pytest

from multidiff.metrics import asr
from multidiff.metrics.asr import Recognizer, char_error_rate, error_rates, normalize_transcript, word_error_rate

jiwer = pytest.importorskip("jiwer", reason="the bench extra (jiwer) is not installed")


@pytest.mark.parametrize("text,normal", [
    ("Dr. Smith's 2nd-floor office, 1901!", "doctor smith's second floor office nineteen oh one"),
    ("The press yard.", "the press yard"),
    ('"Don\'t," he said -- \'twice\'.', "don't he said twice"),
    ("It cost $3.50; 50% off", "it cost three dollars fifty cents fifty percent off"),
    ("Café NAÏVE", "cafe naive"),
    ("forty-two   lines", "forty two lines"),
    ("  ", ""),
])
def test_normalisation_table(text, normal):
    assert normalize_transcript(text) == normal


def test_rates_by_hand_and_against_jiwer():
    refs = ["the cat sat on the mat", "hello world"]
    hyps = ["the cat sat on mat", "hello there world"]
    # words: one deletion ("the") + one insertion ("there") over 6 + 2 reference words
    assert word_error_rate(refs, hyps) == pytest.approx(2 / 8)
    # characters: "the " deleted (4) + "there " inserted (6) over 22 + 11 reference characters
    assert char_error_rate(refs, hyps) == pytest.approx(10 / 33)
    assert word_error_rate(refs, hyps) == pytest.approx(jiwer.wer(refs, hyps))
    assert char_error_rate(refs, hyps) == pytest.approx(jiwer.cer(refs, hyps))
    # one substitution in three words
    assert word_error_rate("a b c", "a x c") == pytest.approx(1 / 3)


def test_both_sides_are_normalised_the_same_way():
    r = error_rates(["Dr. Smith paid $5 in 1901."], ["Doctor Smith paid 5 dollars, in 1901"])
    assert r["wer"] == 0 and r["cer"] == 0 and r["words"] == 9
    assert r["references"] == r["hypotheses"] == ["doctor smith paid five dollars in nineteen oh one"]


def test_an_empty_transcript_is_all_deletions():
    r = error_rates(["one two three", "four"], ["", "four"])
    assert r["wer"] == pytest.approx(3 / 4)
    assert r["cer"] == pytest.approx(13 / 17)


def test_clear_errors():
    with pytest.raises(ValueError, match="2 references and 1 hypotheses"):
        error_rates(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="reference 1 has no words"):
        error_rates(["a", "?!"], ["a", "b"])
    with pytest.raises(TypeError, match="hypotheses must be strings, got NoneType"):
        error_rates(["a"], [None])
    with pytest.raises(ValueError, match="at least one reference"):
        error_rates([], [])


def test_audio_reaches_the_recogniser_at_16_khz_peak_0_9():
    t = np.arange(22050) / 22050
    pcm = asr.to_pcm16(0.1 * np.sin(2 * np.pi * 440 * t), 22050)
    assert pcm.dtype == np.int16 and len(pcm) == 16000
    assert abs(int(np.abs(pcm).max()) - round(0.9 * 32767)) <= 100  # the resampled sine's peak is scaled to 0.9
    assert not asr.to_pcm16(np.zeros(1600), 16000).any()  # silence stays silent
    with pytest.raises(ValueError, match="NaN or inf"):
        asr.to_pcm16(np.array([0.0, np.nan]), 16000)
    with pytest.raises(ValueError, match="mono waveform"):
        asr.to_pcm16(np.zeros((2, 10)), 16000)


def test_missing_pocketsphinx_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)
    with pytest.raises(ImportError, match=r"multidiff\[bench\]"):
        Recognizer().transcribe(np.zeros(1600, np.float32), 16000)


@pytest.fixture(scope="module")
def recorded():
    """Two recorded LJ Speech clips from the data path (the package's helper: $MULTIDIFF_DATA, ../shared/data ...)."""
    pytest.importorskip("pocketsphinx", reason="the bench extra (pocketsphinx) is not installed")
    from multidiff.datasets.ljspeech import load_audio, locate_ljspeech, read_metadata

    try:
        items = {u.id: u for u in read_metadata(locate_ljspeech())}
    except FileNotFoundError as err:
        pytest.skip(f"LJ Speech data absent: {err}")
    picked = [items[k] for k in ("LJ002-0113", "LJ002-0114") if k in items]
    if len(picked) < 2:
        pytest.skip("the LJ Speech folder found lacks clips LJ002-0113 and LJ002-0114 of the shared subset")
    return [(u.text, load_audio(u.path, 22050)) for u in picked]


def test_recognises_recorded_speech(recorded):
    """PocketSphinx hears "in an age when insolvent acts and bankruptcy courts do so much to relieve the
    impecunious," and "and imprisonment for debt has almost entirely disappeared." with some word errors
    (it heard "gas" for "debt", "empty curious" for "impecunious")."""
    rec = Recognizer()
    r = rec.score([t for t, _ in recorded], [w for _, w in recorded], 22050)
    assert r["wer"] < 0.45 and r["cer"] < 0.25
    # order does not matter: the first clip decoded again after the second reads as it did first
    # (without the front-end reset it became "any age when ..." instead of "in each went ...")
    assert rec.transcribe(recorded[0][1], 22050) == normalize_transcript(r["hypotheses"][0]) == r["hypotheses"][0]
