"""CSDI's self-supervised target choice (Tashiro et al. 2021, Sec. 4.3).

Of the observed entries, some become conditioning (``cond_mask = 1``) and the rest become
training targets. ``random``: each sample hides a uniformly drawn fraction of its observed
values. ``historical``: a sample borrows the missing pattern of another sample of the batch.
``mix``: each sample picks one of the two with probability 1/2.
"""
from __future__ import annotations

from typing import Optional

import torch

__all__ = ["random_cond_mask", "historical_cond_mask", "training_cond_mask", "STRATEGIES"]

STRATEGIES = ("random", "historical", "mix")


def random_cond_mask(observed: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Hide ``round(ratio * n_observed)`` observed entries per sample, ratio ~ U(0, 1)."""
    b = observed.shape[0]
    flat = observed.reshape(b, -1).bool()
    scores = torch.rand(flat.shape, generator=generator, device=observed.device)
    scores = scores.masked_fill(~flat, -1.0)  # unobserved entries sort last
    ratio = torch.rand(b, 1, generator=generator, device=observed.device)
    n_hidden = (flat.sum(1, keepdim=True) * ratio).round()
    rank = scores.argsort(dim=1, descending=True).argsort(dim=1)
    cond = flat & (rank >= n_hidden)
    return cond.reshape(observed.shape).to(observed.dtype)


def historical_cond_mask(observed: torch.Tensor, pattern: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Condition on the observed entries that the previous sample's pattern also observed."""
    pattern = observed if pattern is None else pattern
    return observed * pattern.roll(1, dims=0)


def training_cond_mask(observed: torch.Tensor, strategy: str, generator: Optional[torch.Generator] = None,
                       pattern: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Conditioning mask for one training batch under ``strategy`` (random, historical or mix)."""
    if strategy == "random":
        return random_cond_mask(observed, generator)
    if strategy == "historical":
        return historical_cond_mask(observed, pattern)
    if strategy == "mix":
        pick = torch.rand(observed.shape[0], generator=generator, device=observed.device) > 0.5
        pick = pick.reshape(-1, *([1] * (observed.dim() - 1)))
        return torch.where(pick, random_cond_mask(observed, generator), historical_cond_mask(observed, pattern))
    raise ValueError(f"mask strategy must be one of {STRATEGIES}, got {strategy!r}")
