import numpy as np

from multidiff.tasks.imputation.benchmark import format_table, run_physionet


def test_physionet_protocol_runs_and_reports_all_rows(data_dir):
    res = run_physionet(data_dir / "physionet2012", missing_ratio=0.1, limit=40, n_samples=2,
                        samplers=(("ddpm", 10), ("dpm_solver", 3)), channels=8, layers=1, heads=2,
                        num_steps=10, epochs=1, max_steps=3, progress=False, device="cpu")
    methods = [r["method"] for r in res["rows"]]
    assert methods == ["CSDI ddpm-10", "CSDI dpm_solver-3", "mean", "linear interpolation"]
    assert res["eval_entries"] > 0 and res["steps"] == 2  # 28 training patients / batch 16 -> 2 steps
    for r in res["rows"]:
        assert np.isfinite(r["MAE"]) and np.isfinite(r["RMSE"]) and r["RMSE"] >= r["MAE"]
    assert res["rows"][1]["NFE"] == 3
    assert "| mean |" in format_table(res)
