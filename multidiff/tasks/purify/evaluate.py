"""Robustness evaluation of a purification defence, undefended vs defended, per attack.

Every number of a :class:`RobustnessReport` is recomputed from the stored per-example
predictions (never stored as a result), with Wilson 95 % intervals over examples. No sample
filtering: every test input is attacked.

**Shared purification draws.** Every defended prediction of test input ``i`` (clean, and under
every attack) purifies with the same noise, drawn from a generator of its own seeded by
``(seed, i)`` (:func:`~multidiff.core.samplers.rowwise_randn`); the attacker's randomness (random
starts, EOT draws) comes from other streams and never sees it (Lee & Kim, ICCV 2023: the defence's
noise is secret). So the worst case over attacks is the per-input minimum under one draw of the
defence, not a minimum over independent draws, which would count the defence's own randomness as
attack success. Another ``seed`` gives another draw: a mean over seeds with its interval (the
benchmark's) is the expectation over draws.

**Convergence** (:class:`Convergence`, Carlini et al. 2019, "On Evaluating Adversarial Robustness";
Lee & Kim 2023): the attack's PGD steps, then its EOT samples, are raised until robust accuracy
changes by at most a stated tolerance; the report keeps the whole curve, and its headline is the
converged setting's accuracy.
"""
from __future__ import annotations

import json
import time
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from ...core.checkpoint import write_atomic, write_json_atomic, write_text_atomic
from ...core.device import resolve_device
from ...core.samplers import Randn, rowwise_randn
from ...core.validate import check_whole
from ...metrics.robustness import accuracy, correct, first_converged, mean_interval, wilson_interval, worst_case_correct
from ...metrics.tables import markdown_table
from .api import Defended
from .attacks import ATTACKS, check_eps, make_attack, run_attack, settings
from .model import Purifier, check_input, check_range
from .reference import REFERENCE_ATTACKS, reference_attack

__all__ = ["evaluate", "Convergence", "RobustnessReport", "ATTACKS", "REFERENCE_ATTACKS", "save_grid",
           "save_convergence_plot"]

TARGETS = ("undefended", "defended")


def draw_target(k: int) -> str:
    """The predictions' key of the defended model under purification draw ``k`` (0: ``"defended"``)."""
    return "defended" if k == 0 else f"defended@{k}"


@dataclass(frozen=True)
class Convergence:
    """How :func:`evaluate` raises its attack until robust accuracy stops moving.

    First the PGD steps along ``attack_steps`` (at ``eot[0]`` EOT samples) until the defended robust
    accuracy changes by at most ``tol`` between two consecutive settings: the smaller of the pair is
    the converged step count (the larger, its check). Then, at those steps, the EOT samples along
    ``eot`` until the same holds; the headline is the last EOT setting run. A phase that ends with
    its schedule (or with ``max_gradients``) first is flagged as not converged. Every run starts
    from scratch with step 2.5 eps / steps (Madry et al. 2018) and the same random-start stream
    (common random numbers: the curve shows the effect of the setting, not of a new random start).
    """

    attack_steps: tuple[int, ...] = (10, 20, 40, 80)  # PGD iterations, increasing
    eot: tuple[int, ...] = (4, 8, 16, 32)             # EOT samples per gradient step, increasing
    tol: float = 0.01                                 # accuracy change counted as converged (0.01: 1 point)
    attack: str = "pgd-eot"                           # the attack raised: pgd-eot or bpda-eot
    max_gradients: Optional[int] = None               # cap on attack steps x EOT summed over the runs, per input

    def __post_init__(self):
        for name in ("attack_steps", "eot"):
            values = tuple(check_whole(f"Convergence.{name} entries", v) for v in getattr(self, name))
            if not values or any(b <= a for a, b in zip(values, values[1:])):
                raise ValueError(f"Convergence.{name} must be a non-empty increasing sequence of whole numbers, "
                                 f"e.g. (10, 20, 40, 80); got {getattr(self, name)!r}")
            object.__setattr__(self, name, values)
        if not (isinstance(self.tol, (int, float)) and 0 <= self.tol < 1):
            raise ValueError(f"Convergence.tol is a fraction of the evaluated inputs in [0, 1) (0.01: 1 point), "
                             f"got {self.tol!r}")
        if self.attack not in ("pgd-eot", "bpda-eot"):
            raise ValueError(f"Convergence.attack must be an EOT attack, 'pgd-eot' or 'bpda-eot'; got {self.attack!r}")
        check_whole("Convergence.max_gradients", self.max_gradients, none="no cap")


@dataclass
class RobustnessReport:
    labels: list[int]                                # true class per example
    predictions: dict[str, dict[str, list[int]]]     # "clean" / attack -> target -> predicted class per example
    settings: dict = field(default_factory=dict)     # eps, norm, purifier, per-attack settings, seed ...
    timings: dict = field(default_factory=dict)      # seconds (measured, not derived)
    confidence: float = 0.95
    examples: Optional[dict] = field(default=None, repr=False)  # a few tensors for the PNG grid; not serialised
    convergence: Optional[dict] = None               # the attack's curve: schedule, tol, runs with their predictions

    def __post_init__(self):
        n = len(self.labels)
        runs = [] if self.convergence is None else self.convergence["runs"]
        named = [(name, by_target) for name, by_target in self.predictions.items()]
        named += [(f"convergence run {i}", r["predictions"]) for i, r in enumerate(runs)]
        for name, by_target in named:
            for target, pred in by_target.items():
                if len(pred) != n:
                    raise ValueError(f"predictions[{name!r}][{target!r}] has {len(pred)} entries for {n} labels")

    def correct(self, name: str, target: str) -> np.ndarray:
        """Per-input correctness under ``name`` (``"worst-case"``: under every attack run, the
        convergence runs included; the defence's draw is shared, so this is the per-input minimum)."""
        if name == "worst-case":
            runs = [r["predictions"][target] for r in (self.convergence or {"runs": []})["runs"]]
            attacks = [by[target] for a, by in self.predictions.items() if a != "clean" and target in by]
            return worst_case_correct(self.labels, *attacks, *runs)
        return correct(self.predictions[name][target], self.labels)

    def _row(self, c: np.ndarray) -> dict:
        lo, hi = wilson_interval(int(c.sum()), len(c), self.confidence)
        return {"accuracy": float(c.mean()), "ci_low": lo, "ci_high": hi, "n": len(c)}

    @property
    def n_draws(self) -> int:
        """How many purification draws every defended prediction was made under."""
        clean = self.predictions.get("clean", {})
        return 1 + sum(draw_target(k) in clean for k in range(1, len(clean) + 1))

    def _over_draws(self, correct_under) -> dict:
        """Mean accuracy over the draws with its Student-t interval: ``correct_under(target)`` gives
        the per-input correctness under one draw's predictions."""
        accs = [float(correct_under(draw_target(k)).mean()) for k in range(self.n_draws)]
        m, lo, hi = mean_interval(accs, self.confidence)
        return {"draws_mean": m, "draws_low": max(0.0, lo), "draws_high": min(1.0, hi), "n_draws": len(accs)}

    def over_draws(self, name: str) -> dict:
        """Defended accuracy under ``name`` (or ``"worst-case"``, taken per draw) averaged over the
        purification draws: ``{draws_mean, draws_low, draws_high, n_draws}``, a Student-t interval over
        draws (the attacks' adversarial inputs are fixed; only the defence's noise varies)."""
        return self._over_draws(lambda target: self.correct(name, target))

    def rows(self) -> list[dict]:
        """One row per (clean / attack / worst case, target): accuracy and its Wilson interval."""
        names = list(self.predictions)
        if sum(n != "clean" for n in names) + len((self.convergence or {"runs": []})["runs"]) > 1:
            names.append("worst-case")
        out = []
        for name in names:
            for target in TARGETS:
                if name != "worst-case" and target not in self.predictions[name]:
                    continue
                row = {"attack": name, "target": target, **self._row(self.correct(name, target))}
                if target == "defended" and self.n_draws > 1:
                    row.update(self.over_draws(name))
                out.append(row)
        return out

    def accuracy(self, name: str, target: str) -> float:
        return float(self.correct(name, target).mean())

    # convergence -----------------------------------------------------------------------------

    def convergence_curve(self, along: str) -> list[dict]:
        """The curve ``along="attack_steps"`` (at the first EOT count) or ``"eot"`` (at the chosen
        steps): one row per run, ``{attack_steps, eot, seconds, undefended, defended}`` with each
        target's ``{accuracy, ci_low, ci_high, n}``, recomputed from the stored predictions."""
        if self.convergence is None:
            raise ValueError("this report has no convergence curve; run evaluate(..., converge=Convergence())")
        if along not in ("attack_steps", "eot"):
            raise ValueError(f"along must be 'attack_steps' or 'eot', got {along!r}")
        by_steps, by_eot = self._phases()
        chosen = by_steps if along == "attack_steps" else by_eot
        return [{"attack_steps": r["attack_steps"], "eot": r["eot"], "seconds": r["seconds"],
                 **{t: self._run_row(r, t) for t in TARGETS}} for r in chosen]

    def _phases(self) -> tuple[list[dict], list[dict]]:
        """The runs raising the steps, and those raising EOT headed by the chosen steps' run."""
        runs = self.convergence["runs"]
        by_steps = [r for r in runs if r["phase"] == "attack_steps"]
        accs = [float(correct(r["predictions"]["defended"], self.labels).mean()) for r in by_steps]
        i, _ = _chosen_steps(accs, self.convergence["tol"])
        return by_steps, [by_steps[i]] + [r for r in runs if r["phase"] == "eot"]

    def _run_row(self, run: dict, target: str) -> dict:
        row = self._row(correct(run["predictions"][target], self.labels))
        if target == "defended" and self.n_draws > 1:
            row.update(self._over_draws(lambda t: correct(run["predictions"][t], self.labels)))
        return row

    def headline(self) -> dict:
        """The converged attack's setting and defended robust accuracy (the last run raising EOT,
        else the chosen steps' run), with whether each phase converged within ``tol`` (None: the
        schedule had one value, untested)."""
        if self.convergence is None:
            raise ValueError("this report has no convergence curve; run evaluate(..., converge=Convergence())")
        tol, sched = self.convergence["tol"], self.convergence["schedule"]
        flags = {}
        for along in ("attack_steps", "eot"):
            accs = [r["defended"]["accuracy"] for r in self.convergence_curve(along)]
            flags[f"{along}_converged"] = None if len(sched[along]) == 1 else first_converged(accs, tol)[1]
        last = self._phases()[1][-1]
        return {"attack": self.convergence["attack"], "attack_steps": last["attack_steps"], "eot": last["eot"],
                "tol": tol, **self._run_row(last, "defended"), **flags}

    # serialisation and rendering --------------------------------------------------------------

    def to_dict(self) -> dict:
        d = {"labels": list(map(int, self.labels)),
             "predictions": {k: {t: list(map(int, p)) for t, p in v.items()} for k, v in self.predictions.items()},
             "settings": self.settings, "timings": self.timings, "confidence": self.confidence,
             "table": self.rows()}  # for readers; from_dict recomputes it from the predictions
        if self.convergence is not None:
            d["convergence"] = self.convergence
            d["headline"] = self.headline()  # for readers, recomputed on load as well
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RobustnessReport":
        return cls(d["labels"], d["predictions"], d.get("settings", {}), d.get("timings", {}),
                   d.get("confidence", 0.95), convergence=d.get("convergence"))

    def to_markdown(self) -> str:
        s = self.settings
        pct = lambda r: f"{100 * r['accuracy']:.1f} % [{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]"
        mean = lambda r: f"{100 * r['draws_mean']:.1f} % ({100 * r['draws_low']:.1f}-{100 * r['draws_high']:.1f})"
        k = self.n_draws
        lines = []
        if self.convergence is not None:
            h = self.headline()
            said = lambda f: "untested (one value)" if f is None else ("yes" if f else "NO")
            over = f"; mean over {k} purification draws {mean(h)}" if k > 1 else ""
            lines += [f"**Headline:** {h['attack']} with {h['attack_steps']} attack steps and EOT {h['eot']}: "
                      f"{pct(h)} defended robust accuracy{over} (converged within {_points(h['tol'])}: attack "
                      f"steps {said(h['attack_steps_converged'])}, EOT {said(h['eot_converged'])}).", ""]
        lines += [f"Robust accuracy ({s.get('norm', '?')} eps = {s.get('eps', '?')}, n = {len(self.labels)}, "
                  f"{int(self.confidence * 100)} % Wilson intervals; defended predictions share one purification "
                  f"draw per input across all rows" + (f"; last column: mean over {k} draws, Student-t "
                                                       f"{int(self.confidence * 100)} % interval)" if k > 1 else ")"),
                  ""]
        table: dict[str, dict[str, str]] = {}
        for r in self.rows():
            table.setdefault(r["attack"], {})[r["target"]] = pct(r)
            if k > 1 and r["target"] == "defended":
                table[r["attack"]]["draws"] = mean(r)
        header = ["attack", "undefended", "defended"] + ([f"defended, mean of {k} draws"] if k > 1 else [])
        lines.append(markdown_table(header, [[name, cells.get("undefended"), cells.get("defended")]
                                             + ([cells.get("draws")] if k > 1 else [])
                                             for name, cells in table.items()]))
        if self.convergence is not None:
            lines += ["", f"Convergence of {self.convergence['attack']} (tolerance {_points(self.convergence['tol'])}; "
                          f"the undefended column is plain PGD with the same steps):", ""]
            rows = [[along.replace("_", " "), r["attack_steps"], r["eot"], pct(r["undefended"]), pct(r["defended"])]
                    + ([mean(r["defended"])] if k > 1 else []) + [f"{r['seconds']:.0f}"]
                    for along in ("attack_steps", "eot") for r in self.convergence_curve(along)]
            lines.append(markdown_table(["raising", "attack steps", "EOT", "undefended", "defended"]
                                        + ([f"defended, mean of {k} draws"] if k > 1 else []) + ["seconds"], rows))
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


def _points(tol: float) -> str:
    """An accuracy tolerance in percentage points, in words."""
    return f"{100 * tol:g} point" + ("" if 100 * tol == 1 else "s")


def _check_classifier(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    check_input(x, "data x", classifier)
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
             seed: int = 0, device: str = "auto", n_examples_kept: int = 8,
             converge: Optional[Convergence] = None, n_draws: int = 1) -> RobustnessReport:
    """Clean and robust accuracy of ``classifier`` alone and of ``Defended(classifier, purifier)``
    under each attack on ``data = (x, y)``: names of :data:`ATTACKS` (multidiff's, pure torch) or of
    :data:`REFERENCE_ATTACKS` (torchattacks' EOTPGD and APGD-EOT, the cross-check; optional).

    Every attack runs with ``steps`` PGD iterations and ``eot`` EOT samples, unless ``converge`` is
    given: then ``converge.attack`` is first raised along its schedule (:class:`Convergence`) and
    every attack runs at the converged steps and EOT samples (``step_size`` must be 0 then: the step
    follows the steps). Defended predictions share one purification draw per input (module
    docstring); with ``n_draws > 1`` every adversarial input is also classified under ``n_draws - 1``
    further shared draws (cheap: no new attack), and the report gives the mean over draws with its
    interval beside the first draw. The undefended classifier is deterministic, so every PGD-type attack against it is
    plain PGD with the same steps (computed once). ``eps`` must be a radius inside the purifier's
    ``data_range`` (8 on [0, 1] pixels is rejected). Settings and timings go into the report.
    """
    x, y = _check_data(data)
    attacks = list(attacks)
    unknown = [a for a in attacks if a not in ATTACKS and a not in REFERENCE_ATTACKS]
    if unknown:
        raise ValueError(f"unknown attack(s) {', '.join(map(repr, unknown))}; choose from "
                         f"{', '.join([*ATTACKS, *REFERENCE_ATTACKS])}")
    dr = purifier.data_range
    check_eps(eps, norm, dr, x[0].numel())
    make = lambda name, s, e: _make(name, eps, norm, s, step_size, e, dr)
    cfgs = [make(a, steps, eot) for a in attacks]  # validates every setting before any work
    if converge is not None:
        if step_size:
            raise ValueError("converge needs the automatic step size (step_size=0: 2.5 eps / steps), since the "
                             f"steps change along the curve; got step_size={step_size}")
        if converge.attack not in attacks:
            attacks.append(converge.attack)
    if any(a in REFERENCE_ATTACKS for a in attacks):
        from .reference import _torchattacks
        _torchattacks()  # fail now, not after an hour of attacks, when the optional library is missing
    dev = resolve_device(device)
    check_range(x, dr)
    run = _Evaluation(classifier, purifier, x, y, dev, n_votes, batch_size, seed, n_examples_kept,
                      check_whole("n_draws", n_draws))
    run.clean()
    final, convergence = None, None
    if converge is not None:
        convergence, final, setting = run.converge(converge, make)
        steps, eot = setting
        cfgs = [make(a, steps, eot) for a in attacks]
    for cfg in cfgs:
        if final is not None and cfg.name == converge.attack:
            run.record(cfg.name, *final)  # the chosen run of the curve is this attack's row
        else:
            run.record(cfg.name, *run.attack(cfg, cfg.name))
    settings_ = {"eps": eps, "norm": norm, "n_votes": n_votes, "n_draws": n_draws, "seed": seed, "device": str(dev),
                 "attack_steps": steps, "eot": eot,
                 "purifier": _purifier_settings(run.purifier), "attacks": {c.name: _settings(c) for c in cfgs},
                 "defence_noise": "shared: each defended prediction of input i (clean and under every attack) "
                                  "purifies with the same noise, seeded by (seed, i); the worst case is the per-input "
                                  "minimum under that one draw. Draw k of input i is seeded by (seed, k, i); "
                                  "with n_draws > 1 the mean over draws has a Student-t interval.",
                 "undefended_note": "the bare classifier is deterministic: pgd, bpda-eot, pgd-eot, transfer and the "
                                    "torchattacks attacks against it are the same plain PGD"}
    if converge is not None:
        settings_["convergence"] = {**asdict(converge), "attack_steps": list(converge.attack_steps),
                                    "eot": list(converge.eot)}
    return run.report(settings_, convergence)


def _make(name: str, eps: float, norm: str, attack_steps: int, step_size: float, eot: int, data_range):
    """The validated :class:`~.attacks.AttackConfig` of a multidiff or a reference attack."""
    if name in REFERENCE_ATTACKS:  # the same threat model and budget as multidiff's pgd-eot
        cfg = make_attack("pgd-eot", eps, norm, attack_steps, step_size, eot, data_range=data_range)
        return replace(cfg, name=name)
    return make_attack(name, eps, norm, attack_steps, step_size, eot, data_range=data_range)


def _settings(cfg) -> dict:
    if cfg.name not in REFERENCE_ATTACKS:
        return settings(cfg)
    import torchattacks
    step = cfg.alpha if cfg.name == "torchattacks-eotpgd" else "adaptive (APGD, one restart, CE loss)"
    return {**asdict(cfg), "step_size": step, "gradient": "full", "library": f"torchattacks {torchattacks.__version__}",
            "class": REFERENCE_ATTACKS[cfg.name]}


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


def _chosen_steps(accuracies: Sequence[float], tol: float) -> tuple[int, bool]:
    """The converged attack steps along the steps phase: the smaller of the first pair within
    ``tol`` (doubling them no longer helps; the larger is the check), else the last run."""
    k, ok = first_converged(accuracies, tol)
    return (k - 1 if ok else k), ok


def _stream(seed: int, *key) -> int:
    """A seed for the random stream named ``key`` of run ``seed`` (stable across processes)."""
    return (int(seed) * 1_000_003 + zlib.crc32(repr(key).encode())) % (2 ** 62)


class _Evaluation:
    """One :func:`evaluate` run: the models on their device, the data, and what the report collects.

    Randomness: the defence's draws are per input (:meth:`draw`); each attack has a stream of its
    own, named after it (the convergence runs share one: common random numbers along the curve)."""

    def __init__(self, classifier: nn.Module, purifier: Purifier, x: torch.Tensor, y: torch.Tensor,
                 dev: torch.device, n_votes: int, batch_size: int, seed: int, n_examples_kept: int, n_draws: int):
        self.classifier, self.purifier = classifier.to(dev).eval(), purifier.to(dev).eval()
        self.x, self.y, self.dev = x.to(dev), y.to(dev).long(), dev
        _check_classifier(self.classifier, self.x, self.y)
        self.defended = Defended(self.classifier, self.purifier, n_votes)
        self.seed, self.batch_size = seed, check_whole("batch_size", batch_size)
        self.defence_seeds = [_stream(seed, "defence", *([k] if k else [])) for k in range(n_draws)]
        self.preds: dict[str, dict[str, list[int]]] = {}
        self.timings: dict[str, float] = {}
        self.kept = torch.linspace(0, len(x) - 1, min(n_examples_kept, len(x)), device=dev).round().long()  # spread
        self.examples = {"clean": self.x[self.kept].cpu(), "labels": self.y[self.kept].cpu(), "index": self.kept.cpu()}
        self.cache: dict[tuple, torch.Tensor] = {}  # the undefended (deterministic) attacks: (kind, attack steps)

    def draw(self, index: torch.Tensor, k: int = 0, n_samples: Optional[int] = None) -> Randn:
        """Draw ``k`` of the defence's noise for the inputs ``index``: the same at every call,
        whatever their values."""
        gens = [torch.Generator(device=self.dev).manual_seed(self.defence_seeds[k] + int(i)) for i in index]
        return rowwise_randn(gens, self.defended.n_votes if n_samples is None else n_samples)

    def predict(self, target: str, xs: torch.Tensor, k: int = 0) -> list[int]:
        """Predicted classes of ``xs`` (row i is input i): the bare classifier's, or the defended
        vote under draw ``k`` of input i's purification noise."""
        out = []
        with torch.no_grad():
            for idx in torch.arange(len(xs), device=self.dev).split(self.batch_size):
                b = xs[idx]
                out.append(self.classifier(b).argmax(-1) if target == "undefended"
                           else self.defended.predict(b, randn=self.draw(idx, k)))
        return torch.cat(out).cpu().tolist()

    def predict_both(self, x_und: torch.Tensor, x_def: torch.Tensor) -> dict[str, list[int]]:
        """The undefended predictions of ``x_und`` and the defended ones of ``x_def`` under every draw."""
        return {"undefended": self.predict("undefended", x_und),
                **{draw_target(k): self.predict("defended", x_def, k) for k in range(len(self.defence_seeds))}}

    def clean(self) -> None:
        """Predictions on the clean inputs, timed per input, and the purified clean examples."""
        t0 = time.perf_counter()
        self.preds["clean"] = {"undefended": self.predict("undefended", self.x)}
        self.timings["classify_per_input"] = (time.perf_counter() - t0) / len(self.x)
        t0 = time.perf_counter()
        self.preds["clean"]["defended"] = self.predict("defended", self.x)
        self.timings["purify_and_classify_per_input"] = (time.perf_counter() - t0) / len(self.x)
        for k in range(1, len(self.defence_seeds)):
            self.preds["clean"][draw_target(k)] = self.predict("defended", self.x, k)
        with torch.no_grad():
            self.examples["purified_clean"] = self.purifier(self.x[self.kept], randn=self.draw(self.kept, 0, 1)).cpu()

    def _batched(self, fn) -> torch.Tensor:
        """``fn(x_batch, y_batch, batch_number)`` over the data, concatenated."""
        pairs = zip(self.x.split(self.batch_size), self.y.split(self.batch_size))
        return torch.cat([fn(xb, yb, i) for i, (xb, yb) in enumerate(pairs)])

    def _undefended(self, cfg) -> torch.Tensor:
        """Plain FGSM or PGD with ``cfg``'s steps against the bare classifier, computed once."""
        kind = "fgsm" if cfg.name == "fgsm" else "pgd"
        key = (kind, 1 if kind == "fgsm" else cfg.steps)
        if key not in self.cache:
            plain = make_attack(kind, cfg.eps, cfg.norm, key[1], cfg.step_size, 1, data_range=self.purifier.data_range)
            gen = torch.Generator(device=self.dev).manual_seed(_stream(self.seed, "undefended", *key))
            self.cache[key] = self._batched(lambda xb, yb, i: run_attack(plain, self.classifier, xb, yb, None,
                                                                         self.purifier.data_range, gen))
        return self.cache[key]

    def attack(self, cfg, stream: str) -> tuple[dict, torch.Tensor, float]:
        """Attack both targets with ``cfg``, the attacker's randomness from ``stream``: the
        predictions, the defended adversarial inputs and the wall time."""
        t0 = time.perf_counter()
        x_und = self._undefended(cfg)
        dr = self.purifier.data_range
        if cfg.name == "transfer":
            x_def = x_und
        elif cfg.name in REFERENCE_ATTACKS:
            x_def = self._batched(lambda xb, yb, i: reference_attack(
                cfg.name, self.defended, xb, yb, cfg.eps, cfg.norm, cfg.steps, cfg.eot,
                seed=_stream(self.seed, stream, i), data_range=dr))
        else:
            gen = torch.Generator(device=self.dev).manual_seed(_stream(self.seed, stream))
            x_def = self._batched(lambda xb, yb, i: run_attack(cfg, self.classifier, xb, yb, self.purifier, dr, gen))
        seconds = time.perf_counter() - t0
        return self.predict_both(x_und, x_def), x_def, seconds

    def record(self, name: str, preds: dict, x_def: torch.Tensor, seconds: float) -> None:
        """One row of the report: predictions, wall time and the examples shown."""
        self.preds[name] = preds
        self.timings[f"attack_{name}"] = seconds
        self._keep_examples(name, x_def[self.kept])

    def converge(self, conv: Convergence, make) -> tuple[dict, tuple[dict, torch.Tensor, float], tuple[int, int]]:
        """Raise ``conv.attack``'s steps, then its EOT samples, until the defended accuracy moves by
        at most ``conv.tol`` (:func:`~multidiff.metrics.robustness.first_converged`); returns the
        curve, the chosen run (its predictions, adversarial inputs and seconds) and its setting."""
        labels = self.y.cpu().tolist()
        runs: list[dict] = []
        adversarial: list[tuple] = []  # each run's (predictions, adversarial inputs, seconds)

        def affordable(s: int, e: int) -> bool:
            spent = sum(r["attack_steps"] * r["eot"] for r in runs)
            return not runs or conv.max_gradients is None or spent + s * e <= conv.max_gradients

        def one(phase: str, s: int, e: int) -> list[dict]:
            cfg = make(conv.attack, s, e)
            adversarial.append(self.attack(cfg, "convergence"))
            preds, _, seconds = adversarial[-1]
            runs.append({"phase": phase, "attack_steps": s, "eot": cfg.eot, "seconds": seconds, "predictions": preds})
            return [r for r in runs if r["phase"] == phase]

        acc = lambda rs: [accuracy(r["predictions"]["defended"], labels) for r in rs]
        for s in conv.attack_steps:
            if not affordable(s, conv.eot[0]):
                break
            if first_converged(acc(one("attack_steps", s, conv.eot[0])), conv.tol)[1]:
                break
        i, _ = _chosen_steps(acc(runs), conv.tol)
        base = runs[i]  # the chosen steps at the first EOT count: the first point of the EOT curve
        for e in conv.eot[1:]:
            if not affordable(base["attack_steps"], e):
                break
            if first_converged(acc([base] + one("eot", base["attack_steps"], e)), conv.tol)[1]:
                break
        self.timings["convergence"] = sum(r["seconds"] for r in runs)
        curve = {"attack": conv.attack, "tol": conv.tol, "max_gradients": conv.max_gradients,
                 "schedule": {"attack_steps": list(conv.attack_steps), "eot": list(conv.eot)}, "runs": runs}
        final = len(runs) - 1 if runs[-1]["phase"] == "eot" else i
        return curve, adversarial[final], (runs[final]["attack_steps"], runs[final]["eot"])

    def _keep_examples(self, name: str, adv: torch.Tensor) -> None:
        self.examples[f"adv_{name}"] = adv.cpu()
        with torch.no_grad():
            pur = self.purifier(adv, randn=self.draw(self.kept, 0, 1))  # the draw its defended prediction used
            self.examples[f"purified_{name}"] = pur.cpu()
            self.examples[f"pred_{name}"] = self.classifier(pur).argmax(-1).cpu()  # of the purified input shown
            self.examples[f"bare_{name}"] = self.classifier(adv).argmax(-1).cpu()

    def report(self, settings_: dict, convergence: Optional[dict]) -> RobustnessReport:
        report = RobustnessReport(labels=self.y.cpu().tolist(), predictions=self.preds, timings=self.timings,
                                  settings=settings_, convergence=convergence)
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
                   label=f"headline +- {_points(h['tol'])}")
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
