"""Robustness evaluation of a purification defence, undefended vs defended, per attack: the
protocol (what is measured). The result is a :class:`~.report.RobustnessReport` (:mod:`.report`:
tables, Markdown, JSON; :mod:`.plot`: figures). No sample filtering: every test input is attacked.

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

import time
import zlib
from dataclasses import asdict, dataclass, replace
from typing import Optional, Sequence

import torch
from torch import nn

from ...core.device import resolve_device
from ...core.samplers import Randn, rowwise_randn
from ...core.validate import check_whole
from ...metrics.robustness import accuracy, first_converged
from .api import Defended
from .attacks import ATTACKS, check_eps, make_attack, run_attack, settings
from .model import Purifier, check_input, check_range
from .reference import REFERENCE_ATTACKS, reference_attack
from .report import RobustnessReport, chosen_steps, draw_target

__all__ = ["evaluate", "Convergence", "ATTACKS", "REFERENCE_ATTACKS"]

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
             attack_steps: int = 10, step_size: float = 0.0, eot: int = 4, n_votes: int = 1, batch_size: int = 100,
             seed: int = 0, device: str = "auto", n_examples_kept: int = 8,
             converge: Optional[Convergence] = None, n_draws: int = 1) -> RobustnessReport:
    """Clean and robust accuracy of ``classifier`` alone and of ``Defended(classifier, purifier)``
    under each attack on ``data = (x, y)``: names of :data:`ATTACKS` (multidiff's, pure torch) or of
    :data:`REFERENCE_ATTACKS` (torchattacks' EOTPGD and APGD-EOT, the cross-check; optional).

    Every attack runs with ``attack_steps`` PGD iterations and ``eot`` EOT samples, unless ``converge`` is
    given: then ``converge.attack`` is first raised along its schedule (:class:`Convergence`) and
    every attack runs at the converged attack steps and EOT samples (``step_size`` must be 0 then: the
    step follows the attack steps). Defended predictions share one purification draw per input (module
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
    cfgs = [make(a, attack_steps, eot) for a in attacks]  # validates every setting before any work
    if converge is not None:
        if step_size:
            raise ValueError("converge needs the automatic step size (step_size=0: 2.5 eps / attack_steps), since "
                             f"the attack steps change along the curve; got step_size={step_size}")
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
        attack_steps, eot = setting
        cfgs = [make(a, attack_steps, eot) for a in attacks]
    for cfg in cfgs:
        if final is not None and cfg.name == converge.attack:
            run.record(cfg.name, *final)  # the chosen run of the curve is this attack's row
        else:
            run.record(cfg.name, *run.attack(cfg, cfg.name))
    settings_ = {"eps": eps, "norm": norm, "n_votes": n_votes, "n_draws": n_draws, "seed": seed, "device": str(dev),
                 "attack_steps": attack_steps, "eot": eot,
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
    return {"t_start": purifier.t_start, "sampler_steps": purifier.sampler_steps, "sampler": purifier.sampler,
            "alpha_bar_t_start": purifier.level, "data_range": list(purifier.data_range)}


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
        """Plain FGSM or PGD with ``cfg``'s attack steps against the bare classifier, computed once."""
        kind = "fgsm" if cfg.name == "fgsm" else "pgd"
        key = (kind, 1 if kind == "fgsm" else cfg.attack_steps)
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
                cfg.name, self.defended, xb, yb, cfg.eps, cfg.norm, cfg.attack_steps, cfg.eot,
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
        i, _ = chosen_steps(acc(runs), conv.tol)
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