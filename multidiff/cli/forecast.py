"""``multidiff forecast``: forecast a wide CSV with CSDI forecasting or TimeGrad, or run a benchmark
protocol with ``--dataset``."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

from .common import add_data_option, add_run_options, add_scale_options, rank_zero, scale_options


def add_parser(sub) -> None:
    p = sub.add_parser("forecast", help="probabilistic forecasting with CSDI or TimeGrad",
                       description="Forecast the numeric columns of a CSV (rows = regular time steps) with CSDI "
                                   "forecasting or TimeGrad, or run the rolling-window protocol on a benchmark.")
    p.add_argument("input", nargs="?", help="wide CSV (or .parquet): a time column plus one column per series")
    p.add_argument("-o", "--output", help="long CSV of the forecast (default: INPUT_forecast.csv)")
    p.add_argument("--force", action="store_true", help="allow -o to be INPUT itself (it is overwritten)")
    p.add_argument("--time-column", default=None, help="timestamp column (default: the first column)")
    p.add_argument("--freq", help="pandas frequency (default: inferred from the timestamps)")
    p.add_argument("--horizon", type=int, help="steps to forecast (required with INPUT)")
    p.add_argument("--quantiles", type=float, nargs="+", default=[0.1, 0.5, 0.9], help="e.g. --quantiles 0.05 0.5 0.95")
    p.add_argument("--samples", type=int, default=100, help="sample paths per forecast")
    p.add_argument("--dataset", choices=["exchange_rate", "etth1"], help="run the benchmark protocol instead")
    add_data_option(p)
    p.add_argument("--forecaster", choices=["csdi", "timegrad"], default="csdi",
                   help="which model to train (forecast(df, model=...)); default csdi")
    p.add_argument("--max-time", type=float, default=40.0,
                   help="training budget in seconds (default 40); 0 for none (TimeGrad then runs --epochs)")
    p.add_argument("--context-length", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default: until --max-time; timegrad with --max-time 0: 20)")
    p.add_argument("--num-batches-per-epoch", type=int, default=None, help="default 100")
    p.add_argument("--batch-size", type=int, default=None, help="default: csdi 16, timegrad 64")
    p.add_argument("--hidden-size", type=int, default=None, help="timegrad: LSTM cells (default 40)")
    add_run_options(p, "sampler steps (default: csdi 10 with dpm_solver; timegrad all 100 with ddpm)")
    p.set_defaults(sampler=None)
    p.add_argument("--plot", help="also draw a fan chart PNG here")
    p.add_argument("--progress", action="store_true", help="show Lightning's progress bar while training")
    p.add_argument("--verbose", action="store_true", help="show Lightning's messages and warnings while training")
    add_scale_options(p)
    p.set_defaults(func=run)


def _estimator_kwargs(args) -> dict:
    """The estimator options given (both estimators take the same words); unset ones are left out,
    so the estimator's own defaults apply."""
    if args.forecaster == "csdi" and args.hidden_size is not None:
        raise ValueError("--hidden-size is a TimeGrad option; add --forecaster timegrad")
    names = {"context_length": args.context_length, "epochs": args.epochs,
             "num_batches_per_epoch": args.num_batches_per_epoch, "batch_size": args.batch_size,
             "hidden_size": args.hidden_size, "sampler": args.sampler, "sampler_steps": args.sampler_steps}
    kwargs = {k: v for k, v in names.items() if v is not None}
    if args.sampler:  # --sampler without --sampler-steps: every step (sampler_steps=None)
        kwargs["sampler_steps"] = args.sampler_steps
    if scale_options(args):
        from dataclasses import replace

        from ..tasks.forecasting import csdi, timegrad
        default = (csdi if args.forecaster == "csdi" else timegrad).DEFAULT_TRAIN_CONFIG
        kwargs["train_config"] = replace(default, **scale_options(args))
    return {"device": args.device, **kwargs}


def _load_predictor(args):
    """A predictor saved by ``--save-model`` (either kind: the folder says which); a folder that
    holds another kind of checkpoint (an imputer's ...) is refused, naming what loads it."""
    from gluonts.model.predictor import Predictor

    from ..core.checkpoint import check_kind

    path = Path(args.model)
    if not path.is_dir():
        raise FileNotFoundError(f"--model {path}: no such folder; give the folder written by multidiff forecast "
                                "... --save-model DIR")
    kinds = ("forecasting.csdi", "forecasting.timegrad")
    if (path / "weights").is_dir():
        check_kind(path / "weights", kinds)
    elif (path / "config.json").is_file():  # a multidiff checkpoint of another task: the error names its loader
        check_kind(path, kinds)
    else:
        raise FileNotFoundError(f"--model {path} holds no saved forecaster (no weights/ folder); save one with "
                                "multidiff forecast INPUT --horizon N --save-model DIR")
    predictor = Predictor.deserialize(path, device=args.device)
    if args.sampler:
        predictor.set_sampler(args.sampler, args.sampler_steps)
    return predictor


def _estimator(args, freq: str, horizon: int, target_dim: int):
    from ..tasks.forecasting.frame import make_estimator

    return make_estimator(args.forecaster, freq, horizon, target_dim, max_time=args.max_time or None, seed=args.seed,
                          progress=args.progress, verbose=args.verbose, **_estimator_kwargs(args))


def run(args) -> int:
    if args.dataset:
        return _benchmark(args)
    if not args.input:
        raise ValueError("give an INPUT csv and --horizon N, or --dataset exchange_rate|etth1")
    if args.horizon is None:
        raise ValueError("give --horizon N, the number of steps to forecast after the last row of INPUT")
    from ..core.validate import check_whole
    check_whole("--horizon", args.horizon)
    from ..datasets.frames import read_table, write_csv_atomic
    from ..tasks.forecasting import forecast

    src = Path(args.input)
    out = Path(args.output) if args.output else src.with_name(f"{src.stem}_forecast.csv")
    if not args.force and src.exists() and out.exists() and out.resolve() == src.resolve():
        raise ValueError(f"-o {out} is the input file itself: writing there would replace the data with the "
                         "forecast; give another path, or add --force to overwrite it")
    df = read_table(src)
    time_column = args.time_column or df.columns[0]
    if time_column not in df.columns:
        raise ValueError(f"--time-column {time_column!r} is not a column of {src}; columns: {list(df.columns)[:10]}")
    df, steps = _time_indexed(df, time_column, args.freq)
    predictor = _load_predictor(args) if args.model else None
    with warnings.catch_warnings():
        if predictor is None and args.save_model:
            from ..datasets.gluonts_adapters import SKIPPED_COLUMNS, frame_index, values_to_dataset

            values, columns, index, freq = frame_index(df, args.freq, allow_all_nan_columns=False)
            warnings.filterwarnings("ignore", message=f".*{SKIPPED_COLUMNS}", category=UserWarning)  # said once
            predictor = _estimator(args, freq, args.horizon, len(columns)).train(values_to_dataset(values, index, freq))
            if rank_zero():
                predictor.serialize(Path(args.save_model))
        kwargs = {} if predictor else _estimator_kwargs(args)
        result = forecast(df, args.horizon, n_samples=args.samples, quantiles=args.quantiles, freq=args.freq,
                          model=args.forecaster, max_time=args.max_time or None, predictor=predictor,
                          seed=args.seed, progress=args.progress, verbose=args.verbose, **kwargs)
    if not rank_zero():  # the other processes of a data-parallel run: rank 0 writes the results
        return 0
    long = result.to_long()
    if steps is not None:  # the placeholder dates back to the step counter, continued
        result = _on_steps(result, steps)
        long = result.to_long().rename(columns={"timestamp": time_column})
    write_csv_atomic(long, out)
    if args.plot:
        from ..tasks.forecasting import fan_chart

        fan_chart(result, args.plot)
    print(f"wrote {out} ({args.horizon} steps x {result.mean.shape[1]} series, quantiles {args.quantiles})")
    return 0


def _time_indexed(df, time_column: str, freq):
    """``df`` indexed by its time column, and ``None``; for a column of whole numbers that count
    steps (0, 1, 2 ... or any regular increasing step), ``df`` on placeholder daily dates and the
    steps, so that the forecast continues the counter instead of reading it as nanoseconds."""
    import numpy as np
    import pandas as pd

    from ..datasets.frames import parse_time

    col = df[time_column]
    if pd.api.types.is_integer_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        steps = col.to_numpy(dtype=np.int64)
        gaps = np.diff(steps)
        if len(steps) < 2 or (gaps <= 0).any() or (gaps != gaps[0]).any():
            raise ValueError(f"time column {time_column!r} holds whole numbers read as a step counter, but they do not "
                             "increase by a constant step; sort the rows and fill the missing steps (as NaN rows), or "
                             "give a column of timestamps with --time-column")
        if freq:
            raise ValueError(f"--freq does not apply to the step counter {time_column!r} (whole numbers, not "
                             "timestamps); leave it out, or give a column of timestamps with --time-column")
        index = pd.date_range("2000-01-01", periods=len(df), freq="D", name=time_column)
        return df.drop(columns=time_column).set_index(index), steps
    time = parse_time(col, time_column, numbers=False)
    return df.drop(columns=time_column).set_index(pd.DatetimeIndex(time, name=time_column)), None


def _on_steps(result, steps):
    """A forecast made on placeholder dates, indexed by the step counter ``steps`` continued."""
    import numpy as np
    import pandas as pd
    from dataclasses import replace

    step = int(steps[1] - steps[0])
    future = pd.Index(steps[-1] + step * np.arange(1, len(result.mean) + 1), name=result.history.index.name)
    return replace(result, quantiles={q: f.set_axis(future) for q, f in result.quantiles.items()},
                   mean=result.mean.set_axis(future),
                   history=result.history.set_axis(pd.Index(steps, name=result.history.index.name)))


def _benchmark(args) -> int:
    from ..core.io import write_text_atomic
    from ..datasets.gluonts_adapters import load_benchmark
    from ..tasks.forecasting import evaluate

    df, train, test, freq, horizon = load_benchmark(args.dataset, args.data)
    if args.model:
        predictor = _load_predictor(args)
    else:
        predictor = _estimator(args, freq, horizon, df.shape[1]).train(train)
        if args.save_model and rank_zero():
            predictor.serialize(Path(args.save_model))
    metrics = {"dataset": args.dataset, "forecaster": args.forecaster, "sampler": predictor.sampler,
               "sampler_steps": predictor.sampler_steps,
               **evaluate(predictor, test, num_samples=args.samples, seed=args.seed)}
    if not rank_zero():
        return 0
    text = json.dumps(metrics, indent=1)
    print(text)
    if args.json:
        write_text_atomic(args.json, text)
    return 0

