"""Figures of a purification evaluation: the example grid (:func:`save_grid`) and the convergence
curve (:func:`save_convergence_plot`) of a :class:`~.report.RobustnessReport`, written as PNG."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ...core.io import write_atomic
from .report import RobustnessReport, in_points

__all__ = ["save_grid", "save_convergence_plot"]


def save_grid(report: RobustnessReport, path: str | Path, attack: str, classes: Optional[Sequence[str]] = None) -> Path:
    """PNG of clean / adversarial / purified inputs with the true label ``y`` and the classifier's
    prediction ``p`` on each shown input (images as
    grey pictures, 1-D signals as line plots of their first channels), written atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ex = report.examples
    if not ex or f"adv_{attack}" not in ex:
        raise ValueError(f"the report holds no examples for attack {attack!r}; run evaluate(...) with it first")
    name = lambda i: str(classes[i]) if classes is not None else str(i)
    clean_pred = [report.predictions["clean"]["undefended"][int(i)] for i in ex["index"]]
    rows = [("clean", ex["clean"], clean_pred),
            (f"adversarial ({attack})", ex[f"adv_{attack}"], ex[f"bare_{attack}"].tolist()),
            ("purified", ex[f"purified_{attack}"], ex[f"pred_{attack}"].tolist())]
    n = len(ex["clean"])
    if n == 0:
        raise ValueError("the report keeps no example inputs; run evaluate(..., n_examples_kept=8)")
    fig, axes = plt.subplots(3, n, figsize=(1.6 * n, 5.2), squeeze=False)
    for r, (title, xs, pred) in enumerate(rows):
        for i in range(n):
            ax = axes[r][i]
            img = xs[i]
            if img.dim() == 3:
                ax.imshow(img[0].numpy(), cmap="gray", vmin=report.settings["purifier"]["data_range"][0],
                          vmax=report.settings["purifier"]["data_range"][1])
                ax.set_xticks([]), ax.set_yticks([])
            else:
                for ch in img[:3]:
                    ax.plot(ch.numpy(), lw=0.8)
                ax.set_ylim(*report.settings["purifier"]["data_range"])
                ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"y={name(int(ex['labels'][i]))} p={name(int(pred[i]))}", fontsize=7)
        axes[r][0].set_ylabel(title, fontsize=8)
    fig.tight_layout()
    path = Path(path)

    def write(tmp):
        fig.savefig(tmp, format="png", dpi=110)

    write_atomic(path, write)
    plt.close(fig)
    return path


def save_convergence_plot(report: RobustnessReport, path: str | Path, title: Optional[str] = None) -> Path:
    """PNG of the convergence curve: robust accuracy (defended with its Wilson interval, undefended
    plain PGD dashed) against the attack steps (left) and the EOT samples at the chosen steps
    (right), the headline's tolerance band shaded; written atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = report.headline()  # raises when the report has no curve
    fig, axes = plt.subplots(1, 2, figsize=(8.2, 3.4), sharey=True)
    for ax, along, label in zip(axes, ("attack_steps", "eot"), ("PGD attack steps", "EOT samples per step")):
        rows = report.convergence_curve(along)
        xs = [r[along] for r in rows]
        d = np.array([[r["defended"][k] for k in ("accuracy", "ci_low", "ci_high")] for r in rows]) * 100
        ax.errorbar(xs, d[:, 0], yerr=[d[:, 0] - d[:, 1], d[:, 2] - d[:, 0]], marker="o", capsize=3,
                    label=f"defended ({h['attack']}), Wilson 95 %")
        if report.n_draws > 1:
            m = np.array([[r["defended"][k] for k in ("draws_mean", "draws_low", "draws_high")] for r in rows]) * 100
            ax.plot(xs, m[:, 0], ":", color="C0", marker=".", label=f"defended, mean of {report.n_draws} draws")
            ax.fill_between(xs, m[:, 1], m[:, 2], color="C0", alpha=0.12)
        if along == "attack_steps":
            ax.plot(xs, [100 * r["undefended"]["accuracy"] for r in rows], "k--", marker="s", ms=4,
                    label="undefended (plain PGD)")
        ax.axhspan(100 * (h["accuracy"] - h["tol"]), 100 * (h["accuracy"] + h["tol"]), color="C1", alpha=0.2,
                   label=f"headline +- {in_points(h['tol'])}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(v) for v in xs])
        ax.minorticks_off()
        fixed = f"EOT {rows[0]['eot']}" if along == "attack_steps" else f"{rows[0]['attack_steps']} attack steps"
        ax.set_xlabel(f"{label} ({fixed})")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("robust accuracy (%)")
    axes[0].legend(fontsize=7, loc="best")
    s = report.settings
    fig.suptitle(title or f"{s.get('norm', '?')} eps = {s.get('eps', '?')}, n = {len(report.labels)}: "
                          f"{100 * h['accuracy']:.1f} % at {h['attack_steps']} steps x EOT {h['eot']}", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path
