"""CSDI's PhysioNet 2012 protocol (Tashiro et al. 2021, Table 3): hide 10/50/90 % of observed
values, MAE / RMSE / CRPS on them for the test patients (normalised units), for CSDI's 50-step
ancestral sampler and fast samplers, next to the mean and linear-interpolation baselines.

GPU (the paper's setting): python benchmarks/impute_physionet.py --epochs 200 --samples 100 --missing-ratio 0.1
CPU smoke budget:          python benchmarks/impute_physionet.py --max-steps 300 --samples 8
"""
import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from multidiff.core.checkpoint import write_atomic
from multidiff.core.device import resolve_device
from multidiff.tasks.imputation.benchmark import format_table, run_physionet


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--data", default=None)
    p.add_argument("--missing-ratio", type=float, default=0.1)
    p.add_argument("--out", default="benchmarks/out/impute_physionet.json")
    a = p.parse_args()
    dev = resolve_device(a.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({platform.processor() or 'x86_64'}, {torch.get_num_threads()} threads)"
    t0 = time.time()
    res = run_physionet(a.data, missing_ratio=a.missing_ratio, n_samples=a.samples, epochs=a.epochs, max_steps=a.max_steps, batch_size=a.batch_size,
                    channels=a.channels, device=a.device, progress=True)
    res.update(device=name, date=time.strftime("%Y-%m-%d"), command="python " + " ".join(sys.argv),
               wall_s=time.time() - t0)
    print(f"device: {name}  date: {res['date']}  command: {res['command']}")
    print(format_table(res))
    write_atomic(a.out, lambda tmp: Path(tmp).write_text(json.dumps(res, indent=1, default=str)))


if __name__ == "__main__":
    main()
