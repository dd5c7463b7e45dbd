"""docs/notebooks/forecasting.ipynb runs top to bottom (tiny settings)."""
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "notebooks" / "forecasting.ipynb"


@pytest.mark.slow  # ~30 s: runs the whole notebook
def test_notebook_executes(data_dir, monkeypatch, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("MULTIDIFF_DATA", str(data_dir))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel's torch: tiny models, shared CPU
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "CRPS-sum (GluonTS)" in outputs and "True" in outputs
