"""Pictures of point clouds."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ...core.io import write_atomic
from ...datasets.pointclouds import check_points

__all__ = ["render"]


def render(clouds: Sequence, path: str | Path, titles: Optional[Sequence[str]] = None, cols: Optional[int] = None,
           size: float = 2.2, point_size: Optional[float] = None, dpi: int = 90, up: str = "z") -> Path:
    """Render clouds to a PNG grid with matplotlib 3D scatter, atomically; ``up`` is the vertical
    axis ("z" for ModelNet, "y" for ShapeNet as PointFlow distributes it).
    ``point_size`` defaults to a marker area that keeps sparse and dense clouds readable."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if up not in ("y", "z"):
        raise ValueError(f"up must be 'y' or 'z', got {up!r}")
    order = [0, 1, 2] if up == "z" else [0, 2, 1]
    arrs = [check_points(c, f"cloud {i}")[:, order] for i, c in enumerate(clouds)]
    if not arrs:
        raise ValueError("no clouds to render")
    cols = cols or min(len(arrs), 4)
    rows = -(-len(arrs) // cols)
    fig = plt.figure(figsize=(size * cols, size * rows))
    for i, a in enumerate(arrs):
        ax = fig.add_subplot(rows, cols, i + 1, projection="3d")
        s = point_size if point_size is not None else float(np.clip(2000 / len(a), 0.5, 8))
        ax.scatter(a[:, 0], a[:, 1], a[:, 2], s=s, c=a[:, 2], cmap="viridis", linewidths=0)
        lo, hi = a.min(0), a.max(0)
        mid, half = (lo + hi) / 2, (hi - lo).max() / 2
        ax.set_xlim(mid[0] - half, mid[0] + half), ax.set_ylim(mid[1] - half, mid[1] + half)
        ax.set_zlim(mid[2] - half, mid[2] + half)
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    path = Path(path)
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    plt.close(fig)
    return path
