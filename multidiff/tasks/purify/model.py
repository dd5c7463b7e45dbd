"""Adversarial purification with a diffusion model: DiffPure (Nie et al., ICML 2022).

Diffuse the input to a small time ``t*`` with the forward process, run the reverse process
(VP-SDE Euler-Maruyama as DiffPure, or DDPM / DDIM / DPM-Solver) back to t = 0 with a diffusion model trained
on clean data, then classify. The added noise drowns the adversarial perturbation. The honest
evaluation (Lee & Kim, ICCV 2023: full-gradient PGD-EOT through every purification step) lives in
:mod:`.attacks` and :mod:`.evaluate`; :class:`~.api.Defended` puts purifier and classifier together.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Union

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ...core import samplers
from ...core.conditioning import repeat_samples
from ...core.samplers import Randn
from ...core.schedules import DiscreteSchedule, VPSDE
from ...core.validate import check_whole

__all__ = ["Purifier", "check_range", "check_input"]


def check_input(x, what: str = "input", net: Optional[nn.Module] = None) -> None:
    """``TypeError`` / ``ValueError`` naming the fix unless ``x`` is a non-empty floating-point
    ``torch.Tensor`` with a batch axis, shaped as ``net`` takes it when ``net`` records its input
    (``net.config["in_channels"]`` and ``["dims"]``, as multidiff's networks do, and
    ``net.input_size``, the image size or signal length a classifier was trained on, which
    :func:`~multidiff.tasks.purify.api.train_classifier` and ``PurificationModel.load`` set)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}; convert it with "
                        "torch.as_tensor(x, dtype=torch.float32)")
    if not x.is_floating_point():
        raise TypeError(f"{what} must be a floating-point tensor on the data range, got {x.dtype}; convert it with "
                        "x.float() (images stored as bytes: x.float() / 255)")
    if x.dim() < 2:
        raise ValueError(f"{what} must be a batch (batch, channels, ...), got shape {tuple(x.shape)}; add the batch "
                         "axis with x[None] for one input")
    if x.shape[0] == 0:
        raise ValueError(f"{what} is an empty batch (shape {tuple(x.shape)}); pass at least one input")
    config = getattr(net, "config", None)
    if isinstance(config, dict) and "in_channels" in config and "dims" in config:
        channels, dims = config["in_channels"], config["dims"]
        layout = "(batch, channels, length)" if dims == 1 else "(batch, channels, height, width)"
        if x.dim() != dims + 2 or x.shape[1] != channels:
            raise ValueError(f"{what} has shape {tuple(x.shape)}, but the {type(net).__name__} takes {layout} with "
                             f"{channels} channel{'s' if channels != 1 else ''}; reshape the input to that layout "
                             "(e.g. x.reshape(len(x), " + (f"{channels}, -1" if dims == 1 else f"{channels}, H, W")
                             + ")) or use networks trained on inputs of this shape")
    size = getattr(net, "input_size", None)
    if size is not None and x.dim() == len(size) + 2 and tuple(x.shape[2:]) != tuple(size):
        got, want = "x".join(map(str, x.shape[2:])), "x".join(map(str, size))
        kind = "signals of length" if len(size) == 1 else "images of"
        resize = (f"torch.nn.functional.interpolate(x, size={tuple(size)}, mode='area')" if len(size) == 2 else
                  f"a crop or window of {size[0]} steps")
        raise ValueError(f"{what} has shape {tuple(x.shape)}: {kind} {got}, but the {type(net).__name__} was trained "
                         f"on {kind} {want} (batch, {x.shape[1]}, {', '.join(map(str, size))}); it would give an answer "
                         f"for other sizes, just not a meaningful one. Resize the input to {want} (e.g. {resize}) or "
                         f"train a classifier on {kind} {got}")


def check_range(x: torch.Tensor, data_range: tuple[float, float], what: str = "input") -> None:
    """Raise a ``ValueError`` naming the fix if ``x`` has entries outside ``data_range`` (or NaN)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}; convert it with "
                        "torch.as_tensor(x, dtype=torch.float32)")
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
    ``data_range`` to [-1, 1], on the noise ``schedule``: a :class:`~multidiff.core.schedules.VPSDE`
    (the model takes times in [0, 1]; DiffPure's ``VPSDE(0.1, 20)`` by default) or a
    :class:`~multidiff.core.schedules.DiscreteSchedule` (a DDPM table: the model takes step indices).
    Purification is a partial run of the core's entry point (:func:`multidiff.core.samplers.run`
    with ``x_start=x``): the input is forward-noised to ``t_start`` (DiffPure's t*) and ``sampler``
    walks the core's grid back to 0. ``sampler``
    defaults to ``"euler_sde"`` (Euler-Maruyama on the reverse VP-SDE, DiffPure) for a
    VP-SDE model and ``"ddpm"`` (its discrete counterpart) for a table; any method the core
    registers for the model's kind is accepted (and stored by its registered name).
    ``t_start`` is the fraction of the diffusion run (0 turns purification off: identity).
    ``sampler_steps`` defaults to DiffPure's dt = 1e-3 (t* x 1000 steps; every table step from t* for
    a table). ``gradient_checkpointing`` recomputes each network call in the backward pass, so
    full-gradient attacks fit in memory.
    """

    def __init__(self, model: Callable, t_start: float = 0.1, sampler_steps: Optional[int] = None,
                 sampler: Optional[str] = None, schedule: Union[VPSDE, DiscreteSchedule] = VPSDE(),
                 data_range: tuple[float, float] = (0.0, 1.0),
                 gradient_checkpointing: bool = True):
        super().__init__()
        t_start = float(t_start)
        if not (math.isfinite(t_start) and 0 <= t_start <= 1):
            raise ValueError(f"t_start must lie in (0, 1] (a fraction of the diffusion time; DiffPure's t* = 0.1), "
                             f"or be 0 to turn purification off; got {t_start}")
        if not isinstance(schedule, (VPSDE, DiscreteSchedule)):
            raise TypeError(f"schedule must be a VPSDE or a DiscreteSchedule (multidiff.core.schedules), got "
                            f"{type(schedule).__name__}")
        self.discrete, self.schedule = isinstance(schedule, DiscreteSchedule), schedule
        sampler = sampler if sampler is not None else ("ddpm" if self.discrete else "euler_sde")
        sampler = samplers.resolve(sampler, "discrete" if self.discrete else "continuous")
        lo, hi = map(float, data_range)
        if not hi > lo:
            raise ValueError(f"data_range must be (low, high) with high > low, got {data_range}")
        self.model = model  # registered as a submodule when it is an nn.Module (moves with .to())
        self.t_start, self.sampler, self.data_range = t_start, sampler, (lo, hi)
        self.gradient_checkpointing = gradient_checkpointing
        total = len(schedule) if self.discrete else 1000
        default = max(1, round(t_start * total))
        sampler_steps = check_whole("sampler_steps", sampler_steps, none=f"t_start x {total} = {default}")
        self.sampler_steps = default if sampler_steps is None else sampler_steps
        self.grid = (samplers.make_grid(sampler, self.sampler_steps, t_start=t_start, schedule=schedule)
                     if t_start > 0 else None)

    @property
    def level(self) -> float:
        """Signal level alpha_bar(t*) the input is diffused to (1 when purification is off)."""
        return 1.0 if self.grid is None else float(self.grid.alpha_bars[0])

    def _denoiser(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.gradient_checkpointing and torch.is_grad_enabled() and x.requires_grad:
            return checkpoint(self.model, x, t, use_reentrant=False)
        return self.model(x, t)

    def forward(self, x: torch.Tensor, generator: Optional[torch.Generator] = None,
                randn: Optional[Randn] = None) -> torch.Tensor:
        """One purification run, differentiable. Noise: fresh from torch's global generator, from
        ``generator``, or from ``randn(like)`` when given (e.g. :func:`~multidiff.core.samplers.rowwise_randn`
        for noise tied to each input: the same draw whatever the input's value or batch)."""
        check_input(x, "input", self.model if isinstance(self.model, nn.Module) else None)
        check_range(x, self.data_range)
        if self.grid is None:
            return x
        lo, hi = self.data_range
        param = next(iter(self.model.parameters()), None) if isinstance(self.model, nn.Module) else None
        work = param.dtype if param is not None and param.is_floating_point() else torch.float32
        z = ((x.to(work) - lo) / (hi - lo)) * 2 - 1
        z = samplers.run(self._denoiser, sampler=self.sampler, sampler_steps=self.sampler_steps, x_start=z,
                         t_start=self.t_start, generator=generator, randn=randn, schedule=self.schedule)
        return ((z.clamp(-1, 1) + 1) / 2 * (hi - lo) + lo).to(x.dtype)

    def purify_many(self, x: torch.Tensor, n: int, generator: Optional[torch.Generator] = None,
                    randn: Optional[Randn] = None) -> torch.Tensor:
        """``n`` independent purification runs in one batched pass: shape ``(n, *x.shape)`` (the
        batch is sample-major: ``randn`` sees ``n * len(x)`` rows, run ``s`` of input ``b`` at ``s * len(x) + b``)."""
        n = check_whole("n", n)
        return self(repeat_samples(x, n), generator=generator, randn=randn).reshape(n, *x.shape)
