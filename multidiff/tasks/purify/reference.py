"""The same threat model attacked by a well-kept attack library, as a cross-check of :mod:`.attacks`.

``torchattacks`` (Kim 2020) EOTPGD (Linf PGD with EOT, Liu et al. 2019) and APGD with EOT (Croce &
Hein, ICML 2020) attack :class:`~.api.Defended` as the plain ``nn.Module`` classifier it is. Both
get the full gradient through every purification step (autograd through the model's forward), so
at the same PGD steps and EOT samples multidiff's full-gradient PGD-EOT should be at least as
strong; a library attack that is clearly stronger points at a bug in ours.

torchattacks is optional (the ``bench`` extra). Install it with ``pip install --no-deps torchattacks``:
its declared dependency on torchvision would pull a CUDA build of torch, and the two attacks used
here never import torchvision.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .attacks import check_eps, check_perturbation

__all__ = ["REFERENCE_ATTACKS", "reference_attack", "INSTALL_HINT"]

# attack name in a report -> torchattacks class
REFERENCE_ATTACKS = {"torchattacks-eotpgd": "EOTPGD", "torchattacks-apgd": "APGD"}
INSTALL_HINT = ("install it with `pip install --no-deps torchattacks` (or `make bench-deps`); --no-deps keeps "
                "its torchvision dependency, and with it a CUDA torch, out")


def _torchattacks():
    try:
        import torchattacks
    except ImportError as e:  # an optional dependency: say how to get it without a CUDA torch
        raise ImportError(f"the torchattacks cross-check needs torchattacks; {INSTALL_HINT}") from e
    return torchattacks


class _OnUnitImages(nn.Module):
    """``model`` seen on [0, 1] inputs shaped as images ``(N, C, H, W)``: torchattacks clamps
    adversarial inputs to [0, 1], and its APGD assumes 4-D inputs (a 1-D signal becomes ``(N, C, 1, L)``)."""

    def __init__(self, model: nn.Module, shape: tuple[int, ...], data_range: tuple[float, float]):
        super().__init__()
        self.model, self.shape = model, tuple(shape)
        self.lo, self.width = float(data_range[0]), float(data_range[1] - data_range[0])

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        u = (x - self.lo) / self.width
        return u if u.dim() == 4 else u.reshape(len(u), u.shape[1] if u.dim() > 1 else 1, 1, -1)

    def from_unit(self, u: torch.Tensor) -> torch.Tensor:
        return (self.lo + self.width * u).reshape(len(u), *self.shape)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.model(self.from_unit(u))


def reference_attack(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str = "linf",
                     attack_steps: int = 10, eot: int = 4, seed: int = 0,
                     data_range: Optional[tuple[float, float]] = None) -> torch.Tensor:
    """Adversarial inputs for the classifier ``model`` (e.g. a :class:`~.api.Defended`) from the
    torchattacks attack ``name`` (a key of :data:`REFERENCE_ATTACKS`), in ``data_range`` (default:
    ``model.data_range``). EOTPGD takes step 2.5 eps / attack_steps (Madry et al. 2018, as
    :mod:`.attacks`) from a uniform random start; APGD adapts its own step (one restart, CE loss).

    All randomness (random starts and the purifier's noise when the model draws from torch's global
    generator) comes from a forked global RNG seeded with ``seed``: the run is reproducible and the
    caller's global RNG state is left as it was (APGD reseeds the global RNG itself).
    """
    if name not in REFERENCE_ATTACKS:
        raise ValueError(f"unknown reference attack {name!r}; choose from {', '.join(REFERENCE_ATTACKS)}")
    data_range = tuple(map(float, data_range if data_range is not None else model.data_range))
    check_eps(eps, norm, data_range, x[0].numel())
    if name == "torchattacks-eotpgd" and norm != "linf":
        raise ValueError("torchattacks' EOTPGD is Linf only; use torchattacks-apgd for the L2 threat model")
    ta = _torchattacks()
    wrapped = _OnUnitImages(model, x.shape[1:], data_range)
    eps_u = eps / wrapped.width  # both norms scale linearly with the change of units
    if name == "torchattacks-eotpgd":
        attack = ta.EOTPGD(wrapped, eps=eps_u, alpha=2.5 * eps_u / attack_steps, steps=attack_steps, eot_iter=eot,
                           random_start=True)
    else:
        attack = ta.APGD(wrapped, norm={"linf": "Linf", "l2": "L2"}[norm], eps=eps_u, steps=attack_steps,
                         n_restarts=1, seed=seed, loss="ce", eot_iter=eot)
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        u_adv = attack(wrapped.to_unit(x.detach()), y)
    x_adv = wrapped.from_unit(u_adv.detach()).to(x.dtype)
    # undo float rounding of the change of units: the result lies exactly in the ball and the range
    d = x_adv - x
    if norm == "linf":
        d = d.clamp(-eps, eps)
    else:
        d = d * (eps / d.flatten(1).norm(dim=1).clamp(min=1e-12)).clamp(max=1.0).reshape(-1, *([1] * (d.dim() - 1)))
    x_adv = (x + d).clamp(*data_range)
    check_perturbation(x, x_adv, eps, norm, data_range)
    return x_adv

