"""The one denoiser contract shared by every task.

A *denoiser* is any callable ``model(x_t, t) -> eps`` that predicts the noise in
``x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps`` (Ho et al. 2020). ``t`` is a 1-D tensor with one
entry per batch row: a step index for discrete schedules, a time in [0, 1] for the VP-SDE.
Conditioning (observed values, an RNN state, text) is closed over by the task, never passed
through the sampler. Networks that predict ``x0`` or ``v`` (Salimans & Ho 2022) are adapted
with :func:`as_eps_model` instead of rewriting the samplers.
"""
from __future__ import annotations

from typing import Callable

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = ["Denoiser", "x0_from_eps", "eps_from_x0", "eps_from_v", "v_from_eps", "add_noise", "as_eps_model",
           "clip_denoised"]


def _bcast(ab: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    ab = torch.as_tensor(ab, dtype=x.dtype, device=x.device)
    return ab.reshape(ab.shape + (1,) * (x.dim() - ab.dim())) if ab.dim() else ab


def add_noise(x0: torch.Tensor, eps: torch.Tensor, ab: torch.Tensor | float) -> torch.Tensor:
    """Forward process: ``sqrt(ab) x0 + sqrt(1-ab) eps`` (ab broadcast from the batch dimension)."""
    ab = _bcast(ab, x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def x0_from_eps(x_t: torch.Tensor, eps: torch.Tensor, ab: torch.Tensor | float) -> torch.Tensor:
    """Clean-signal estimate implied by a noise prediction."""
    ab = _bcast(ab, x_t)
    return (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()


def eps_from_x0(x_t: torch.Tensor, x0: torch.Tensor, ab: torch.Tensor | float) -> torch.Tensor:
    """Noise implied by a clean-signal prediction."""
    ab = _bcast(ab, x_t)
    return (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()


def v_from_eps(x_t: torch.Tensor, eps: torch.Tensor, ab: torch.Tensor | float) -> torch.Tensor:
    """Velocity ``v = sqrt(ab) eps - sqrt(1-ab) x0`` (Salimans & Ho 2022)."""
    ab = _bcast(ab, x_t)
    x0 = x0_from_eps(x_t, eps, ab)
    return ab.sqrt() * eps - (1 - ab).sqrt() * x0


def eps_from_v(x_t: torch.Tensor, v: torch.Tensor, ab: torch.Tensor | float) -> torch.Tensor:
    """Noise implied by a velocity prediction: ``eps = sqrt(1-ab) x_t + sqrt(ab) v``."""
    ab = _bcast(ab, x_t)
    return (1 - ab).sqrt() * x_t + ab.sqrt() * v


def as_eps_model(net: Callable, prediction: str, alpha_bar_of: Callable[[torch.Tensor], torch.Tensor]) -> Denoiser:
    """Wrap a network that predicts ``"eps"``, ``"x0"`` or ``"v"`` into the eps contract.

    ``alpha_bar_of(t)`` maps the model's time argument to the signal level.
    """
    if prediction == "eps":
        return net
    convert = {"x0": eps_from_x0, "v": eps_from_v}
    if prediction not in convert:
        raise ValueError(f"prediction must be 'eps', 'x0' or 'v', got {prediction!r}")

    def model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return convert[prediction](x_t, net(x_t, t), alpha_bar_of(t).to(x_t))

    return model


def clip_denoised(model: Denoiser, alpha_bar_of: Callable[[torch.Tensor], torch.Tensor],
                  low: torch.Tensor | float, high: torch.Tensor | float) -> Denoiser:
    """Static thresholding (Ho et al. 2020; Saharia et al. 2022): clamp the implied clean signal
    to ``[low, high]`` (broadcastable, e.g. per feature) and return the matching noise. Keeps a
    poorly fitted network from sending samples far outside the range of the data."""
    def clipped(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = alpha_bar_of(t).to(x_t)
        eps = model(x_t, t)
        x0 = torch.maximum(torch.minimum(x0_from_eps(x_t, eps, ab), torch.as_tensor(high).to(x_t)),
                           torch.as_tensor(low).to(x_t))
        return eps_from_x0(x_t, x0, ab)

    return clipped
