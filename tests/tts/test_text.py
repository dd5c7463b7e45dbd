import pytest

from multidiff.audio import text as T
from multidiff.audio.text import SYMBOLS, TextFrontend, normalize_text, number_to_words


def test_number_to_words_by_hand():
    assert number_to_words(0) == "zero"
    assert number_to_words(15) == "fifteen"
    assert number_to_words(40) == "forty"
    assert number_to_words(99) == "ninety nine"
    assert number_to_words(305) == "three hundred five"
    assert number_to_words(1_000_001) == "one million one"


def test_normalisation_spells_out_abbreviations_money_numbers():
    assert normalize_text("Dr. Smith paid $3.50 in 1901.") == \
        "doctor Smith paid three dollars, fifty cents in nineteen oh one."
    assert normalize_text("the 21st   of May, 2005") == "the twenty first of May, two thousand five"
    assert normalize_text("10,000 men & 12.5%") == "ten thousand men and twelve point five percent"
    assert normalize_text("Mrs. Jones, 1800") == "misess Jones, eighteen hundred"


def test_char_mode_intersperses_blanks():
    fe = TextFrontend("char")
    assert fe.symbols("Hi, 2!") == "hi, two!"
    ids = fe.encode("ab")
    assert ids == [0, SYMBOLS.index("a"), 0, SYMBOLS.index("b"), 0]
    assert TextFrontend("char", add_blank=False).encode("ab") == ids[1::2]


def test_phonemes_or_fallback(monkeypatch):
    if T.espeak_available():
        fe = TextFrontend("auto")
        assert fe.mode == "phoneme"
        ph = fe.symbols("Printing, in the only sense.")
        assert ph.startswith("pɹˈɪntɪŋ,") and ph.endswith(".")
    monkeypatch.setattr(T.shutil, "which", lambda name: None)
    with pytest.warns(UserWarning, match="espeak-ng not found"):
        fe = TextFrontend("auto")
    assert fe.mode == "char"
    with pytest.raises(RuntimeError, match="apt-get install espeak-ng"):
        TextFrontend("phoneme")


@pytest.mark.parametrize("mode", ["char", "auto"])
def test_clear_errors_for_unusable_text(mode):
    fe = TextFrontend(mode)
    with pytest.raises(ValueError, match="text is empty"):
        fe.encode("   ")
    with pytest.raises(ValueError, match="no pronounceable characters"):
        fe.encode("?! ... --")
    with pytest.raises(ValueError, match="mode must be"):
        TextFrontend("ipa")
