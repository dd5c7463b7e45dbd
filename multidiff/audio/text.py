"""English text frontend: normalisation, espeak-ng phonemes (character fallback), token ids.

Normalisation follows keithito's ``english_cleaners`` used by Tacotron 2 / Grad-TTS (abbreviations,
currency, decimals, ordinals, years, cardinals spelled out; :func:`normalize_text` lists the rules),
and refuses letters of other scripts with an error that names them instead of dropping them. Phonemes come from the ``espeak-ng``
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

__all__ = ["SYMBOLS", "BLANK", "normalize_text", "number_to_words", "foreign_characters", "espeak_available",
           "phonemize", "TextFrontend"]

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


def _plural(words: str) -> str:
    """'nineteen ninety' -> 'nineteen nineties', 'six' -> 'sixes' (the 1990s, the 6s)."""
    head, _, last = words.rpartition(" ")
    last = last[:-1] + "ies" if last.endswith("y") else last + ("es" if last.endswith(("x", "s")) else "s")
    return f"{head} {last}" if head else last


def _year(n: int) -> str:
    """A year as it is read (keithito's rule): 1999 nineteen ninety nine, 1901 nineteen oh one, 1800
    eighteen hundred, 2005 two thousand five, 2024 twenty twenty four."""
    if 2000 <= n < 2010:
        return number_to_words(n)
    if n % 100 == 0:
        return number_to_words(n // 100) + " hundred"
    head, tail = divmod(n, 100)
    return f"{number_to_words(head)} " + (f"oh {_ONES[tail]}" if tail < 10 else number_to_words(tail))


def _digits(frac: str) -> str:
    return " ".join(_ONES[int(d)] for d in frac)


_LATIN_LETTERS = {"ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "Ae", "œ": "oe", "Œ": "Oe", "ø": "o", "Ø": "O", "ł": "l",
                  "Ł": "L", "đ": "d", "Đ": "D", "ð": "th", "Ð": "Th", "þ": "th", "Þ": "Th", "ı": "i"}
_SPOKEN = [("&", " and "), ("%", " percent "), ("+", " plus "), ("@", " at ")]
_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
             "€": ("euro", "euros", "cent", "cents")}
_INT = r"[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+"  # 1,000,000 (separated by thousands) or 1000000
_MONEY = re.compile(rf"(?P<sym>[$£€])\s?(?P<int>{_INT})?(?:\.(?P<frac>[0-9]+))?"
                    r"(?:\s(?P<scale>thousand|million|billion|trillion)\b)?")
_NUMBER = re.compile(rf"(?P<int>{_INT})(?:\.(?P<frac>[0-9]+))?(?:(?P<suffix>st|nd|rd|th|s)(?![a-z]))?", re.IGNORECASE)


def _money(m: re.Match) -> str:
    if m.group("int") is None and m.group("frac") is None:
        return m.group(0)  # a lone currency sign is not read
    one, many, sub_one, sub_many = _CURRENCY[m.group("sym")]
    whole = int((m.group("int") or "0").replace(",", ""))
    if m.group("scale"):  # $1.5 million -> one point five million dollars
        amount = number_to_words(whole) + (f" point {_digits(m.group('frac'))}" if m.group("frac") else "")
        return f" {amount} {m.group('scale')} {many} "
    # cents rounded half up: $3.999 is four dollars
    cents = whole * 100 + (round(int(m.group("frac")) / 10 ** (len(m.group("frac")) - 2)) if m.group("frac") else 0)
    whole, cents = divmod(cents, 100)
    out = [f"{number_to_words(whole)} {one if whole == 1 else many}"] if whole else []
    if cents:
        out.append(f"{number_to_words(cents)} {sub_one if cents == 1 else sub_many}")
    return " " + (", ".join(out) if out else f"zero {many}") + " "


def _number(m: re.Match) -> str:
    digits, frac, suffix = m.group("int"), m.group("frac"), (m.group("suffix") or "").lower()
    n = int(digits.replace(",", ""))
    if frac is not None:
        words = f"{number_to_words(n)} point {_digits(frac)}"
    elif suffix in ("st", "nd", "rd", "th"):
        words = _ordinal(n)
    elif "," not in digits and len(digits) == 4 and 1000 < n < 3000:  # a separator marks a quantity, not a year
        words = _year(n)
    else:
        words = number_to_words(n)
    if suffix == "s":
        words = _plural(words)
    return f" {words} "


def foreign_characters(text: str) -> list[str]:
    """Letters and digits of ``text`` outside the Latin alphabet (after accents are taken off and
    :data:`_LATIN_LETTERS` is applied), each once, in order: what the English frontend cannot read."""
    bad = []
    for c in unicodedata.normalize("NFKC", text):
        if unicodedata.category(c)[0] not in "LN" or c in _LATIN_LETTERS:
            continue
        base = unicodedata.normalize("NFKD", c)[0]
        if not (base.isascii() and base.isalnum()) and c not in bad:
            bad.append(c)
    return bad


def _check_latin(text: str) -> None:
    bad = foreign_characters(text)
    if bad:
        shown = ", ".join(f"{c!r} (U+{ord(c):04X} {unicodedata.name(c, 'unnamed')})" for c in bad[:8])
        more = f" and {len(bad) - 8} more" if len(bad) > 8 else ""
        raise ValueError(f"text has characters outside the Latin alphabet that the English frontend cannot read: "
                         f"{shown}{more}; transliterate them to Latin letters (e.g. 'Privet' for 'Привет', 'Tokyo' "
                         "for '東京') or remove them")


def _check_control(text: str) -> None:
    """Refuse control characters other than whitespace (NUL, escape, ...): espeak-ng reads text as a C
    string, so a NUL cut everything after it away without a word."""
    bad = [(i, c) for i, c in enumerate(text) if unicodedata.category(c) == "Cc" and not c.isspace()]
    if bad:
        i, c = bad[0]
        raise ValueError(f"text has {len(bad)} control characters (e.g. {c!r}, U+{ord(c):04X}, at position {i}) that "
                         "cannot be spoken; remove them or replace them with spaces, e.g. "
                         "''.join(ch if ch.isprintable() or ch.isspace() else ' ' for ch in text)")


_SCIENTIFIC = re.compile(r"(?<![\w.])(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]+))?[eE](?P<exp>[+-]?[0-9]+)(?![\w.])")


def _scientific(m: re.Match) -> str:
    """1e10 -> one times ten to the power of ten; 2.5e-3 -> two point five times ten to the power of minus three."""
    mantissa = number_to_words(int(m.group("int"))) + (f" point {_digits(m.group('frac'))}" if m.group("frac") else "")
    return f" {mantissa} times ten to the power of {number_to_words(int(m.group('exp')))} "


def normalize_text(text: str) -> str:
    """English text as it is read: abbreviations, currency, numbers spelled out; whitespace collapsed.

    Numbers: thousands separators (1,000,000 one million), ordinals (21st twenty first,
    1,000,000th one millionth), decimals (3.14 three point one four), negative numbers (-5 minus
    five), plurals (1990s nineteen nineties), years (a plain four-digit number in 1001-2999: 1999
    nineteen ninety nine, 2024 twenty twenty four, 1800 eighteen hundred, 2005 two thousand five),
    scientific notation (1e10 one times ten to the power of ten, 2.5e-3 two point five times ten
    to the power of minus three), currency ($5 five dollars, -$5 minus five dollars, $3.50 three dollars, fifty cents, £10 ten pounds, €2 two euros,
    $1.5 million one point five million dollars), percent, &, +, @. Accented Latin letters are kept
    (espeak-ng reads them), ß æ œ ø ł đ ð þ are spelled in ASCII, and letters or digits of other
    scripts are an error that names them (nothing is dropped silently), and so are control characters
    other than whitespace (NUL, escape ...: replace them with spaces first). Case is kept.
    ``"Dr. Smith paid $3.50 in 1901."`` -> ``"doctor Smith paid three dollars, fifty cents in nineteen oh one."``
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__} ({text!r:.40}); pass the sentence as a string")
    _check_control(text)
    _check_latin(text)
    text = unicodedata.normalize("NFKC", text)
    text = "".join(_LATIN_LETTERS.get(c, c) for c in text)
    text = (text.replace("\u2018", "'").replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
            .replace("\u2014", " - ").replace("\u2013", " - ").replace("\u2212", "-"))
    for pattern, full in _ABBREVIATIONS:
        text = pattern.sub(full, text)
    text = re.sub(r"([$£€])-(?=[0-9])", r"-\1", text)  # $-5 is -$5
    text = re.sub(r"(?<![\w.])-(?=[$£€]\s?[0-9])", "minus ", text)  # -$5: the sign before the money is read
    text = _MONEY.sub(_money, text)
    text = re.sub(r"(?<![\w.])-(?=[0-9])", "minus ", text)  # -5, not 1990-5 or a dash
    text = _SCIENTIFIC.sub(_scientific, text)
    text = re.sub(r"(?<![0-9])\.([0-9]+)", lambda m: f" point {_digits(m.group(1))} ", text)  # .5
    text = _NUMBER.sub(_number, text)
    for symbol, words in _SPOKEN:
        text = text.replace(symbol, words)
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r" ([!),.:;?])", r"\1", text)  # the spaces put around numbers, not before punctuation


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
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__} ({text!r:.40}); pass the sentence as a "
                            "string")
        if not text.strip():
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
