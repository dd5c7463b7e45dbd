"""CSDI's AQI-36 protocol (Tashiro et al. 2021, Table 2): MAE / RMSE / CRPS on the hidden entries
of the test months (3, 6, 9, 12), for CSDI's 50-step ancestral sampler and fast samplers, next to
the mean and linear-interpolation baselines.

GPU (the paper's setting): python benchmarks/impute_aqi36.py --epochs 200 --samples 100
CPU smoke budget:          python benchmarks/impute_aqi36.py --max-steps 600 --samples 10 --channels 32 --layers 2
"""
from multidiff.tasks.imputation.benchmark import main

if __name__ == "__main__":
    main("aqi36")
