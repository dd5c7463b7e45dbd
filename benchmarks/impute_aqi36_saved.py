"""Score a saved AQI-36 imputer (default: the issue-9 run's benchmarks/out/aqi36_model) on CSDI's
test months with ddim-10 and 10 samples, with today's code: shows whether a refactor left the
numbers as they were.

    python benchmarks/impute_aqi36_saved.py [MODEL_DIR]
"""
import json
import os
import sys
import time

import numpy as np
import torch

from multidiff.datasets.aqi36 import load_aqi36
from multidiff.tasks.imputation import Imputer
from multidiff.tasks.imputation.evaluate import _score


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
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    samples = np.concatenate([imp.sample_array(x, 10) for x in inputs], axis=1)
    out = {"model": path, "sampler": "ddim-10", "sample_s": time.perf_counter() - t0, "load": load,
           **_score(np.median(samples, 0), samples, target, mask)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main(*sys.argv[1:])
