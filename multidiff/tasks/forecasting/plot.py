"""Fan charts of probabilistic forecasts: history, median, and the 50 % and 90 % central bands."""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from ...core.io import write_atomic

__all__ = ["fan_chart", "compare_fan_charts"]


def fan_chart(result, path: str | os.PathLike, series: Optional[Sequence] = None, history: int = 100,
              actual=None, dpi: int = 100):
    """Draw one panel per series of a :class:`multidiff.tasks.forecasting.FrameForecast` to a PNG.

    ``history`` trailing rows of the training frame are shown; ``actual`` (a frame with the same
    columns) overlays the realised values. Returns the matplotlib figure.
    """
    return compare_fan_charts({None: result}, path, series, history, actual, dpi)


def compare_fan_charts(results: dict, path: str | os.PathLike, series: Optional[Sequence] = None,
                       history: int = 100, actual=None, dpi: int = 100):
    """Fan charts of several forecasts of the same window side by side: one column per entry of
    ``results`` (name -> :class:`~multidiff.tasks.forecasting.FrameForecast`, e.g. CSDI, TimeGrad
    and DeepAR), one row per series, shared y axis per row. Returns the matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    first = next(iter(results.values()))
    columns = list(first.mean.columns)
    series = columns if series is None else list(series)
    unknown = [s for s in series if s not in columns]
    if unknown:
        raise ValueError(f"series {unknown} are not in the forecast; choose from {columns}")
    if history < 0:
        raise ValueError(f"history must be >= 0 rows, got {history}")
    for name, result in results.items():
        if list(result.mean.columns) != columns or not result.mean.index.equals(first.mean.index):
            raise ValueError(f"forecast {name!r} covers other series or time steps than the first one")
    fig, axes = plt.subplots(len(series), len(results), figsize=(8 if len(results) == 1 else 4.5 * len(results),
                                                                 2.2 * len(series)),
                             squeeze=False, sharex=True, sharey="row")
    for c, (title, result) in enumerate(results.items()):
        index = result.mean.index
        lo90, lo50, med, hi50, hi90 = (np.quantile(result.samples, q, axis=0) for q in (0.05, 0.25, 0.5, 0.75, 0.95))
        for ax, name in zip(axes[:, c], series):
            j = columns.index(name)
            if result.history is not None and history:
                past = result.history[name].iloc[-history:]
                ax.plot(past.index, past.values, color="black", lw=1, label="history")
            ax.fill_between(index, lo90[:, j], hi90[:, j], color="C0", alpha=0.2, label="90 %")
            ax.fill_between(index, lo50[:, j], hi50[:, j], color="C0", alpha=0.4, label="50 %")
            ax.plot(index, med[:, j], color="C0", lw=1.5, label="median")
            if actual is not None and name in actual:
                ax.plot(actual.index, actual[name].values, color="C3", lw=1, label="actual")
            if c == 0:
                ax.set_ylabel(str(name))
        if title is not None:
            axes[0, c].set_title(str(title))
        for ax in axes[-1, :]:
            ax.tick_params(axis="x", labelrotation=30)
    axes[0, 0].legend(loc="upper left", fontsize="small", ncol=5)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    plt.close(fig)
    return fig
