"""Fan charts of probabilistic forecasts: history, median, and the 50 % and 90 % central bands."""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from ...core.checkpoint import write_atomic

__all__ = ["fan_chart"]


def fan_chart(result, path: str | os.PathLike, series: Optional[Sequence] = None, history: int = 100,
              actual=None, dpi: int = 100):
    """Draw one panel per series of a :class:`multidiff.tasks.forecasting.FrameForecast` to a PNG.

    ``history`` trailing rows of the training frame are shown; ``actual`` (a frame with the same
    columns) overlays the realised values. Returns the matplotlib figure.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    columns = list(result.mean.columns)
    series = columns if series is None else list(series)
    unknown = [s for s in series if s not in columns]
    if unknown:
        raise ValueError(f"series {unknown} are not in the forecast; choose from {columns}")
    if history < 0:
        raise ValueError(f"history must be >= 0 rows, got {history}")
    index = result.mean.index
    band = lambda q: np.quantile(result.samples, q, axis=0)  # (H, D)
    lo90, lo50, med, hi50, hi90 = (band(q) for q in (0.05, 0.25, 0.5, 0.75, 0.95))
    fig, axes = plt.subplots(len(series), 1, figsize=(8, 2.2 * len(series)), squeeze=False, sharex=True)
    for ax, name in zip(axes[:, 0], series):
        j = columns.index(name)
        if result.history is not None and history:
            past = result.history[name].iloc[-history:]
            ax.plot(past.index, past.values, color="black", lw=1, label="history")
        ax.fill_between(index, lo90[:, j], hi90[:, j], color="C0", alpha=0.2, label="90 %")
        ax.fill_between(index, lo50[:, j], hi50[:, j], color="C0", alpha=0.4, label="50 %")
        ax.plot(index, med[:, j], color="C0", lw=1.5, label="median")
        if actual is not None and name in actual:
            ax.plot(actual.index, actual[name].values, color="C3", lw=1, label="actual")
        ax.set_ylabel(str(name))
    axes[0, 0].legend(loc="upper left", fontsize="small", ncol=5)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    plt.close(fig)
    return fig
