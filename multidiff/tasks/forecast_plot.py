"""Deprecated location: use :mod:`multidiff.tasks.forecasting.plot` (or ``multidiff.tasks.forecasting.fan_chart``)."""
import warnings

from .forecasting.plot import fan_chart

warnings.warn("multidiff.tasks.forecast_plot is deprecated and will be removed in the next release; import "
              "fan_chart from multidiff.tasks.forecasting", DeprecationWarning, stacklevel=2)

__all__ = ["fan_chart"]
