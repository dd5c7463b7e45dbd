"""CSDI's PhysioNet 2012 protocol (Tashiro et al. 2021, Table 3): hide 10/50/90 % of the observed
values, MAE / RMSE / CRPS on them for the test patients (normalised units), for CSDI's 50-step
ancestral sampler and fast samplers, next to the mean and linear-interpolation baselines.

CPU (2 cores), the issue-9 run:  python benchmarks/impute_physionet.py --max-time 1800 --samples 10 --samplers ddim:10
GPU (the paper's budget):        python benchmarks/impute_physionet.py --max-time 36000 --samples 100 --channels 64 --layers 4 --heads 8 --device cuda
"""
from impute_cli import main

if __name__ == "__main__":
    main("physionet")
