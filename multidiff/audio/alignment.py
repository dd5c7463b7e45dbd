"""Monotonic alignment search (MAS) of Glow-TTS (Kim et al. 2020), used by Grad-TTS, in pure torch.

Given a log-likelihood ``value[b, i, j]`` of mel frame ``j`` under text token ``i``, MAS finds the
monotonic, surjective path (every token gets >= 1 consecutive frames, frames in order, the first frame
on the first token and the last frame on the last token) of maximal total log-likelihood:
``Q[i, j] = value[i, j] + max(Q[i, j-1], Q[i-1, j-1])``. The dynamic programme loops over frames
and is vectorised over the batch and the tokens; no C extension is needed.
"""
from __future__ import annotations

import torch

__all__ = ["maximum_path", "durations_to_path"]


@torch.no_grad()
def maximum_path(value: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hard alignment ``(batch, tokens, frames)`` of 0/1 maximising the summed ``value`` over monotonic
    paths. ``mask`` ``(batch, tokens, frames)`` marks the valid (token < n_text, frame < n_frames) cells;
    each item needs at least as many frames as tokens."""
    if value.shape != mask.shape or value.dim() != 3:
        raise ValueError(f"value and mask must both be (batch, tokens, frames), got {tuple(value.shape)} "
                         f"and {tuple(mask.shape)}")
    mask = mask.bool()
    t_x = mask[:, :, 0].sum(1)
    t_y = mask[:, 0, :].sum(1)
    if (t_y < t_x).any():
        raise ValueError("every item needs at least as many mel frames as text tokens for a monotonic alignment")
    b, n_tok, n_fr = value.shape
    neg = torch.finfo(torch.float64).min / 4
    v = value.double().masked_fill(~mask, 0.0)
    q = torch.full((b, n_tok), neg, dtype=torch.float64, device=value.device)
    q[:, 0] = v[:, 0, 0]
    took_diag = torch.zeros((b, n_tok, n_fr), dtype=torch.bool, device=value.device)
    tok = torch.arange(n_tok, device=value.device)
    for j in range(1, n_fr):
        shifted = torch.cat([torch.full_like(q[:, :1], neg), q[:, :-1]], dim=1)
        took_diag[:, :, j] = shifted > q
        q = torch.maximum(q, shifted) + v[:, :, j]
        q = q.masked_fill(tok.unsqueeze(0) > j, neg)  # token i needs at least i frames before it
    path = torch.zeros((b, n_tok, n_fr), dtype=value.dtype, device=value.device)
    rows = torch.arange(b, device=value.device)
    index = t_x - 1
    for j in range(n_fr - 1, -1, -1):
        active = j < t_y
        path[rows[active], index[active], j] = 1
        step = active & took_diag[rows, index, j] & (index > 0)
        index = index - step.long()
    return path


def durations_to_path(durations: torch.Tensor, n_frames: int | None = None) -> torch.Tensor:
    """Hard alignment ``(batch, tokens, frames)`` giving token ``i`` ``durations[b, i]`` consecutive frames."""
    durations = durations.long()
    ends = torch.cumsum(durations, dim=1)
    n_frames = int(ends[:, -1].max()) if n_frames is None else n_frames
    frames = torch.arange(n_frames, device=durations.device)
    starts = ends - durations
    return ((frames >= starts.unsqueeze(-1)) & (frames < ends.unsqueeze(-1))).float()
