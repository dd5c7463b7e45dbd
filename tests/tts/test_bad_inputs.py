"""Bad and edge inputs to the TTS entry points, one table per entry point (row format:
docs/gen_refusals.py; docs/refusals.md is built from these tables). The voice is an untrained
tiny network: every row is about what goes in, not how it sounds."""
from types import SimpleNamespace

import pytest
import torch

from multidiff.audio.text import SYMBOLS, TextFrontend, normalize_text
import multidiff.tasks.purify  # noqa: F401  (registers the kind whose loader the message names)
from multidiff.core.checkpoint import CheckpointKindError, save_checkpoint
from multidiff.nets.gradtts import GradTTSConfig, GradTTSNet
from multidiff.tasks import tts
from multidiff.tasks.tts.api import TTS

TINY = dict(enc_channels=32, enc_filter=64, enc_layers=1, dp_filter=32, dec_dim=8, dec_mults=(1, 2), dec_groups=4,
            dec_attn_dim=8)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """An untrained tiny voice (character input), and a folder holding a checkpoint of another kind."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = TTS(GradTTSNet(GradTTSConfig(n_vocab=len(SYMBOLS), **TINY)), TextFrontend("char"), device="cpu")
    tmp = tmp_path_factory.mktemp("tts_bad")
    save_checkpoint(tmp / "purifier", {"w": torch.zeros(1)}, {}, kind="purifier")
    return SimpleNamespace(model=model, tmp=tmp)


def _mel(c, text="Hello world", **kw):
    return c.model.synthesize_mel(text, **{"sampler_steps": 2, **kw})


def _is(expected):
    def check(got):
        assert got == expected, (got, expected)
    return check


def _frames(n):
    def check(mel):
        assert mel.shape == (80, n) and torch.isfinite(mel).all(), mel.shape
    return check


CASES = {
    "normalize_text(text)": [
        dict(id="minus-dollars", given="'-$5'", run=lambda _: normalize_text("-$5"), returns="'minus five dollars'",
             check=_is("minus five dollars")),
        dict(id="dollars-minus", given="'$-5'", run=lambda _: normalize_text("$-5"), returns="'minus five dollars'",
             check=_is("minus five dollars")),
        dict(id="scientific", given="'1e10'", run=lambda _: normalize_text("1e10"),
             returns="'one times ten to the power of ten'", check=_is("one times ten to the power of ten")),
        dict(id="scientific-negative", given="'-2.5e-3 m'", run=lambda _: normalize_text("-2.5e-3 m"),
             returns="'minus two point five times ten to the power of minus three m'",
             check=_is("minus two point five times ten to the power of minus three m")),
        dict(id="whitespace-controls", given="tab and newline inside the text",
             run=lambda _: normalize_text("Hello\tworld\n again"), returns="'Hello world again' (whitespace)",
             check=_is("Hello world again")),
        dict(id="nul", given="a NUL character ('Hello\\x00world')", run=lambda _: normalize_text("Hello\x00world"),
             raises=ValueError, words=["control character", "'\\x00'", "position 5", "replace them with spaces"]),
        dict(id="escape", given="an ESC character", run=lambda _: normalize_text("a\x1b[31mred"), raises=ValueError,
             words=["control character", "U+001B"]),
        dict(id="not-a-string", given="bytes", run=lambda _: normalize_text(b"hello"), raises=TypeError,
             words=["must be a str", "bytes"]),
        dict(id="other-script", given="Cyrillic letters", run=lambda _: normalize_text("Привет"), raises=ValueError,
             words=["outside the Latin alphabet", "transliterate"]),
    ],
    "TTS.synthesize_mel(text)": [
        dict(id="nul", given="'Hello\\x00world and more' (was cut at the NUL: 33 of 312 frames spoken)",
             run=lambda c: _mel(c, "Hello\x00world and more"), raises=ValueError, words=["control character"]),
        dict(id="length-scale-nan", given="length_scale=nan", run=lambda c: _mel(c, length_scale=float("nan")),
             raises=ValueError, words=["length_scale", "> 0 and finite", "nan"]),
        dict(id="length-scale-inf", given="length_scale=inf", run=lambda c: _mel(c, length_scale=float("inf")),
             raises=ValueError, words=["length_scale", "> 0 and finite"]),
        dict(id="length-scale-0", given="length_scale=0", run=lambda c: _mel(c, length_scale=0),
             raises=ValueError, words=["length_scale", "> 0"]),
        dict(id="length-scale-2", given="length_scale=2 (slower)", run=lambda c: _mel(c, length_scale=2.0),
             returns="twice the frames of length_scale=1 (50 against 25)", check=_frames(50)),
        dict(id="temperature-nan", given="temperature=nan", run=lambda c: _mel(c, temperature=float("nan")),
             raises=ValueError, words=["temperature", "> 0 and finite"]),
        dict(id="empty", given="''", run=lambda c: _mel(c, ""), raises=ValueError, words=["empty"]),
        dict(id="punctuation-only", given="'!!!'", run=lambda c: _mel(c, "!!!"), raises=ValueError,
             words=["no pronounceable"]),
        dict(id="none", given="None", run=lambda c: _mel(c, None), raises=TypeError, words=["must be a str"]),
        dict(id="sampler-steps-0", given="sampler_steps=0", run=lambda c: _mel(c, sampler_steps=0),
             raises=ValueError, words=["sampler_steps", ">= 1"]),
        dict(id="unknown-sampler", given="sampler='foo'", run=lambda c: _mel(c, sampler="foo"), raises=ValueError,
             words=["unknown sampler", "euler_ode"]),
        dict(id="flow-sampler-on-a-vp-voice", given="sampler='euler' (a flow sampler) for a VP-SDE voice",
             run=lambda c: _mel(c, sampler="euler"), raises=ValueError,
             words=["'euler' needs a flow-time model", "euler_ode"]),
    ],
    "TTS.synthesize_mels(texts)": [
        dict(id="empty-list", given="[]", run=lambda c: c.model.synthesize_mels([]), raises=ValueError,
             words=["no texts", "at least one"]),
        dict(id="one-string", given="a string instead of a list", run=lambda c: c.model.synthesize_mels("Hello"),
             raises=TypeError, words=["list of texts", "synthesize_mel()"]),
        dict(id="not-text-inside", given="['hi', 3]", run=lambda c: c.model.synthesize_mels(["hi", 3]),
             raises=TypeError, words=["must be a str", "int"]),
        dict(id="length-scale-nan", given="length_scale=nan", raises=ValueError, words=["length_scale"],
             run=lambda c: c.model.synthesize_mels(["Hello"], length_scale=float("nan"))),
    ],
    "tts.load(directory)": [
        dict(id="missing", given="a folder that does not exist", run=lambda c: tts.load(c.tmp / "nope"),
             raises=FileNotFoundError, words=["no checkpoint", "multidiff tts train"]),
        dict(id="other-kind", given="a purifier checkpoint", run=lambda c: tts.load(c.tmp / "purifier"),
             raises=CheckpointKindError, words=["'purifier' checkpoint", "PurificationModel.load"]),
    ],
}


def test_bad_input(bad_input, check_case, ctx):
    check_case(bad_input, ctx)


def test_length_scale_one_is_the_reference(ctx):
    """The frame count the length_scale=2 row doubles."""
    assert _mel(ctx).shape == (80, 25)
