"""Score a saved AQI-36 imputer (default: the issue-9 run's benchmarks/out/aqi36_model) on CSDI's
test months with ddim-10 and 10 samples, with today's code: shows whether a refactor left the
numbers as they were.

    python benchmarks/impute_aqi36_saved.py [MODEL_DIR]
"""
import argparse
import json
import time

import numpy as np
import torch

from multidiff.core.provenance import Run
from multidiff.datasets.aqi36 import load_aqi36
from multidiff.tasks.imputation import Imputer
from multidiff.tasks.imputation.evaluate import score_imputation


def main(path: str = "benchmarks/out/aqi36_model") -> dict:
    torch.set_num_threads(1)
    imp = Imputer.load(path)
    data = load_aqi36(None)
    _, _, test_months = data.split(1)
    sel = [data.ground.index.month == m for m in test_months]
    inputs = [data.missing[s].to_numpy() for s in sel]
    target = np.concatenate([np.nan_to_num(data.ground[s].to_numpy()) for s in sel])
    mask = np.concatenate([data.eval_mask[s].to_numpy() for s in sel])
    imp.sampler, imp.sampler_steps = "ddim", 10
    run = Run()
    t0 = time.perf_counter()
    samples = np.concatenate([imp.sample(x, 10) for x in inputs], axis=1)
    out = {"model": path, "sampler": "ddim-10", "sample_s": time.perf_counter() - t0,
           **score_imputation(np.median(samples, 0), samples, target, mask), **run.provenance()}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", nargs="?", default="benchmarks/out/aqi36_model", help="the saved imputer")
    main(ap.parse_args().model_dir)
