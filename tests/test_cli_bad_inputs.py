"""Bad and edge inputs to the command line, one table per sub-command (row format:
docs/gen_refusals.py; docs/refusals.md is built from these tables). A row runs the sub-command's
function directly, so that it sees the exception ``multidiff`` prints as ``error: ...`` with exit
code 2 (:func:`test_main_prints_the_error` checks that step once)."""
import numpy as np
import pandas as pd
import pytest
import torch

from multidiff.cli import build_parser, main
from multidiff.core.checkpoint import CheckpointKindError, save_checkpoint

TINY = ["--max-time", "0", "--epochs", "1", "--batches-per-epoch", "2", "--batch-size", "4", "--context-length", "8",
        "--samples", "8"]


def cli(*argv):
    args = build_parser().parse_args([str(a) for a in argv])
    return args.func(args)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """CSV files a user might give, and a folder holding an imputer checkpoint."""
    d = tmp_path_factory.mktemp("cli_bad")
    rng = np.random.default_rng(0)
    values = {"a": np.cumsum(rng.normal(size=40)), "b": rng.normal(size=40)}
    pd.DataFrame({"step": np.arange(40), **values}).to_csv(d / "steps.csv", index=False)
    pd.DataFrame({"step": np.arange(0, 400, 10), **values}).to_csv(d / "steps10.csv", index=False)
    pd.DataFrame({"step": np.r_[0:20, 21:41], **values}).to_csv(d / "steps_gap.csv", index=False)
    pd.DataFrame({"month": pd.date_range("2000-01-01", periods=40, freq="MS"), **values}).to_csv(d / "monthly.csv",
                                                                                                index=False)
    dates = [str(t.date()) for t in pd.date_range("2000-01-01", periods=40, freq="D")]
    pd.DataFrame({"date": dates[:3] + ["31/02/2000"] + dates[4:], **values}).to_csv(d / "bad_date.csv", index=False)
    pd.DataFrame({"date": dates[:3] + [""] + dates[4:], **values}).to_csv(d / "nat.csv", index=False)
    save_checkpoint(d / "imputer", {"w": torch.zeros(1)}, {}, kind="imputer")
    return d


def _forecast_file(d, name, *extra):
    """Run ``multidiff forecast NAME --horizon 3`` with a tiny budget; the forecast file it wrote."""
    out = d / f"{name}_out.csv"
    assert cli("forecast", d / name, "--horizon", 3, "-o", out, *TINY, *extra) == 0
    return pd.read_csv(out)


def _continues(column, first):
    """The forecast file holds 3 steps of 2 series, continuing ``column`` from ``first``."""
    def check(out):
        assert list(out.columns[:2]) == [column, "series"] and len(out) == 6
        assert str(out[column].iloc[0]) == first, out[column].tolist()
        assert np.isfinite(out[["mean", "q0.5"]].to_numpy()).all()
    return check


CASES = {
    "multidiff forecast": [
        dict(id="no-input", given="no INPUT and no --dataset", run=lambda d: cli("forecast", "--horizon", 3),
             raises=ValueError, words=["give an INPUT csv"]),
        dict(id="no-horizon", given="INPUT without --horizon", run=lambda d: cli("forecast", d / "monthly.csv"),
             raises=ValueError, words=["--horizon N"]),
        dict(id="horizon-0", given="--horizon 0 (said 'give an INPUT csv')",
             run=lambda d: cli("forecast", d / "monthly.csv", "--horizon", 0), raises=ValueError,
             words=["--horizon must be a whole number >= 1, got 0"]),
        dict(id="missing-file", given="an INPUT that does not exist",
             run=lambda d: cli("forecast", d / "nope.csv", "--horizon", 3), raises=FileNotFoundError,
             words=["no such file"]),
        dict(id="step-counter", given="a first column of integers 0, 1, 2 ... (was read as nanoseconds after 1970)",
             run=lambda d: _forecast_file(d, "steps.csv"), returns="the counter continued: step 40, 41, 42",
             check=_continues("step", "40")),
        dict(id="step-counter-by-10", given="a step counter 0, 10, 20 ...",
             run=lambda d: _forecast_file(d, "steps10.csv"), returns="the counter continued: 400, 410, 420",
             check=_continues("step", "400")),
        dict(id="step-counter-gap", given="a step counter with a missing step",
             run=lambda d: cli("forecast", d / "steps_gap.csv", "--horizon", 3), raises=ValueError,
             words=["step counter", "constant step"]),
        dict(id="step-counter-freq", given="a step counter with --freq D",
             run=lambda d: cli("forecast", d / "steps.csv", "--horizon", 3, "--freq", "D"), raises=ValueError,
             words=["--freq does not apply", "step counter"]),
        dict(id="monthly", given="month-start dates",
             run=lambda d: _forecast_file(d, "monthly.csv"), returns="months continued: 2003-05-01 ...",
             check=_continues("timestamp", "2003-05-01")),
        dict(id="unparsable-date", given="a date '31/02/2000' among ISO dates",
             run=lambda d: cli("forecast", d / "bad_date.csv", "--horizon", 3), raises=ValueError,
             words=["time column 'date'", "not timestamps", "31/02/2000"]),
        dict(id="missing-date", given="an empty date cell (NaT; was reported as 'not sorted')",
             run=lambda d: cli("forecast", d / "nat.csv", "--horizon", 3), raises=ValueError,
             words=["missing timestamps (NaT)"]),
        dict(id="time-column-absent", given="--time-column naming no column",
             run=lambda d: cli("forecast", d / "monthly.csv", "--horizon", 3, "--time-column", "when"),
             raises=ValueError, words=["--time-column 'when'", "columns"]),
        dict(id="model-imputer", given="--model pointing at an imputer checkpoint",
             run=lambda d: cli("forecast", d / "monthly.csv", "--horizon", 3, "--model", d / "imputer"),
             raises=CheckpointKindError, words=["'imputer' checkpoint", "multidiff impute --model"]),
        dict(id="model-missing", given="--model pointing at no folder",
             run=lambda d: cli("forecast", d / "monthly.csv", "--horizon", 3, "--model", d / "nope"),
             raises=FileNotFoundError, words=["no such folder", "--save-model"]),
        dict(id="output-is-input", given="-o equal to INPUT",
             run=lambda d: cli("forecast", d / "monthly.csv", "--horizon", 3, "-o", d / "monthly.csv"),
             raises=ValueError, words=["input file itself", "--force"]),
        dict(id="hidden-size-csdi", given="--hidden-size with the CSDI forecaster",
             run=lambda d: cli("forecast", d / "monthly.csv", "--horizon", 3, "--hidden-size", 8), raises=ValueError,
             words=["TimeGrad option", "--forecaster timegrad"]),
    ],
    "multidiff impute": [
        dict(id="no-input", given="no INPUT and no --dataset", run=lambda d: cli("impute"), raises=ValueError,
             words=["give an INPUT csv"]),
        dict(id="output-is-input", given="-o equal to INPUT (overwrote the input without asking)",
             run=lambda d: cli("impute", d / "monthly.csv", "-o", d / "monthly.csv"), raises=ValueError,
             words=["input file itself", "--force"]),
        dict(id="missing-file", given="an INPUT that does not exist", run=lambda d: cli("impute", d / "nope.csv"),
             raises=FileNotFoundError, words=["no such file"]),
    ],
}


@pytest.mark.parametrize("case", CASES["multidiff forecast"], ids=lambda c: c["id"])
def test_forecast(case, check_case, ctx):
    check_case(case, ctx)


@pytest.mark.parametrize("case", CASES["multidiff impute"], ids=lambda c: c["id"])
def test_impute(case, check_case, ctx):
    before = (ctx / "monthly.csv").read_bytes()
    check_case(case, ctx)
    assert (ctx / "monthly.csv").read_bytes() == before  # the input is never written


def test_main_prints_the_error(ctx, capsys):
    """``multidiff`` turns a row's exception into ``multidiff TASK: error: MESSAGE`` and exit code 2."""
    assert main(["forecast", str(ctx / "monthly.csv"), "--horizon", "0"]) == 2
    assert "multidiff forecast: error: --horizon must be a whole number >= 1, got 0" in capsys.readouterr().err
