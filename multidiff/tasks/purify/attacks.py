"""White-box attacks in pure torch, for classifiers with or without a (stochastic) purifier.

* FGSM (Goodfellow et al. 2015) and PGD with random start (Madry et al. 2018), Linf and L2.
* EOT (Athalye et al. 2018): average the input gradient over ``eot`` draws of the purifier's
  randomness (batched in one pass).
* BPDA + EOT (Athalye et al. 2018): purify without gradients, backward through the purifier as
  the identity.
* Full-gradient PGD-EOT (Lee & Kim, ICCV 2023): the exact gradient through every purification
  step (the purifier checkpoints each network call), averaged over EOT draws. This is the attack
  whose number to trust for DiffPure-style defences.
* Transfer: PGD on the undefended classifier, then fed to the defended one (a purifier-oblivious
  attacker; an upper bound on robustness, never a claim).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Optional

import torch
from torch import nn

from ...core.conditioning import repeat_samples
from ...core.validate import check_whole

__all__ = ["AttackConfig", "ATTACKS", "make_attack", "check_eps", "input_gradient", "pgd", "run_attack",
           "check_perturbation"]

# attack name -> (gradient mode through the purifier, uses EOT, one step)
ATTACKS = {
    "fgsm": ("full", False, True),
    "pgd": ("full", False, False),
    "bpda-eot": ("bpda", True, False),
    "pgd-eot": ("full", True, False),
    "transfer": ("none", False, False),
}


@dataclass(frozen=True)
class AttackConfig:
    """One attack of the threat model (Madry et al. 2018 for PGD; Athalye et al. 2018 for BPDA and EOT)."""
    name: str                 # one of ATTACKS
    eps: float                # radius of the threat model, in input units
    norm: str = "linf"        # "linf" or "l2"
    attack_steps: int = 10    # PGD iterations (1 for FGSM)
    step_size: float = 0.0    # per-step size; 0 means 2.5 eps / attack_steps (Madry et al. 2018)
    eot: int = 1              # gradient samples of the purifier's randomness per step
    random_start: bool = True  # start from a uniform point in the eps ball

    @property
    def alpha(self) -> float:
        """The PGD step size: ``step_size``, or 2.5 eps / attack_steps when it is 0 (Madry et al. 2018)."""
        return self.step_size if self.step_size > 0 else 2.5 * self.eps / self.attack_steps


def check_eps(eps: float, norm: str, data_range: tuple[float, float], n_features: Optional[int] = None) -> None:
    """Raise a ``ValueError`` naming the fix when ``eps`` is not a radius inside ``data_range``.

    eps is in input units. A ball that spans the whole range (Linf eps >= high - low; L2 eps >= the
    box diagonal (high - low) sqrt(n_features)) lets the attacker reach any input, so robust accuracy
    is 0 % by construction: usually a radius given on another scale (8 instead of 8/255).
    """
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a finite number > 0 (e.g. 0.1 on [0, 1] pixels), got {eps!r}")
    if norm not in ("linf", "l2"):
        raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
    lo, hi = map(float, data_range)
    width = hi - lo
    if norm == "linf" and eps >= width:
        raise ValueError(f"eps={eps:g} (linf) spans the whole data range [{lo:g}, {hi:g}] (width {width:g}): every "
                         f"input is reachable and robust accuracy is 0 by construction. eps is in input units: "
                         f"for 8/255 of [0, 1] pixels pass {8 / 255:.6g}, not 8")
    if norm == "l2" and n_features is not None and eps >= width * math.sqrt(n_features):
        raise ValueError(f"eps={eps:g} (l2) is at least the diagonal {width * math.sqrt(n_features):.4g} of the data "
                         f"range [{lo:g}, {hi:g}]^{n_features}: every input is reachable; eps is in input units")


def make_attack(name: str, eps: float, norm: str = "linf", attack_steps: int = 10, step_size: float = 0.0,
                eot: int = 4, random_start: bool = True,
                data_range: Optional[tuple[float, float]] = None) -> AttackConfig:
    """Validated settings of attack ``name`` (FGSM: one step of size eps, no random start; the
    EOT count applies to ``bpda-eot`` and ``pgd-eot`` only). With ``data_range`` the radius is also
    checked against the range (:func:`check_eps`)."""
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; choose from {', '.join(ATTACKS)}")
    check_eps(eps, norm, data_range if data_range is not None else (-math.inf, math.inf))
    attack_steps, eot = check_whole("attack_steps", attack_steps), check_whole("eot", eot)
    if (isinstance(step_size, bool) or not isinstance(step_size, numbers.Real)
            or not (step_size >= 0 and math.isfinite(step_size))):
        raise ValueError(f"step_size must be a finite number >= 0 (0: 2.5 eps / attack_steps), got {step_size!r}")
    mode, uses_eot, one_step = ATTACKS[name]
    if one_step:
        return AttackConfig(name, float(eps), norm, 1, float(eps), 1, False)
    return AttackConfig(name, float(eps), norm, int(attack_steps), float(step_size), int(eot) if uses_eot else 1,
                        random_start)


def settings(cfg: AttackConfig) -> dict:
    """The attack's settings for a report (with the effective step size)."""
    return {**asdict(cfg), "step_size": cfg.alpha, "gradient": ATTACKS[cfg.name][0]}


def input_gradient(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor, purifier: Optional[nn.Module] = None,
                   mode: str = "full", eot: int = 1, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Gradient of the summed cross-entropy w.r.t. ``x``, averaged over ``eot`` purifier draws.

    ``mode="full"`` backpropagates through every purification step; ``"bpda"`` purifies without
    gradients and passes the gradient through as the identity; with ``purifier=None`` (or
    ``mode="none"``) the classifier alone is differentiated.
    """
    x = x.detach().requires_grad_(True)
    if purifier is None or mode == "none":
        inp, reps = x, 1
    else:
        reps = eot
        xs = repeat_samples(x, eot)
        if mode == "full":
            inp = purifier(xs, generator=generator)
        elif mode == "bpda":
            with torch.no_grad():
                pur = purifier(xs, generator=generator)
            inp = xs + (pur - xs).detach()  # value of the purified input, identity backward
        else:
            raise ValueError(f"mode must be 'full', 'bpda' or 'none', got {mode!r}")
    loss = nn.functional.cross_entropy(classifier(inp), repeat_samples(y, reps), reduction="sum") / reps
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def _flat_norm(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(dim=1).clamp(min=1e-12).reshape(-1, *([1] * (v.dim() - 1)))


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return delta.clamp(-eps, eps)
    return delta * (eps / _flat_norm(delta)).clamp(max=1.0)


def _random_start(x: torch.Tensor, eps: float, norm: str, generator: Optional[torch.Generator]) -> torch.Tensor:
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if norm == "linf":
        return (2 * u - 1) * eps
    d = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    r = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), generator=generator, device=x.device, dtype=x.dtype)
    return d / _flat_norm(d) * eps * r ** (1.0 / x[0].numel())  # uniform in the L2 ball


def check_perturbation(x: torch.Tensor, x_adv: torch.Tensor, eps: float, norm: str,
                       data_range: tuple[float, float], tol: float = 1e-5) -> None:
    """Raise ``RuntimeError`` if any ``x_adv`` row leaves the eps ball around ``x`` or the data range."""
    d = (x_adv - x).flatten(1)
    size = d.abs().amax(1) if norm == "linf" else d.norm(dim=1)
    if x_adv.shape != x.shape or bool((size > eps * (1 + tol) + tol).any()):
        raise RuntimeError(f"attack left the {norm} ball of radius {eps}: largest perturbation {float(size.max()):.6g}")
    if bool((x_adv < data_range[0] - tol).any() or (x_adv > data_range[1] + tol).any()):
        raise RuntimeError(f"attack left the data range {data_range}")


def pgd(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: AttackConfig,
        purifier: Optional[nn.Module] = None, data_range: tuple[float, float] = (0.0, 1.0),
        generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Projected gradient ascent on the cross-entropy inside the ``cfg.norm`` ball of radius
    ``cfg.eps`` and the data range; returns the last iterate (``x`` is not modified)."""
    check_eps(cfg.eps, cfg.norm, data_range, x[0].numel())
    lo, hi = data_range
    mode = ATTACKS[cfg.name][0]
    x = x.detach()
    delta = _random_start(x, cfg.eps, cfg.norm, generator) if cfg.random_start else torch.zeros_like(x)
    delta = (x + delta).clamp(lo, hi) - x
    for _ in range(cfg.attack_steps):
        g = input_gradient(classifier, x + delta, y, purifier, mode, cfg.eot, generator)
        step = g.sign() if cfg.norm == "linf" else g / _flat_norm(g)
        delta = _project(delta + cfg.alpha * step, cfg.eps, cfg.norm)
        delta = (x + delta).clamp(lo, hi) - x  # clamping only shrinks |delta|, so it stays in the ball
    x_adv = (x + delta).detach()
    check_perturbation(x, x_adv, cfg.eps, cfg.norm, data_range)
    return x_adv


def run_attack(cfg: AttackConfig, classifier: nn.Module, x: torch.Tensor, y: torch.Tensor,
               purifier: Optional[nn.Module] = None, data_range: tuple[float, float] = (0.0, 1.0),
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Adversarial inputs for ``classifier`` (defended by ``purifier`` when given). ``transfer``
    ignores the purifier when crafting: it attacks the bare classifier."""
    target = None if cfg.name == "transfer" else purifier
    return pgd(classifier, x, y, cfg, target, data_range, generator)
