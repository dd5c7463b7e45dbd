"""CSDI's self-supervised target choice (Tashiro et al. 2021, Sec. 4.3).

Of the observed entries, some become conditioning (``cond_mask = 1``) and the rest become
training targets. ``random``: each sample hides a uniformly drawn fraction of its observed
values. ``historical``: a sample borrows the missing pattern of another sample of the batch.
``mix``: each sample picks one of the two with probability 1/2.
"""
from __future__ import annotations

from typing import Optional

import torch

__all__ = ["random_cond_mask", "historical_cond_mask", "training_cond_mask", "hybrid_target_mask", "STRATEGIES"]

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


def hybrid_target_mask(observed: torch.Tensor, generator: Optional[torch.Generator] = None,
                       pattern: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Training targets (1 = hidden from the network, scored) among the ``observed`` entries of
    (B, K, L) windows, for a model that must meet every kind of gap: each window draws one of
    isolated points (45 % of windows, a rate in [5 %, 30 %]), blocks (25 %, two per chosen
    column, up to a quarter of the window each), a whole-column outage (5 %, one column plus 5 %
    points), or (25 %) the missing pattern of the previous window of the batch (``pattern``, default ``observed``; CSDI's "historical"
    strategy). Mixing masks of several kinds in pretraining is what TSPulse (Ekambaram et al.
    2025) found to transfer. A window left with no target gets 20 % points."""
    b, k, l = observed.shape
    dev = observed.device
    obs = observed.bool()
    rand = lambda *shape: torch.rand(*shape, generator=generator, device=dev)  # noqa: E731
    kind = (rand(b) * 100).long()
    kind = torch.bucketize(kind, torch.tensor([45, 70, 75], device=dev), right=True)  # 0 points .. 3 historical
    points = rand(b, k, l) < (0.05 + 0.25 * rand(b, 1, 1))
    pos = torch.arange(l, device=dev)
    starts = (rand(b, k, 2, 1) * l).long()
    lengths = (2 + rand(b, k, 2, 1) * max(1, l // 4 - 2)).long()
    blocks = ((pos >= starts) & (pos < starts + lengths)).any(2) & (rand(b, k, 1) < 0.6)
    column = torch.nn.functional.one_hot(rand(b, k).argmax(1), k).bool()[..., None].expand(b, k, l)
    outage = column | (rand(b, k, l) < 0.05)
    other = (observed if pattern is None else pattern).bool().roll(1, dims=0)
    historical = ~other
    choice = kind.view(b, 1, 1)
    targets = torch.where(choice == 0, points, torch.where(choice == 1, blocks,
                                                            torch.where(choice == 2, outage, historical))) & obs
    empty = targets.flatten(1).sum(1) == 0
    fallback = (rand(b, k, l) < 0.2) & obs
    targets = torch.where(empty.view(b, 1, 1), fallback, targets)
    return targets.to(observed.dtype)
