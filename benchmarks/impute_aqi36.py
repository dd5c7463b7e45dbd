"""CSDI's AQI-36 protocol (Tashiro et al. 2021, Table 2): MAE / RMSE / CRPS on the hidden entries
of the test months (3, 6, 9, 12), for CSDI's 50-step ancestral sampler and fast samplers, next to
what a user would pick instead (mean, interpolation, sklearn, PyPOTS SAITS/CSDI), trained for the same time.

CPU (2 cores), the issue-9 table:  python benchmarks/impute_aqi36.py --max-time 1200 --samples 10 --pypots
GPU (the paper's budget):          python benchmarks/impute_aqi36.py --max-time 36000 --samples 100 --channels 64 --layers 4 --heads 8 --device cuda
"""
from impute_cli import main

if __name__ == "__main__":
    main("aqi36")
