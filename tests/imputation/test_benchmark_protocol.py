import importlib.util
from pathlib import Path

import numpy as np

from multidiff.tasks.imputation.evaluate import format_table, run_physionet, score_imputation

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _benchmark_cli():
    spec = importlib.util.spec_from_file_location("impute_cli", BENCHMARKS / "impute_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_physionet_protocol_runs_and_reports_our_rows_then_the_peers(data_dir):
    res = run_physionet(data_dir / "physionet2012", missing_ratio=0.1, limit=40, n_samples=2,
                        samplers=(("ddpm", 10), ("dpm_solver", 3)), peers=("mean", "linear interpolation"),
                        channels=8, layers=1, heads=2, num_train_steps=10, epochs=5, max_steps=3, max_time=None,
                        progress=False, device="cpu", pretrained=None)
    methods = [r["method"] for r in res["rows"]]
    assert methods == ["multidiff ddpm-10", "multidiff dpm_solver-3", "mean", "linear interpolation"]
    # 28 training patients / batch 16 -> 2 steps an epoch: the step limit ends training in epoch 2
    assert res["stopped_by"] == "max_steps" and res["steps"] == 3
    assert res["eval_entries"] > 0
    for r in res["rows"]:
        assert np.isfinite(r["MAE"]) and np.isfinite(r["RMSE"]) and r["RMSE"] >= r["MAE"]
    assert [r["NFE"] for r in res["rows"][:2]] == [10, 3]
    assert all("CRPS" in r for r in res["rows"][:2]) and all("CRPS" not in r for r in res["rows"][2:])
    table = format_table(res)
    assert "| multidiff dpm_solver-3 | 3 |" in table and "| mean |" in table and "| linear interpolation |" in table


def test_benchmark_command_line_rejects_an_unknown_peer(capsys):
    import pytest
    with pytest.raises(SystemExit):
        _benchmark_cli().main("aqi36", ["--peers", "mean,sklearn KNN", "--data", "/nonexistent"])
    assert "unknown peers ['sklearn KNN']" in capsys.readouterr().err


def test_score_imputation_scores_the_hidden_entries_alone():
    """MAE and RMSE by hand on the masked entries (the others are off by 100 and do not count); CRPS
    only with samples, 0 for samples all equal to the target."""
    target = np.array([[1.0, 2.0], [3.0, 4.0]])
    mask = np.array([[1.0, 0.0], [1.0, 1.0]])
    point = target + np.array([[1.0, 100.0], [-2.0, 2.0]])
    row = score_imputation(point, None, target, mask)
    assert set(row) == {"MAE", "RMSE"} and np.isclose(row["MAE"], 5 / 3) and np.isclose(row["RMSE"], np.sqrt(9 / 3))
    exact = score_imputation(target, np.stack([target] * 4), target, mask)
    assert exact["MAE"] == exact["RMSE"] == 0 and abs(exact["CRPS"]) < 1e-12
