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


# Issue 14: each case with the words a reader says (hand-written, not produced by the code)
@pytest.mark.parametrize("text,words", [
    # separators and ordinals
    ("1,000,000", "one million"),
    ("1,000,000th", "one millionth"),
    ("1,500 men", "one thousand five hundred men"),  # a separator marks a quantity: not a year
    ("1,234.5", "one thousand two hundred thirty four point five"),
    ("21st", "twenty first"),
    ("3rd", "third"),
    ("2nd", "second"),
    ("12th", "twelfth"),
    ("the 20th century", "the twentieth century"),
    ("100th", "one hundredth"),
    ("101st", "one hundred first"),
    # decimals, signs, plurals
    ("3.14", "three point one four"),
    ("0.5", "zero point five"),
    (".5", "point five"),
    ("-5 degrees", "minus five degrees"),
    ("the 1990s", "the nineteen nineties"),
    ("in the 80s", "in the eighties"),
    # currency
    ("$5", "five dollars"),
    ("$1", "one dollar"),
    ("$3.50", "three dollars, fifty cents"),
    ("$0.99", "ninety nine cents"),
    ("$0.01", "one cent"),
    ("$1,000,000", "one million dollars"),
    ("$1.5 million", "one point five million dollars"),
    ("£10", "ten pounds"),
    ("£1.01", "one pound, one penny"),
    ("£2.50", "two pounds, fifty pence"),
    ("€2", "two euros"),
    ("€1", "one euro"),
    # years
    ("1999", "nineteen ninety nine"),
    ("in 2024", "in twenty twenty four"),
    ("in 1901.", "in nineteen oh one."),
    ("1800", "eighteen hundred"),
    ("2000", "two thousand"),
    ("2005", "two thousand five"),
    ("2010", "twenty ten"),
    ("1000", "one thousand"),
    ("3000", "three thousand"),
    # percentages and symbols
    ("50%", "fifty percent"),
    ("12.5% of 40", "twelve point five percent of forty"),
    ("salt & pepper", "salt and pepper"),
    ("2 + 2", "two plus two"),
    ("10am", "ten am"),
    ("B12", "B twelve"),
    # letters: accents kept for espeak-ng, a few Latin letters spelled in ASCII
    ("café", "café"),
    ("Straße", "Strasse"),
    ("Ærø", "Aero"),
])
def test_normalisation_table(text, words):
    assert normalize_text(text) == words


@pytest.mark.parametrize("text,foreign,named", [
    ("Привет", list("Привет"), ["'П' (U+041F CYRILLIC CAPITAL LETTER PE)", "'т' (U+0442 CYRILLIC SMALL LETTER TE)"]),
    ("東京 is big", ["東", "京"], ["'東' (U+6771 CJK UNIFIED IDEOGRAPH-6771)", "'京'"]),
    ("alpha α", ["α"], ["'α' (U+03B1 GREEK SMALL LETTER ALPHA)"]),
    ("room ٣", ["٣"], ["'٣' (U+0663 ARABIC-INDIC DIGIT THREE)"]),
])
@pytest.mark.parametrize("mode", ["char", "auto"])
def test_non_latin_text_is_an_error_naming_the_characters(text, foreign, named, mode):
    """Issue 14: "Привет" vanished and "東京" was read as "chinese letter"; now nothing is dropped silently."""
    with pytest.raises(ValueError, match="outside the Latin alphabet") as err:
        TextFrontend(mode).encode(text)
    assert all(n in str(err.value) for n in named)
    assert "transliterate" in str(err.value)
    assert T.foreign_characters(text) == foreign


def test_accented_latin_letters_are_read():
    assert TextFrontend("char").symbols("Café, naïve") == "cafe, naive"
    assert T.foreign_characters("Café naïve Straße Ærø") == []


@pytest.mark.parametrize("bad", [None, 123, 1.5, b"hello", ["hello"]])
def test_text_of_the_wrong_type_says_its_type(bad):
    """Issue 14: None or 123 said "text is empty"."""
    with pytest.raises(TypeError, match=f"text must be a str, got {type(bad).__name__}"):
        TextFrontend("char").encode(bad)
    with pytest.raises(TypeError, match=f"text must be a str, got {type(bad).__name__}"):
        normalize_text(bad)


@pytest.mark.parametrize("empty", ["", "   ", "\n\t"])
def test_empty_text_is_a_value_error(empty):
    with pytest.raises(ValueError, match="text is empty"):
        TextFrontend("char").encode(empty)
