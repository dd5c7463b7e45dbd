"""TimeGrad benchmark on ETTh1 (hourly, 7 series): horizon 24, last 7 rolling windows; same
metrics, samplers and baselines as ``forecast_exchange.py`` (see its docstring for options)."""
from forecast_exchange import main

if __name__ == "__main__":
    main("etth1")
