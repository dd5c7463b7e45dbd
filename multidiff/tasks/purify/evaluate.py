"""Robustness evaluation of a purification defence, undefended vs defended, per attack.

Every number of a :class:`RobustnessReport` is recomputed from the stored per-example
predictions (never stored as a result), with Wilson 95 % intervals over examples. Defended
predictions are a fresh majority vote over ``n_votes`` purification runs, independent of the
attacker's randomness (Lee & Kim, ICCV 2023). No sample filtering: every test input is attacked.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from ...core.checkpoint import write_atomic, write_json_atomic, write_text_atomic
from ...core.device import resolve_device
from ...metrics.robustness import correct, wilson_interval, worst_case_correct
from ...metrics.tables import markdown_table
from .api import Defended
from .attacks import ATTACKS, make_attack, run_attack, settings
from .model import Purifier, check_range

__all__ = ["evaluate", "RobustnessReport", "ATTACKS", "save_grid"]

TARGETS = ("undefended", "defended")


@dataclass
class RobustnessReport:
    labels: list[int]                                # true class per example
    predictions: dict[str, dict[str, list[int]]]     # "clean" / attack -> target -> predicted class per example
    settings: dict = field(default_factory=dict)     # eps, norm, purifier, per-attack settings, seed ...
    timings: dict = field(default_factory=dict)      # seconds (measured, not derived)
    confidence: float = 0.95
    examples: Optional[dict] = field(default=None, repr=False)  # a few tensors for the PNG grid; not serialised

    def __post_init__(self):
        n = len(self.labels)
        for name, by_target in self.predictions.items():
            for target, pred in by_target.items():
                if len(pred) != n:
                    raise ValueError(f"predictions[{name!r}][{target!r}] has {len(pred)} entries for {n} labels")

    def correct(self, name: str, target: str) -> np.ndarray:
        if name == "worst-case":
            attacks = [a for a in self.predictions if a != "clean" and target in self.predictions[a]]
            return worst_case_correct(self.labels, *(self.predictions[a][target] for a in attacks))
        return correct(self.predictions[name][target], self.labels)

    def rows(self) -> list[dict]:
        """One row per (clean / attack / worst case, target): accuracy and its Wilson interval."""
        names = list(self.predictions)
        if sum(n != "clean" for n in names) > 1:
            names.append("worst-case")
        out = []
        for name in names:
            for target in TARGETS:
                if name != "worst-case" and target not in self.predictions[name]:
                    continue
                c = self.correct(name, target)
                lo, hi = wilson_interval(int(c.sum()), len(c), self.confidence)
                out.append({"attack": name, "target": target, "accuracy": float(c.mean()), "ci_low": lo, "ci_high": hi,
                            "n": len(c)})
        return out

    def accuracy(self, name: str, target: str) -> float:
        return float(self.correct(name, target).mean())

    def to_dict(self) -> dict:
        return {"labels": list(map(int, self.labels)),
                "predictions": {k: {t: list(map(int, p)) for t, p in v.items()} for k, v in self.predictions.items()},
                "settings": self.settings, "timings": self.timings, "confidence": self.confidence,
                "table": self.rows()}  # for readers; from_dict recomputes it from the predictions

    @classmethod
    def from_dict(cls, d: dict) -> "RobustnessReport":
        return cls(d["labels"], d["predictions"], d.get("settings", {}), d.get("timings", {}), d.get("confidence", 0.95))

    def to_markdown(self) -> str:
        s = self.settings
        lines = [f"Robust accuracy ({s.get('norm', '?')} eps = {s.get('eps', '?')}, n = {len(self.labels)}, "
                 f"{int(self.confidence * 100)} % Wilson intervals)", ""]
        table: dict[str, dict[str, str]] = {}
        for r in self.rows():
            table.setdefault(r["attack"], {})[r["target"]] = f"{100 * r['accuracy']:.1f} % [{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]"
        lines.append(markdown_table(["attack", "undefended", "defended"],
                                    [[name, cells.get("undefended"), cells.get("defended")] for name, cells in table.items()]))
        lines += ["", "Settings:", "", "```json", json.dumps(s, indent=1), "```"]
        if self.timings:
            lines += ["", "Timings (s): " + ", ".join(f"{k} {v:.3g}" for k, v in self.timings.items())]
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.to_markdown()

    def save(self, directory: str | Path, stem: str = "report") -> tuple[Path, Path]:
        """Write ``stem.json`` and ``stem.md`` atomically; returns their paths."""
        d = Path(directory)
        js, md = d / f"{stem}.json", d / f"{stem}.md"
        write_json_atomic(js, self.to_dict(), indent=1)
        write_text_atomic(md, self.to_markdown())
        return js, md

    @classmethod
    def load(cls, path: str | Path) -> "RobustnessReport":
        return cls.from_dict(json.loads(Path(path).read_text()))


def _check_classifier(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    with torch.no_grad():
        out = classifier(x[:2])
    if out.dim() != 2 or out.shape[0] != len(x[:2]):
        raise ValueError(f"the classifier must return logits of shape (batch, n_classes); for a batch of "
                         f"{len(x[:2])} it returned {tuple(out.shape)}")
    if int(y.max()) >= out.shape[1] or int(y.min()) < 0:
        raise ValueError(f"labels range over [{int(y.min())}, {int(y.max())}] but the classifier outputs "
                         f"{out.shape[1]} classes; labels must be class indices 0..{out.shape[1] - 1}")


def evaluate(classifier: nn.Module, purifier: Purifier, data: tuple[torch.Tensor, torch.Tensor],
             attacks: Sequence[str] = ("fgsm", "pgd", "bpda-eot", "pgd-eot"), eps: float = 0.1, norm: str = "linf",
             steps: int = 10, step_size: float = 0.0, eot: int = 4, n_votes: int = 1, batch_size: int = 100,
             seed: int = 0, device: str = "auto", n_examples_kept: int = 8) -> RobustnessReport:
    """Clean and robust accuracy of ``classifier`` alone and of ``Defended(classifier, purifier)``
    under each attack (names of :data:`ATTACKS`), on ``data = (x, y)``.

    The undefended classifier is deterministic, so every PGD-type attack against it is plain PGD
    (computed once). Attack settings and per-input purification time go into the report.
    """
    x, y = _check_data(data)
    cfgs = [make_attack(a, eps, norm, steps, step_size, eot) for a in attacks]
    dev = resolve_device(device)
    check_range(x, purifier.data_range)
    run = _Evaluation(classifier, purifier, x, y, dev, n_votes, batch_size, seed, n_examples_kept,
                      plain=lambda kind: make_attack(kind, eps, norm, steps, step_size, 1))
    run.clean()
    for cfg in cfgs:
        run.attack(cfg)
    settings_ = {"eps": eps, "norm": norm, "n_votes": n_votes, "seed": seed, "device": str(dev),
                 "purifier": _purifier_settings(run.purifier), "attacks": {c.name: settings(c) for c in cfgs},
                 "undefended_note": "the bare classifier is deterministic: pgd, bpda-eot, pgd-eot and transfer "
                                    "against it are the same plain PGD"}
    return run.report(settings_)


def _check_data(data) -> tuple[torch.Tensor, torch.Tensor]:
    """``data`` as ``(x, y)``: a pair of tensors, one class index per input, not empty."""
    x, y = data
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor) or y.dim() != 1 or len(x) != len(y):
        raise ValueError("data must be a pair of tensors (x, y) with y of shape (len(x),) holding class indices")
    if len(x) == 0:
        raise ValueError("data is empty; pass at least one example")
    return x, y


def _purifier_settings(purifier: Purifier) -> dict:
    return {"t_star": purifier.t_star, "sampler_steps": purifier.sampler_steps, "sampler": purifier.sampler,
            "alpha_bar_t_star": purifier.level, "data_range": list(purifier.data_range)}


class _Evaluation:
    """One :func:`evaluate` run: the models on their device, the data, one seeded generator that
    every purification and attack draws from (in a fixed order), and what the report collects."""

    def __init__(self, classifier: nn.Module, purifier: Purifier, x: torch.Tensor, y: torch.Tensor,
                 dev: torch.device, n_votes: int, batch_size: int, seed: int, n_examples_kept: int, plain):
        self.classifier, self.purifier = classifier.to(dev).eval(), purifier.to(dev).eval()
        self.x, self.y = x.to(dev), y.to(dev).long()
        _check_classifier(self.classifier, self.x, self.y)
        self.defended = Defended(self.classifier, self.purifier, n_votes)
        self.gen = torch.Generator(device=dev).manual_seed(seed)
        self.batch_size, self.plain = batch_size, plain
        self.preds: dict[str, dict[str, list[int]]] = {}
        self.timings: dict[str, float] = {}
        self.kept = torch.linspace(0, len(x) - 1, min(n_examples_kept, len(x)), device=dev).round().long()  # spread
        self.examples = {"clean": self.x[self.kept].cpu(), "labels": self.y[self.kept].cpu(), "index": self.kept.cpu()}
        self.cache: dict[str, torch.Tensor] = {}  # the undefended (deterministic) attacks: "fgsm" or "pgd"

    def predict(self, target: str, xs: torch.Tensor) -> list[int]:
        """Predicted classes of ``xs``: the bare classifier's, or a fresh defended vote."""
        with torch.no_grad():
            out = [(self.classifier(b).argmax(-1) if target == "undefended"
                    else self.defended.predict(b, generator=self.gen)) for b in xs.split(self.batch_size)]
        return torch.cat(out).cpu().tolist()

    def clean(self) -> None:
        """Predictions on the clean inputs, timed per input, and the purified clean examples."""
        t0 = time.perf_counter()
        self.preds["clean"] = {"undefended": self.predict("undefended", self.x)}
        self.timings["classify_per_input"] = (time.perf_counter() - t0) / len(self.x)
        t0 = time.perf_counter()
        self.preds["clean"]["defended"] = self.predict("defended", self.x)
        self.timings["purify_and_classify_per_input"] = (time.perf_counter() - t0) / len(self.x)
        with torch.no_grad():
            self.examples["purified_clean"] = self.purifier(self.x[self.kept], generator=self.gen).cpu()

    def _batched_attack(self, cfg, purifier: Optional[Purifier]) -> torch.Tensor:
        return torch.cat([run_attack(cfg, self.classifier, xb, yb, purifier, self.purifier.data_range, self.gen)
                          for xb, yb in zip(self.x.split(self.batch_size), self.y.split(self.batch_size))])

    def _attack_undefended(self, kind: str) -> torch.Tensor:
        """Plain FGSM or PGD against the bare classifier, computed once."""
        if kind not in self.cache:
            self.cache[kind] = self._batched_attack(self.plain(kind), None)
        return self.cache[kind]

    def attack(self, cfg) -> None:
        """Attack both targets with ``cfg``: predictions, wall time and the examples shown."""
        t0 = time.perf_counter()
        x_und = self._attack_undefended("fgsm" if cfg.name == "fgsm" else "pgd")
        x_def = x_und if cfg.name == "transfer" else self._batched_attack(cfg, self.purifier)
        self.timings[f"attack_{cfg.name}"] = time.perf_counter() - t0
        self.preds[cfg.name] = {"undefended": self.predict("undefended", x_und),
                                "defended": self.predict("defended", x_def)}
        self._keep_examples(cfg.name, x_def[self.kept])

    def _keep_examples(self, name: str, adv: torch.Tensor) -> None:
        self.examples[f"adv_{name}"] = adv.cpu()
        with torch.no_grad():
            pur = self.purifier(adv, generator=self.gen)
            self.examples[f"purified_{name}"] = pur.cpu()
            self.examples[f"pred_{name}"] = self.classifier(pur).argmax(-1).cpu()  # of the purified input shown
            self.examples[f"bare_{name}"] = self.classifier(adv).argmax(-1).cpu()

    def report(self, settings_: dict) -> RobustnessReport:
        report = RobustnessReport(labels=self.y.cpu().tolist(), predictions=self.preds, timings=self.timings,
                                  settings=settings_)
        report.examples = self.examples
        return report


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
