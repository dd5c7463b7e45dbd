"""docs/refusals.md is the table docs/gen_refusals.py builds from the bad-input suite: rerun the
script after changing a ``CASES`` table."""
import importlib.util
from pathlib import Path

GEN = Path(__file__).resolve().parents[1] / "docs" / "gen_refusals.py"


def test_refusals_page_is_current():
    spec = importlib.util.spec_from_file_location("gen_refusals", GEN)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.PAGE.read_text() == gen.render(), "docs/refusals.md is out of date; run python docs/gen_refusals.py"
