"""TimeGrad's model (Rasul et al., ICML 2021): an RNN encodes the past of a multivariate series and
a conditional diffusion head samples each next vector; samples are fed back autoregressively.

:class:`TimeGradModel` is the GluonTS-style module (as ``gluonts/torch/model/deepar/module.py``)
that owns the encoder, the mean scaling, the schedule (linear betas), its loss
(:func:`multidiff.core.losses.eps_mse`) and sampling through :func:`multidiff.core.samplers.run`
(all samples of all series in one call per step). The noise network is
:class:`multidiff.nets.timegrad.EpsilonTheta`.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from ...core import conditioning, losses, samplers, schedules
from ...core.validate import check_whole
from ...nets.timegrad import EpsilonTheta

__all__ = ["TimeGradModel"]


class TimeGradModel(nn.Module):
    """RNN encoder + diffusion head of TimeGrad, with its loss and its sampler.

    Inputs follow GluonTS' ``InstanceSplitter`` (NTC): ``past_target`` (B, past_length, D),
    ``past_observed_values`` (same), ``past_time_feat`` (B, past_length, F), ``future_time_feat``
    (B, H, F). ``past_length = context_length + max(lags_seq)``. Targets are mean-scaled per
    series over the context window (TimeGrad); unobserved values are zero in the inputs and
    excluded from the loss and from the scale (a series with an unobserved context takes the
    batch's default scale, see :meth:`_scale`).
    """

    def __init__(self, target_dim: int, context_length: int, prediction_length: int, num_time_features: int,
                 lags_seq: Sequence[int] = (1,), cell_type: str = "lstm", num_layers: int = 2,
                 hidden_size: int = 40, dropout_rate: float = 0.1, embed_dim: int = 1, num_train_steps: int = 100,
                 beta_start: float = 1e-4, beta_end: float = 0.1, residual_layers: int = 8,
                 residual_channels: int = 8, dilation_cycle: int = 2, num_parallel_samples: int = 100,
                 sampler: str = "ddpm", sampler_steps: Optional[int] = None, scaling: bool = True):
        super().__init__()
        if cell_type not in ("lstm", "gru"):
            raise ValueError(f"cell_type must be 'lstm' or 'gru', got {cell_type!r}")
        if not lags_seq or min(lags_seq) < 1:
            raise ValueError(f"lags_seq must be positive lags (e.g. [1, 24, 168]), got {list(lags_seq)}")
        self.target_dim, self.context_length, self.prediction_length = target_dim, context_length, prediction_length
        self.lags_seq = sorted(set(int(lag) for lag in lags_seq))
        self.past_length = context_length + max(self.lags_seq)
        self.num_parallel_samples, self.scaling = num_parallel_samples, scaling
        self.num_train_steps = num_train_steps
        self.set_sampler(sampler, sampler_steps)
        self.embed = nn.Embedding(target_dim, embed_dim)
        rnn = nn.LSTM if cell_type == "lstm" else nn.GRU
        in_dim = target_dim * (len(self.lags_seq) + embed_dim) + num_time_features
        self.rnn = rnn(in_dim, hidden_size, num_layers, dropout=dropout_rate if num_layers > 1 else 0.0,
                       batch_first=True)
        self.eps_net = EpsilonTheta(target_dim, hidden_size, residual_layers=residual_layers,
                                    residual_channels=residual_channels, dilation_cycle=dilation_cycle)
        self.schedule = schedules.DiscreteSchedule("linear", num_train_steps, beta_start, beta_end)

    # ----------------------------------------------------------------- helpers
    def set_sampler(self, sampler: str, sampler_steps: Optional[int] = None) -> None:
        """Choose the sampler: ``"ddpm"`` over the full grid is TimeGrad's; ``"ddim"`` /
        ``"dpm_solver"`` with 10-20 steps are the fast options."""
        sampler = samplers.resolve(sampler, "discrete")  # TimeGrad's schedule is a discrete table
        sampler_steps = check_whole("sampler_steps", sampler_steps, none="the full grid")
        self.sampler, self.sampler_steps = sampler, sampler_steps

    def _scale(self, past_target, past_observed):
        """Mean |value| of each series over its context window, (B, 1, D).

        A series with no observed value in its context falls back as GluonTS' ``MeanScaler`` does
        to the batch default: the mean |value| of that series over the contexts of the batch;
        a series observed nowhere in the batch takes the mean of the scales of the series that
        are; a batch with nothing observed at all uses 1 (its loss is entirely masked anyway).
        """
        ctx_t, ctx_o = past_target[:, -self.context_length:], past_observed[:, -self.context_length:]
        if not self.scaling:
            return torch.ones_like(ctx_t[:, :1])
        total = (ctx_t.abs() * ctx_o).sum(1, keepdim=True)
        count = ctx_o.sum(1, keepdim=True)
        batch_count = count.sum(0, keepdim=True)  # (1, 1, D)
        batch_scale = total.sum(0, keepdim=True) / batch_count.clamp(min=1)
        seen = batch_count > 0
        n_seen = seen.sum()
        others = torch.where(n_seen > 0, (batch_scale * seen).sum() / n_seen.clamp(min=1), 1.0)
        batch_scale = torch.where(seen, batch_scale, others)
        scale = torch.where(count > 0, total / count.clamp(min=1), batch_scale)
        return scale.clamp(min=1e-10)  # (B, 1, D)

    def _inputs(self, seq, time_feat, start: int, length: int):
        """RNN inputs for positions ``start .. start+length-1`` of the scaled sequence ``seq``."""
        lags = torch.cat([seq[:, start - lag:start - lag + length] for lag in self.lags_seq], dim=-1)
        emb = self.embed.weight.flatten().expand(seq.shape[0], length, -1)
        return torch.cat([lags, emb, time_feat], dim=-1)

    def _eps_model(self, cond):
        return lambda x, t: self.eps_net(x, t, cond)

    # -------------------------------------------------------------------- loss
    def loss(self, past_target, past_observed_values, past_time_feat, future_time_feat, future_target,
             future_observed_values) -> torch.Tensor:
        """Eps-MSE over the unrolled context + prediction window (teacher forcing), masked to
        observed values."""
        scale = self._scale(past_target, past_observed_values)
        obs = torch.cat([past_observed_values, future_observed_values], dim=1)
        seq = torch.cat([past_target, future_target], dim=1) * obs / scale
        feats = torch.cat([past_time_feat, future_time_feat], dim=1)
        start, length = self.past_length - self.context_length, self.context_length + self.prediction_length
        out, _ = self.rnn(self._inputs(seq, feats[:, start:start + length], start, length))
        x0 = seq[:, start:start + length].reshape(-1, self.target_dim)
        mask = obs[:, start:start + length].reshape(-1, self.target_dim)
        cond = out.reshape(-1, out.shape[-1])
        t = losses.draw_discrete_t(x0.shape[0], len(self.schedule), device=x0.device)
        return losses.eps_mse(self._eps_model(cond), x0, t, self.schedule.alpha_bar_of, mask=mask)

    # ---------------------------------------------------------------- sampling
    def grid(self) -> samplers.Grid:
        """The core's grid for this sampler (``sampler_steps=None``: every diffusion step)."""
        return samplers.make_grid(self.sampler, self.sampler_steps, schedule=self.schedule)

    @torch.no_grad()
    def forward(self, past_target, past_observed_values, past_time_feat, future_time_feat,
                num_parallel_samples: Optional[int] = None, generator: Optional[torch.Generator] = None):
        """Sample paths: returns (B, num_parallel_samples, prediction_length, D) in data units."""
        n = num_parallel_samples or self.num_parallel_samples
        scale = self._scale(past_target, past_observed_values)
        seq = past_target * past_observed_values / scale
        start = self.past_length - self.context_length
        _, state = self.rnn(self._inputs(seq, past_time_feat[:, start:], start, self.context_length))
        rep = lambda s: conditioning.repeat_samples(s, n)
        seq, feats = rep(seq), rep(future_time_feat)
        state = tuple(s.repeat(1, n, 1) for s in state) if isinstance(state, tuple) else state.repeat(1, n, 1)
        for k in range(self.prediction_length):
            pos = self.past_length + k
            out, state = self.rnn(self._inputs(seq, feats[:, k:k + 1], pos, 1), state)
            x = samplers.run(self._eps_model(out[:, 0]), sampler=self.sampler, sampler_steps=self.sampler_steps,
                             schedule=self.schedule, shape=(seq.shape[0], self.target_dim), dtype=seq.dtype,
                             device=seq.device, generator=generator)
            seq = torch.cat([seq, x.unsqueeze(1)], dim=1)
        paths = seq[:, self.past_length:] * rep(scale)  # (n*B, H, D), sample-major
        return paths.reshape(n, -1, self.prediction_length, self.target_dim).transpose(0, 1)
