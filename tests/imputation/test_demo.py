"""`make demo` end to end on a tiny budget: trains, imputes March, writes the CSV and the picture."""
import pandas as pd
import pytest

from multidiff.demo import main


@pytest.mark.slow  # make demo end to end
def test_demo_writes_the_filled_month_and_the_picture(tmp_path, data_dir, capsys, monkeypatch):
    monkeypatch.setenv("MULTIDIFF_DATA", str(data_dir))
    assert main(["--out", str(tmp_path), "--max-time", "2", "--samples", "2", "--device", "cpu"]) == 0
    filled = pd.read_csv(tmp_path / "aqi36_march_filled.csv")
    assert len(filled) == 744 and filled.columns[0] == "datetime"
    png = (tmp_path / "aqi36_station.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    out = capsys.readouterr().out
    assert "| multidiff ddim-10 |" in out and "| linear interpolation |" in out
