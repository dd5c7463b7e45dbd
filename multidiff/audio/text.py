"""English text frontend: normalisation, espeak-ng phonemes (character fallback), token ids.

Normalisation follows keithito's ``english_cleaners`` used by Tacotron 2 / Grad-TTS (abbreviations,
currency, decimals, ordinals, years, cardinals spelled out). Phonemes come from the ``espeak-ng``
program (IPA, US English), one clause per punctuation-delimited chunk so that punctuation is kept as a
token. When espeak-ng is absent, ``mode="auto"`` falls back to lower-case characters. As in Grad-TTS
(Popov et al. 2021) a blank token (id 0) is interspersed between all symbols.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
import warnings
from functools import lru_cache

__all__ = ["SYMBOLS", "BLANK", "normalize_text", "number_to_words", "espeak_available", "phonemize",
           "TextFrontend"]

BLANK = "_"
_PUNCT = "!'(),-.:;?\""
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# IPA inventory of espeak-ng's English voices (superset, as in VITS' symbol table)
_IPA = ("ɑɐɒæɓʙβɔɕçɗɖðʤəɘɚɛɜɝɞɟʄɡɠɢʛɦɧħɥʜɨɪʝɭɬɫɮʟɱɯɰŋɳɲɴøɵɸθœɶʘɹɺɾɻʀʁɽʂʃʈʧʉʊʋⱱʌɣɤʍχʎʏʑʐʒʔʡʕʢǀǁǂǃ"
        "ˈˌːˑʼʴʰʱʲʷˠˤ˞↓↑→↗↘̩ᵻ")
SYMBOLS = [BLANK, " "] + list(_PUNCT) + list(_LETTERS) + list(_IPA)
_ID = {s: i for i, s in enumerate(SYMBOLS)}
_SOUNDING = set(_LETTERS) | {c for c in _IPA if unicodedata.category(c).startswith("L")}

_ABBREVIATIONS = [(re.compile(rf"\b{a}\.", re.IGNORECASE), full) for a, full in [
    ("mrs", "misess"), ("mr", "mister"), ("dr", "doctor"), ("st", "saint"), ("co", "company"), ("jr", "junior"),
    ("maj", "major"), ("gen", "general"), ("drs", "doctors"), ("rev", "reverend"), ("lt", "lieutenant"),
    ("hon", "honorable"), ("sgt", "sergeant"), ("capt", "captain"), ("esq", "esquire"), ("ltd", "limited"),
    ("col", "colonel"), ("ft", "fort")]]
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = [(10 ** 12, "trillion"), (10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand"), (100, "hundred")]
_ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth",
            "twelve": "twelfth"}


def number_to_words(n: int) -> str:
    """Cardinal English words for a non-negative integer, without "and": 1234 -> one thousand two hundred thirty four."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            return f"{number_to_words(head)} {name}" + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError("unreachable")


def _ordinal(n: int) -> str:
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL:
        words[-1] = _ORDINAL[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _year_or_number(n: int) -> str:
    if 1000 < n < 3000 and not 2000 <= n < 2010:
        if n % 100 == 0:
            return number_to_words(n // 100) + " hundred"
        head, tail = divmod(n, 100)
        return f"{number_to_words(head)} " + (f"oh {_ONES[tail]}" if tail < 10 else number_to_words(tail))
    return number_to_words(n)


def _dollars(m: re.Match) -> str:
    parts = m.group(1).split(".")
    dollars = int(parts[0] or 0)
    cents = int(parts[1][:2].ljust(2, "0")) if len(parts) > 1 and parts[1] else 0
    out = []
    if dollars:
        out.append(f"{number_to_words(dollars)} dollar{'s' if dollars != 1 else ''}")
    if cents:
        out.append(f"{number_to_words(cents)} cent{'s' if cents != 1 else ''}")
    return ", ".join(out) if out else "zero dollars"


def normalize_text(text: str) -> str:
    """Spell out abbreviations, currency, decimals, ordinals and numbers; collapse whitespace.
    ``"Dr. Smith paid $3.50 in 1901."`` -> ``"doctor Smith paid three dollars, fifty cents in nineteen oh one."``"""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"').replace("\u2014", " - ")
    for pattern, full in _ABBREVIATIONS:
        text = pattern.sub(full, text)
    text = re.sub(r"(\d)[,](?=\d{3}\b)", r"\1", text)
    text = re.sub(r"£([0-9.]*[0-9]+)", r"\1 pounds", text)
    text = re.sub(r"\$([0-9.]*[0-9]+)", _dollars, text)
    text = re.sub(r"(\d+)\.(\d+)", lambda m: f"{number_to_words(int(m.group(1)))} point "
                  + " ".join(_ONES[int(d)] for d in m.group(2)), text)
    text = re.sub(r"(\d+)(st|nd|rd|th)\b", lambda m: _ordinal(int(m.group(1))), text)
    text = re.sub(r"\d+", lambda m: _year_or_number(int(m.group(0))), text)
    text = text.replace("&", " and ").replace("%", " percent")
    return re.sub(r"\s+", " ", text).strip()


def espeak_available() -> bool:
    """Whether the ``espeak-ng`` program is on PATH (Debian/Ubuntu: ``apt-get install espeak-ng``)."""
    return shutil.which("espeak-ng") is not None


def _espeak_lines(lines: list[str], voice: str) -> list[str]:
    proc = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", voice, "-l", "100000"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, check=True)
    return [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]


@lru_cache(maxsize=4096)
def _phonemize_chunk(chunk: str, voice: str) -> str:
    return " ".join(_espeak_lines([chunk], voice))


def phonemize(text: str, voice: str = "en-us") -> str:
    """IPA phonemes of normalised ``text`` with its punctuation kept in place (espeak-ng)."""
    if not espeak_available():
        raise RuntimeError("espeak-ng is not installed; apt-get install espeak-ng, or use mode='char'")
    pieces = re.split(r"([!(),.:;?\"-]+)", text)
    words = [(i, p.strip()) for i, p in enumerate(pieces) if i % 2 == 0 and re.search(r"[A-Za-z]", p)]
    if words:
        out = _espeak_lines([w for _, w in words], voice)
        if len(out) != len(words):  # espeak split a clause: phonemize chunk by chunk instead
            out = [_phonemize_chunk(w, voice) for _, w in words]
        for (i, _), ph in zip(words, out):
            pieces[i] = f" {ph} "
    return re.sub(r"\s+([!),.:;?])", r"\1", re.sub(r"\s+", " ", "".join(pieces))).strip()


def _characters(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


class TextFrontend:
    """Text -> token ids. ``mode``: ``"phoneme"`` (espeak-ng), ``"char"`` or ``"auto"`` (phonemes when
    espeak-ng is installed, else characters with a warning). ``add_blank`` intersperses id 0 (Grad-TTS)."""

    def __init__(self, mode: str = "auto", add_blank: bool = True, voice: str = "en-us"):
        if mode not in ("auto", "phoneme", "char"):
            raise ValueError(f"mode must be 'auto', 'phoneme' or 'char', got {mode!r}")
        if mode == "auto":
            mode = "phoneme" if espeak_available() else "char"
            if mode == "char":
                warnings.warn("espeak-ng not found: falling back to character input (apt-get install espeak-ng "
                              "for phonemes)", stacklevel=2)
        elif mode == "phoneme" and not espeak_available():
            raise RuntimeError("this frontend needs espeak-ng (phoneme mode) but it is not installed; "
                               "apt-get install espeak-ng")
        self.mode, self.add_blank, self.voice = mode, add_blank, voice

    @property
    def n_symbols(self) -> int:
        return len(SYMBOLS)

    def config(self) -> dict:
        return {"mode": self.mode, "add_blank": self.add_blank, "voice": self.voice}

    def symbols(self, text: str) -> str:
        """The symbol string the model reads (phonemes or characters), before blanks."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text is empty; give at least one word to synthesize")
        norm = normalize_text(text)
        seq = phonemize(norm, self.voice) if self.mode == "phoneme" else _characters(norm)
        seq = "".join(c for c in seq if c in _ID)
        if not any(c in _SOUNDING for c in seq):
            raise ValueError(f"text {text!r} has no pronounceable characters (letters or words); "
                             "give English words, numbers or abbreviations")
        return seq.strip()

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; with blanks: ``[0, s1, 0, s2, ..., 0]``."""
        ids = [_ID[c] for c in self.symbols(text)]
        if not self.add_blank:
            return ids
        out = [0] * (2 * len(ids) + 1)
        out[1::2] = ids
        return out
