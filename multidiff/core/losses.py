"""The denoising loss of Ho et al. (2020) for networks that predict eps, x0 or v (Salimans & Ho
2022), in discrete and continuous time, and the conditional flow-matching loss (Lipman et al. 2023)
for velocity models."""
from __future__ import annotations

from typing import Callable, Optional

import torch

from .denoiser import Denoiser, _bcast, add_noise

__all__ = ["eps_mse", "flow_mse", "denoising_mse", "draw_discrete_t", "draw_continuous_t", "PREDICTIONS"]

PREDICTIONS = ("eps", "x0", "v")


def draw_discrete_t(n: int, num_train_steps: int, device=None, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``n`` uniform step indices in ``[0, num_train_steps)`` of a discrete training schedule."""
    return torch.randint(0, num_train_steps, (n,), device=device, generator=generator)


def draw_continuous_t(n: int, device=None, t_min: float = 1e-5, t_max: float = 1.0,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Uniform times in ``[t_min, t_max]`` for the VP-SDE (t_min > 0 keeps the loss finite)."""
    return t_min + (t_max - t_min) * torch.rand(n, device=device, generator=generator)


def eps_mse(model: Denoiser, x0: torch.Tensor, t: torch.Tensor, alpha_bar_of: Callable[[torch.Tensor], torch.Tensor],
            mask: Optional[torch.Tensor] = None, eps: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean squared error between the model's noise prediction and the true noise.

    ``t`` holds one time per batch row; ``alpha_bar_of(t)`` gives its signal level. With ``mask``
    the mean runs over the entries where mask is 1 only (CSDI trains on the target entries).
    """
    eps = torch.randn_like(x0) if eps is None else eps
    ab = alpha_bar_of(t).to(x0)
    residual = (model(add_noise(x0, eps, ab), t) - eps) ** 2
    if mask is None:
        return residual.mean()
    mask = mask.to(residual.dtype)
    return (residual * mask).sum() / mask.sum().clamp(min=1)


def flow_mse(model: Callable, x1: torch.Tensor, t: torch.Tensor, flow, mask: Optional[torch.Tensor] = None,
             x0: Optional[torch.Tensor] = None) -> torch.Tensor:
    """OT-CFM loss (Lipman et al. 2023; Matcha-TTS): ``|model(x_t, t) - u|^2`` with ``x_t`` on
    ``flow``'s path (:class:`~multidiff.core.schedules.OTFlow`) from noise ``x0`` (default N(0, I))
    to the data ``x1`` at times ``t`` in [0, 1] (one per row) and ``u`` its velocity; with ``mask``
    the mean runs over the entries where mask is 1."""
    x0 = torch.randn_like(x1) if x0 is None else x0
    residual = (model(flow.path(x0, x1, t), t) - flow.velocity(x0, x1)) ** 2
    if mask is None:
        return residual.mean()
    mask = mask.to(residual.dtype)
    return (residual * mask).sum() / mask.sum().clamp(min=1)


def denoising_mse(net: Callable, x0: torch.Tensor, t: torch.Tensor, alpha_bar_of: Callable[[torch.Tensor], torch.Tensor],
                  prediction: str = "eps", mask: Optional[torch.Tensor] = None,
                  eps: Optional[torch.Tensor] = None) -> torch.Tensor:
    """MSE of a network that predicts ``"eps"``, ``"x0"`` or ``"v"`` (Salimans & Ho 2022) against
    that quantity. x0- and v-prediction stay accurate at high noise, which keeps few-step
    samplers stable; :func:`multidiff.core.denoiser.as_eps_model` adapts such a net for sampling."""
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    if prediction == "eps":
        return eps_mse(net, x0, t, alpha_bar_of, mask=mask, eps=eps)
    eps = torch.randn_like(x0) if eps is None else eps
    ab = _bcast(alpha_bar_of(t).to(x0), x0)
    target = x0 if prediction == "x0" else ab.sqrt() * eps - (1 - ab).sqrt() * x0
    residual = (net(add_noise(x0, eps, ab), t) - target) ** 2
    if mask is None:
        return residual.mean()
    mask = mask.to(residual.dtype)
    return (residual * mask).sum() / mask.sum().clamp(min=1)
