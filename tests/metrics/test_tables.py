import pytest

from multidiff.metrics.tables import markdown_table


def test_markdown_table_by_hand():
    table = markdown_table(["method", "NFE", "MAE"], [["ddim", 10, 0.12345], ["a|b", None, 2.0]],
                           formats=[None, "%d", lambda v: f"{v:.2f}"])
    assert table == ("| method | NFE | MAE |\n"
                     "|---|---|---|\n"
                     "| ddim | 10 | 0.12 |\n"
                     "| a\\|b | - | 2.00 |")
    assert markdown_table(["x"], [], missing="") == "| x |\n|---|"
    assert markdown_table(["x", "y"], [[None, "1\n2"]], missing="") == "| x | y |\n|---|---|\n|  | 1 2 |"
    with pytest.raises(ValueError, match="row 0 has 1 cells for 2 columns"):
        markdown_table(["x", "y"], [[1]])
    with pytest.raises(ValueError, match="formats has 1 entries for 2 columns"):
        markdown_table(["x", "y"], [], formats=["%d"])
