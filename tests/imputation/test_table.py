from multidiff.tasks.imputation.evaluate import format_row, format_table


def test_result_table_by_hand():
    res = {"dataset": "AQI-36", "train_s": 12.3, "steps": 40, "eval_entries": 99, "n_samples": 5,
           "rows": [{"method": "csdi ddim-10", "NFE": 10, "MAE": 14.123456, "RMSE": 20.5, "CRPS": 0.12345,
                     "train_s": 12.3, "sample_s": 1.25},
                    {"method": "linear", "NFE": None, "MAE": 14.46, "RMSE": 22.0}]}
    assert format_table(res) == (
        "### AQI-36: multidiff trained 12 s (40 steps), 99 evaluation entries, 5 samples\n\n"
        "| method | NFE | MAE | RMSE | CRPS | training s | imputing s |\n"
        "|---|---|---|---|---|---|---|\n"
        "| csdi ddim-10 | 10 | 14.123 | 20.500 | 0.1235 | 12 | 1.2 |\n"
        "| linear | - | 14.460 | 22.000 | - | - | - |")
    assert format_row(res["rows"][1]) == "| linear | - | 14.460 | 22.000 | - | - | - |"
