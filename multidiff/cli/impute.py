"""``multidiff impute``: fill a CSV's gaps, or run a benchmark protocol with ``--dataset``."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_data_option, add_run_options, add_scale_options, rank_zero, scaled


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")


def add_parser(sub) -> None:
    p = sub.add_parser("impute", help="probabilistic imputation (a pretrained network, or CSDI from scratch)",
                       description="Fill the NaNs of a CSV's numeric columns (the pretrained network fine-tuned on "
                                   "the file, or CSDI trained from scratch), or run a benchmark protocol.")
    p.add_argument("input", nargs="?", help="CSV (or .parquet) with gaps; rows are time steps")
    p.add_argument("-o", "--output", help="where to write the filled CSV (default: INPUT_filled.csv)")
    p.add_argument("--force", action="store_true", help="allow -o to be INPUT itself (it is overwritten)")
    p.add_argument("--time-column", help="name of a timestamp column (kept as is, used for ordering checks)")
    p.add_argument("--samples", type=int, default=20, help="samples drawn per missing value")
    p.add_argument("--pretrained", default="default",
                   help="'default' (the network shipped in the package), a folder written by save_network, or "
                        "'none' to train CSDI from scratch")
    p.add_argument("--quantiles", type=_floats, default=[], help="also write INPUT_q<q>.csv for these quantiles")
    p.add_argument("--dataset", choices=["aqi36", "physionet"], help="run CSDI's benchmark protocol instead")
    add_data_option(p)
    p.add_argument("--missing-ratio", type=float, default=0.1, help="physionet: fraction of observed values hidden")
    p.add_argument("--max-time", type=float, default=120.0,
                   help="training budget in seconds (default 120; 0: the pretrained network zero-shot)")
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--max-steps", type=int, default=None, help="stop training after this many optimizer steps")
    p.add_argument("--window", type=int, default=None,
                   help="window length L (default 64 pretrained, 36 from scratch; physionet 48)")
    p.add_argument("--channels", type=int, default=32, help="CSDI's width (--pretrained none only)")
    p.add_argument("--layers", type=int, default=2, help="CSDI's residual layers (--pretrained none only)")
    add_run_options(p, "sampler steps (default 10)")
    add_scale_options(p)
    p.set_defaults(func=run, sampler="ddim", sampler_steps=10)


def run(args) -> int:
    pretrained = None if args.pretrained.lower() == "none" else args.pretrained
    params = {"epochs": args.epochs, "max_steps": args.max_steps, "max_time": args.max_time,
              "channels": args.channels, "layers": args.layers, "pretrained": pretrained,
              "sampler": args.sampler, "sampler_steps": args.sampler_steps, "device": args.device, "seed": args.seed}
    if args.window:
        params["window"] = args.window
    from ..tasks.imputation.api import DEFAULT_TRAIN_CONFIG
    from ..tasks.imputation.network import FINETUNE_TRAIN_CONFIG
    train_config = scaled(DEFAULT_TRAIN_CONFIG if pretrained is None else FINETUNE_TRAIN_CONFIG, args)
    if train_config is not None:
        params["train_config"] = train_config
    if args.dataset:
        return _benchmark(args, params)
    if not args.input:
        raise ValueError("give an INPUT csv, or --dataset aqi36|physionet")
    from ..datasets.frames import read_table, write_csv_atomic
    from ..tasks.imputation import Imputer

    src = Path(args.input)
    out = Path(args.output) if args.output else src.with_name(f"{src.stem}_filled.csv")
    if not args.force and src.exists() and out.exists() and out.resolve() == src.resolve():
        raise ValueError(f"-o {out} is the input file itself: writing there would overwrite the data with gaps; "
                         "give another path, or add --force to overwrite it")
    df = read_table(src, args.time_column)
    if args.model:
        imp = Imputer.load(args.model, device=args.device)
    else:
        imp = Imputer(time_column=args.time_column, n_samples=args.samples, **params).fit(df)
        if not rank_zero():  # the other processes of a data-parallel run: rank 0 writes the results
            return 0
        if args.save_model:
            imp.save(args.save_model)
    imp.time_column = args.time_column
    res = imp.impute(df, n_samples=args.samples, quantiles=args.quantiles or (0.5,), return_result=True)
    write_csv_atomic(res.filled, out)
    written = [out]
    for q in args.quantiles:
        qpath = out.with_name(f"{out.stem}_q{q:g}.csv")
        write_csv_atomic(res.quantiles[q], qpath)
        written.append(qpath)
    n = int(res.imputed_mask.to_numpy().sum())
    print(f"imputed {n} values in {len(res.columns)} columns; wrote {', '.join(map(str, written))}")
    if res.check is not None:
        print(res.check["message"])
    return 0


def _benchmark(args, params) -> int:
    from ..core.io import write_json_atomic
    from ..tasks.imputation.evaluate import format_table, run_aqi36, run_physionet

    if args.dataset == "aqi36":
        result = run_aqi36(args.data, n_samples=args.samples, **params)
    else:
        result = run_physionet(args.data, missing_ratio=args.missing_ratio, n_samples=args.samples, **params)
    if not rank_zero():
        return 0
    print(format_table(result))
    if args.json:
        write_json_atomic(args.json, result, indent=1, default=str)
    return 0
