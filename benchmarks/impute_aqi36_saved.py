"""Score a saved AQI-36 imputer (default: the issue-9 run's benchmarks/out/aqi36_model) on the CSDI test
months with ddim-10 and 10 samples, with the code of today: shows that a refactor left the numbers
unchanged.

    python benchmarks/impute_aqi36_saved.py [MODEL_DIR]
"""
import json, time, numpy as np, os
from multidiff.tasks.imputation import Imputer
from multidiff.datasets.aqi36 import load_aqi36
from multidiff.tasks.imputation.evaluate import _score
import torch; torch.set_num_threads(1)
import sys
imp = Imputer.load(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/out/aqi36_model")
data = load_aqi36(None)
train, valid, test_months = data.split(1)
sel = [data.ground.index.month == m for m in test_months]
inputs = [data.missing[s].to_numpy() for s in sel]
target = np.concatenate([np.nan_to_num(data.ground[s].to_numpy()) for s in sel])
mask = np.concatenate([data.eval_mask[s].to_numpy() for s in sel])
imp.sampler, imp.sampler_steps = "ddim", 10
load = os.getloadavg()[0]; t0 = time.perf_counter()
samples = np.concatenate([imp.sample_array(x, 10) for x in inputs], axis=1)
print(json.dumps({"sampler": "ddim-10", "sample_s": time.perf_counter() - t0, "load": load,
                  **_score(np.median(samples, 0), samples, target, mask)}))
