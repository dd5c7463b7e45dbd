"""Bad and edge inputs to the command line, one table per sub-command (row format:
docs/gen_refusals.py; docs/refusals.md is built from these tables). A row runs the sub-command's
function directly, so that it sees the exception ``multidiff`` prints as ``error: ...`` with exit
code 2 (:func:`test_main_prints_the_error` checks that step once)."""
import numpy as np
import pandas as pd
import pytest
import torch

from multidiff.cli import build_parser, main
import multidiff.tasks.imputation  # noqa: F401  (registers the kind whose loader the message names)
import multidiff.tasks.points  # noqa: F401  (registers the kind whose loader the message names)
from multidiff.core.checkpoint import CheckpointKindError, save_checkpoint

TINY = ["--max-time", "0", "--epochs", "1", "--num-batches-per-epoch", "2", "--batch-size", "4", "--context-length", "8",
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
    save_checkpoint(d / "completer", {"w": torch.zeros(1)}, {}, kind="points.completer")
    (d / "blank.txt").write_text("\n  \n")
    (d / "two_columns.txt").write_text("1 2\n3 4\n5 6\n")
    np.save(d / "scan.npy", rng.normal(size=(20, 3)))
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
    "multidiff tts": [
        dict(id="checkpoint-missing", given="synthesize --checkpoint naming no folder",
             run=lambda d: cli("tts", "synthesize", "--text", "Hello.", "--checkpoint", d / "nope"),
             raises=FileNotFoundError, words=["no checkpoint at", "multidiff tts train --out"]),
        dict(id="checkpoint-imputer", given="synthesize --checkpoint pointing at an imputer checkpoint",
             run=lambda d: cli("tts", "synthesize", "--text", "Hello.", "--checkpoint", d / "imputer"),
             raises=CheckpointKindError, words=["'imputer' checkpoint", "'tts' checkpoints", "multidiff impute --model"]),
        dict(id="text-file-missing", given="synthesize --text-file naming no file (a raw errno after loading the voice)",
             run=lambda d: cli("tts", "synthesize", "--text-file", d / "nope.txt", "--checkpoint", d / "nope"),
             raises=FileNotFoundError, words=["--text-file", "no such file"]),
        dict(id="text-file-blank", given="synthesize --text-file holding only blank lines",
             run=lambda d: cli("tts", "synthesize", "--text-file", d / "blank.txt", "--checkpoint", d / "nope"),
             raises=ValueError, words=["holds no sentences", "one per line"]),
        dict(id="evaluate-imputer", given="evaluate --checkpoint pointing at an imputer checkpoint",
             run=lambda d: cli("tts", "evaluate", "--checkpoint", d / "imputer", "--no-asr"),
             raises=CheckpointKindError, words=["'imputer' checkpoint"]),
        dict(id="train-data-missing", given="train --data naming a folder without metadata.csv",
             run=lambda d: cli("tts", "train", "--out", d / "voice", "--data", d / "nope"), raises=FileNotFoundError,
             words=["no metadata.csv", "LJ Speech"]),
        dict(id="train-batch-size-0", given="train --batch-size 0 (trained with the preset's 16 without a word)",
             run=lambda d: cli("tts", "train", "--out", d / "voice", "--data", d / "nope", "--batch-size", 0),
             raises=ValueError, words=["batch_size", ">= 1", "got 0"]),
        dict(id="train-segment-frames-0", given="train --segment-frames 0 (was the preset's crop)",
             run=lambda d: cli("tts", "train", "--out", d / "voice", "--data", d / "nope", "--segment-frames", 0),
             raises=ValueError, words=["segment_frames", ">= 1", "got 0"]),
        dict(id="train-lr-nan", given="train --lr nan (passed the lr > 0 check)",
             run=lambda d: cli("tts", "train", "--out", d / "voice", "--data", d / "nope", "--lr", "nan"),
             raises=ValueError, words=["lr must be > 0", "nan"]),
        dict(id="train-max-minutes-0", given="train --max-minutes 0 (was reported as max_time in seconds)",
             run=lambda d: cli("tts", "train", "--out", d / "voice", "--data", d / "nope", "--max-minutes", 0),
             raises=ValueError, words=["max_minutes", "> 0", "minutes"]),
        dict(id="train-epochs-negative", given="train --epochs -1",
             run=lambda d: cli("tts", "train", "--out", d / "voice", "--data", d / "nope", "--epochs", -1),
             raises=ValueError, words=["epochs", ">= 1", "got -1"]),
    ],
    "multidiff points": [
        dict(id="model-missing", given="sample MODEL naming no folder",
             run=lambda d: cli("points", "sample", d / "nope", d / "out"), raises=FileNotFoundError,
             words=["not a multidiff checkpoint"]),
        dict(id="model-imputer", given="sample MODEL pointing at an imputer checkpoint",
             run=lambda d: cli("points", "sample", d / "imputer", d / "out"), raises=CheckpointKindError,
             words=["'imputer' checkpoint", "'points.generator'"]),
        dict(id="sample-completer", given="sample MODEL pointing at a completer",
             run=lambda d: cli("points", "sample", d / "completer", d / "out"), raises=CheckpointKindError,
             words=["'points.completer' checkpoint", "multidiff points complete"]),
        dict(id="complete-imputer", given="complete MODEL pointing at an imputer checkpoint",
             run=lambda d: cli("points", "complete", d / "imputer", d / "scan.npy", "--out", d / "out"),
             raises=CheckpointKindError, words=["'imputer' checkpoint", "'points.completer'"]),
        dict(id="partial-missing", given="complete with a scan file that does not exist (checked after the model loaded)",
             run=lambda d: cli("points", "complete", d / "completer", d / "nope.ply", "--out", d / "out"),
             raises=FileNotFoundError, words=["no such file", "nope.ply"]),
        dict(id="partial-two-columns", given="complete with a .txt scan of 2 columns",
             run=lambda d: cli("points", "complete", d / "completer", d / "two_columns.txt", "--out", d / "out"),
             raises=ValueError, words=["2 values", "x y z"]),
        dict(id="train-data-missing", given="train DATA naming no folder",
             run=lambda d: cli("points", "train", d / "nope", d / "gen"), raises=FileNotFoundError,
             words=["does not exist", "ROOT/CLASS"]),
        dict(id="train-num-points-0", given="train --num-points 0",
             run=lambda d: cli("points", "train", d / "nope", d / "gen", "--num-points", 0), raises=ValueError,
             words=["num_points", ">= 2"]),
        dict(id="train-batch-size-0", given="train --batch-size 0 (was accepted, to fail once the data were read)",
             run=lambda d: cli("points", "train", d / "nope", d / "gen", "--batch-size", 0), raises=ValueError,
             words=["batch_size", ">= 1", "got 0"]),
        dict(id="train-epochs-0-latent", given="train --model latent --epochs 0",
             run=lambda d: cli("points", "train", d / "nope", d / "gen", "--model", "latent", "--epochs", 0),
             raises=ValueError, words=["epochs", ">= 1", "got 0"]),
        dict(id="train-lr-nan", given="train --lr nan (was accepted: training on NaN)",
             run=lambda d: cli("points", "train", d / "nope", d / "gen", "--lr", "nan"), raises=ValueError,
             words=["lr must be > 0", "nan"]),
        dict(id="train-lr-negative", given="train --lr -1",
             run=lambda d: cli("points", "train", d / "nope", d / "gen", "--lr", -1), raises=ValueError,
             words=["lr must be > 0", "-1"]),
        dict(id="train-views-0", given="train --task complete --views 0",
             run=lambda d: cli("points", "train", d / "nope", d / "gen", "--task", "complete", "--views", 0),
             raises=ValueError, words=["views", ">= 1", "got 0"]),
        dict(id="train-max-shapes-0", given="train --max-shapes 0 (read every shape: a full training run)",
             run=lambda d: cli("points", "train", d / "nope", d / "gen", "--max-shapes", 0), raises=ValueError,
             words=["max_shapes", ">= 1", "got 0"]),
    ],
    "multidiff purify": [
        dict(id="checkpoint-missing", given="evaluate --checkpoint naming no folder",
             run=lambda d: cli("purify", "evaluate", "--checkpoint", d / "nope"), raises=FileNotFoundError,
             words=["not a multidiff checkpoint"]),
        dict(id="checkpoint-imputer", given="evaluate --checkpoint pointing at an imputer checkpoint",
             run=lambda d: cli("purify", "evaluate", "--checkpoint", d / "imputer"), raises=CheckpointKindError,
             words=["'imputer' checkpoint", "'purifier' checkpoints"]),
        dict(id="eps-0", given="evaluate --eps 0", run=lambda d: cli("purify", "evaluate", "--eps", 0),
             raises=ValueError, words=["--eps", "> 0", "got 0"]),
        dict(id="eps-nan", given="evaluate --eps nan", run=lambda d: cli("purify", "evaluate", "--eps", "nan"),
             raises=ValueError, words=["--eps", "> 0", "nan"]),
        dict(id="t-start-nan", given="evaluate --t-start nan", run=lambda d: cli("purify", "evaluate", "--t-start", "nan"),
             raises=ValueError, words=["--t-start", "[0, 1]", "nan"]),
        dict(id="t-start-2", given="evaluate --t-start 2", run=lambda d: cli("purify", "evaluate", "--t-start", 2),
             raises=ValueError, words=["--t-start", "[0, 1]"]),
        dict(id="n-votes-0", given="evaluate --n-votes 0", run=lambda d: cli("purify", "evaluate", "--n-votes", 0),
             raises=ValueError, words=["--n-votes", ">= 1"]),
        dict(id="n-examples-negative", given="evaluate --n-examples -1",
             run=lambda d: cli("purify", "evaluate", "--n-examples", -1), raises=ValueError,
             words=["--n-examples", ">= 1"]),
        dict(id="sampler-steps-0", given="evaluate --sampler-steps 0",
             run=lambda d: cli("purify", "evaluate", "--sampler-steps", 0), raises=ValueError,
             words=["--sampler-steps", ">= 1"]),
        dict(id="tol-nan", given="evaluate --tol nan", run=lambda d: cli("purify", "evaluate", "--tol", "nan"),
             raises=ValueError, words=["--tol", ">= 0"]),
        dict(id="train-epochs-0", given="train --epochs 0 (the classifier trained first, for 30 epochs)",
             run=lambda d: cli("purify", "train", "--epochs", 0, "--out", d / "pur"), raises=ValueError,
             words=["--epochs", ">= 1", "got 0"]),
        dict(id="train-classifier-epochs-negative", given="train --classifier-epochs -1",
             run=lambda d: cli("purify", "train", "--classifier-epochs", -1, "--out", d / "pur"), raises=ValueError,
             words=["--classifier-epochs", ">= 1"]),
        dict(id="train-width-0", given="train --width 0 (failed after the classifier had trained)",
             run=lambda d: cli("purify", "train", "--width", 0, "--out", d / "pur"), raises=ValueError,
             words=["--width", ">= 1"]),
        dict(id="train-data-missing", given="train --dataset etth1 --data naming no folder",
             run=lambda d: cli("purify", "train", "--dataset", "etth1", "--data", d / "nope", "--out", d / "pur"),
             raises=FileNotFoundError, words=["ETTh1.csv"]),
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


@pytest.mark.parametrize("case", CASES["multidiff tts"], ids=lambda c: c["id"])
def test_tts(case, check_case, ctx):
    check_case(case, ctx)
    assert not (ctx / "voice").exists()  # a refused run writes nothing


@pytest.mark.parametrize("case", CASES["multidiff points"], ids=lambda c: c["id"])
def test_points(case, check_case, ctx):
    check_case(case, ctx)
    assert not (ctx / "out").exists() and not (ctx / "gen").exists()


@pytest.mark.parametrize("case", CASES["multidiff purify"], ids=lambda c: c["id"])
def test_purify(case, check_case, ctx):
    check_case(case, ctx)
    assert not (ctx / "pur").exists()


def test_another_tasks_checkpoint_names_its_loader_in_a_fresh_process():
    """The command line imports only the task it runs; given another task's checkpoint, it still
    names that checkpoint's exact loader (the tasks register their kinds when imported)."""
    import subprocess
    import sys
    from pathlib import Path

    import multidiff

    shipped = Path(multidiff.__file__).parent / "tasks" / "imputation" / "pretrained"
    out = subprocess.run([sys.executable, "-m", "multidiff", "tts", "synthesize", "--checkpoint", str(shipped),
                          "--text", "Hello."], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert "holds a 'imputation.network' checkpoint" in out.stderr
    assert "column_model.load_network(" in out.stderr, out.stderr
