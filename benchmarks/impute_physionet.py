"""CSDI's PhysioNet 2012 protocol (Tashiro et al. 2021, Table 3): hide 10/50/90 % of the observed
values, MAE / RMSE / CRPS on them for the test patients (normalised units), for CSDI's 50-step
ancestral sampler and fast samplers, next to the mean and linear-interpolation baselines.

GPU (the paper's setting): python benchmarks/impute_physionet.py --epochs 200 --samples 100 --missing-ratio 0.1
CPU smoke budget:          python benchmarks/impute_physionet.py --limit 600 --max-steps 300 --samples 8
"""
from multidiff.tasks.imputation.benchmark import main

if __name__ == "__main__":
    main("physionet")
