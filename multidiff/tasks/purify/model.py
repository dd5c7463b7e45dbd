"""Adversarial purification with a diffusion model: DiffPure (Nie et al., ICML 2022).

Diffuse the input to a small time ``t*`` with the forward process, run the reverse process
(VP-SDE Euler-Maruyama as DiffPure, or DDPM / DDIM) back to t = 0 with a diffusion model trained
on clean data, then classify. The added noise drowns the adversarial perturbation. The honest
evaluation (Lee & Kim, ICCV 2023: full-gradient PGD-EOT through every purification step) lives in
:mod:`.attacks` and :mod:`.evaluate`; :class:`~.api.Defended` puts purifier and classifier together.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ...core import samplers
from ...core.conditioning import repeat_samples
from ...core.denoiser import add_noise
from ...core.schedules import alpha_bars as alpha_bars_of_betas, vp_alpha_bar, vp_discrete_betas
from ...core.validate import check_whole

__all__ = ["Purifier", "check_range"]

_SAMPLER = {"sde": "euler_sde", "ddpm": "ddpm", "ddim": "ddim"}


def check_range(x: torch.Tensor, data_range: tuple[float, float], what: str = "input") -> None:
    """Raise a ``ValueError`` naming the fix if ``x`` has entries outside ``data_range`` (or NaN)."""
    lo, hi = data_range
    if not torch.isfinite(x).all():
        raise ValueError(f"{what} contains NaN or inf; purification needs finite values in [{lo}, {hi}]")
    tol = 1e-5 * (hi - lo)
    if x.numel() and (x.min() < lo - tol or x.max() > hi + tol):
        raise ValueError(f"{what} has values in [{float(x.min()):.4g}, {float(x.max()):.4g}], outside the declared "
                         f"data_range [{lo}, {hi}]; rescale it (images: pixels/255) or pass data_range=")


class Purifier(nn.Module):
    """DiffPure purification ``x -> x_pur`` (same shape, dtype and value range).

    ``model(x_t, t) -> eps`` is a diffusion model on the classifier's input space, rescaled from
    ``data_range`` to [-1, 1]. With ``alpha_bars=None`` it is a continuous VP-SDE model
    (time in [0, 1], ``beta(t) = beta0 + t (beta1 - beta0)``): ``"sde"`` integrates the reverse
    SDE over ``vp_grid`` (DiffPure), ``"ddpm"``/``"ddim"`` walk a ``discrete_grid`` of the same SDE
    discretised into ``n_train_steps`` (step i <-> time (i+1)/n_train_steps). With ``alpha_bars``
    (a discrete DDPM table) the model takes step indices and every sampler walks that table.
    ``t_star`` is the fraction of the diffusion run (0 turns purification off: identity).
    ``n_steps`` defaults to DiffPure's dt = 1e-3 (t* x 1000 steps). ``gradient_checkpointing``
    recomputes each network call in the backward pass, so full-gradient attacks fit in memory.
    """

    def __init__(self, model: Callable, t_star: float = 0.1, n_steps: Optional[int] = None, sampler: str = "sde",
                 alpha_bars: Optional[torch.Tensor] = None, beta0: float = 0.1, beta1: float = 20.0,
                 n_train_steps: int = 1000, data_range: tuple[float, float] = (0.0, 1.0),
                 gradient_checkpointing: bool = True):
        super().__init__()
        t_star = float(t_star)
        if not (math.isfinite(t_star) and 0 <= t_star <= 1):
            raise ValueError(f"t_star must lie in (0, 1] (a fraction of the diffusion time; DiffPure uses 0.1), "
                             f"or be 0 to turn purification off; got {t_star}")
        if sampler not in _SAMPLER:
            raise ValueError(f"sampler must be one of {', '.join(_SAMPLER)}, got {sampler!r}")
        lo, hi = map(float, data_range)
        if not hi > lo:
            raise ValueError(f"data_range must be (low, high) with high > low, got {data_range}")
        self.model = model  # registered as a submodule when it is an nn.Module (moves with .to())
        self.t_star, self.sampler, self.data_range = t_star, sampler, (lo, hi)
        self.gradient_checkpointing = gradient_checkpointing
        self.discrete = alpha_bars is not None
        if self.discrete:
            self.table = alpha_bars.detach().to(torch.float64).cpu()
        else:
            self.beta0, self.beta1 = beta0, beta1
            self.table = alpha_bars_of_betas(vp_discrete_betas(n_train_steps, beta0, beta1))
        total = len(self.table)
        default = max(1, round(t_star * (total if self.discrete else 1000)))
        n_steps = check_whole("n_steps", n_steps, none=f"t_star x {total if self.discrete else 1000} = {default}")
        self.n_steps = default if n_steps is None else n_steps
        self.grid = self._make_grid() if t_star > 0 else None

    def _make_grid(self) -> samplers.Grid:
        if self.sampler == "sde" and not self.discrete:
            fn = lambda t: vp_alpha_bar(t, self.beta0, self.beta1)
            return samplers.vp_grid(self.n_steps, fn, t_start=self.t_star, t_end=self.t_star / max(self.n_steps, 2))
        t_start = max(0, round(self.t_star * len(self.table)) - 1)
        return samplers.discrete_grid(self.table, self.n_steps, t_start=t_start)

    @property
    def level(self) -> float:
        """Signal level alpha_bar(t*) the input is diffused to (1 when purification is off)."""
        return 1.0 if self.grid is None else float(self.grid.alpha_bars[0])

    def _denoiser(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if not self.discrete and not t.is_floating_point():  # discretised VP-SDE: step i is time (i+1)/T
            t = (t.to(torch.float32) + 1) / len(self.table)
        if self.gradient_checkpointing and torch.is_grad_enabled() and x.requires_grad:
            return checkpoint(self.model, x, t, use_reentrant=False)
        return self.model(x, t)

    def forward(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """One purification run (fresh noise unless ``generator`` is given); differentiable."""
        check_range(x, self.data_range)
        if self.grid is None:
            return x
        lo, hi = self.data_range
        param = next(iter(self.model.parameters()), None) if isinstance(self.model, nn.Module) else None
        work = param.dtype if param is not None and param.is_floating_point() else torch.float32
        z = ((x.to(work) - lo) / (hi - lo)) * 2 - 1
        noise = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        z = add_noise(z, noise, self.grid.alpha_bars[0])
        z = samplers.sample(_SAMPLER[self.sampler], self._denoiser, z, self.grid, generator=generator)
        return ((z.clamp(-1, 1) + 1) / 2 * (hi - lo) + lo).to(x.dtype)

    def purify_many(self, x: torch.Tensor, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``n`` independent purification runs in one batched pass: shape ``(n, *x.shape)``."""
        n = check_whole("n", n)
        return self(repeat_samples(x, n), generator=generator).reshape(n, *x.shape)
