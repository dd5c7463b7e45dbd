"""Same-budget forecasting benchmark on ETTh1 (hourly, 7 series): horizon 24, last 7 rolling
windows; same models, metrics and options as ``forecast_exchange.py`` (see its docstring)."""
from forecast_exchange import main

if __name__ == "__main__":
    main("etth1")
