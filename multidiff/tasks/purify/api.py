"""Purify, then classify (:class:`Defended`), and the two networks DiffPure needs: training
(:func:`train_denoiser`, :func:`train_classifier`, through ``core.training.fit``) and one
checkpoint for both (:func:`save_models`, :func:`load_models`)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ...core.schedules import vp_alpha_bar
from ...core.validate import check_whole
from .model import Purifier, check_range

__all__ = ["Defended", "train_denoiser", "train_classifier", "save_models", "load_models"]


class Defended(nn.Module):
    """Purify, then classify. ``forward`` gives differentiable logits (with ``n_votes > 1`` the
    log of the mean softmax over the runs); ``predict`` gives the majority vote over ``n_votes``
    purification runs (ties broken by the mean probability)."""

    def __init__(self, classifier: nn.Module, purifier: Purifier, n_votes: int = 1):
        super().__init__()
        self.classifier, self.purifier, self.n_votes = classifier, purifier, check_whole("n_votes", n_votes)

    def _logits(self, x: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        runs = self.purifier.purify_many(x, self.n_votes, generator=generator)
        return self.classifier(runs.reshape(-1, *x.shape[1:])).reshape(self.n_votes, x.shape[0], -1)

    def forward(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        logits = self._logits(x, generator)
        if self.n_votes == 1:
            return logits[0]
        return torch.logsumexp(torch.log_softmax(logits, -1), 0) - math.log(self.n_votes)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        logits = self._logits(x, generator)
        votes = torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).sum(0).float()
        return (votes + 1e-3 * logits.softmax(-1).mean(0)).argmax(-1)


# training and persistence -------------------------------------------------------------------

def _loader(tensors, batch_size: int, seed: int):
    ds = torch.utils.data.TensorDataset(*tensors)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=len(ds) > batch_size,
                                       generator=torch.Generator().manual_seed(seed))


def train_denoiser(x_train: torch.Tensor, config=None, data_range: tuple[float, float] = (0.0, 1.0),
                   batch_size: int = 128, val: Optional[torch.Tensor] = None, **net_kwargs) -> nn.Module:
    """Train a :class:`~multidiff.nets.unet_small.SmallUNet` as a continuous VP-SDE eps-model
    (Song et al. 2021; DiffPure's score model) on clean data rescaled to [-1, 1], via ``core.training.fit``."""
    from ...core.losses import draw_continuous_t, eps_mse
    from ...core.training import TrainConfig, fit
    from ...nets.unet_small import SmallUNet

    check_range(x_train, data_range, "x_train")
    config = config or TrainConfig(epochs=50, lr=2e-3, lr_schedule="cosine", progress=False)
    lo, hi = data_range
    scaled = lambda x: (x.float() - lo) / (hi - lo) * 2 - 1
    dims = x_train.dim() - 2
    net = SmallUNet(x_train.shape[1], dims=dims, time_scale=1000.0, **net_kwargs)

    def loss_fn(model, batch):
        x0 = batch[0]
        return eps_mse(model, x0, draw_continuous_t(len(x0), device=x0.device), vp_alpha_bar)

    val_batches = None if val is None else [(v,) for v in scaled(val).split(batch_size)]
    fit(net, loss_fn, _loader([scaled(x_train)], batch_size, config.seed), config, val_batches=val_batches)
    return net


def train_classifier(x_train: torch.Tensor, y_train: torch.Tensor, n_classes: int, config=None,
                     batch_size: int = 64, **net_kwargs) -> nn.Module:
    """Train a :class:`~multidiff.nets.classifiers.ConvClassifier` with cross-entropy through ``core.training.fit``."""
    from ...core.training import TrainConfig, fit
    from ...nets.classifiers import ConvClassifier

    if y_train.shape != (len(x_train),):
        raise ValueError(f"y_train must have shape ({len(x_train)},), got {tuple(y_train.shape)}")
    config = config or TrainConfig(epochs=30, lr=2e-3, lr_schedule="cosine", ema_decay=0.99, progress=False)
    net = ConvClassifier(x_train.shape[1], n_classes, dims=x_train.dim() - 2, **net_kwargs)
    loss_fn = lambda model, batch: nn.functional.cross_entropy(model(batch[0]), batch[1])
    fit(net, loss_fn, _loader([x_train.float(), y_train.long()], batch_size, config.seed), config)
    return net


def save_models(directory: str | Path, denoiser: nn.Module, classifier: nn.Module, meta: dict) -> Path:
    """Write both networks and their hyper-parameters as one atomic safetensors checkpoint."""
    from ...core.checkpoint import save_checkpoint
    return save_checkpoint(directory, {"denoiser": denoiser.state_dict(), "classifier": classifier.state_dict()},
                           {"denoiser": denoiser.config, "classifier": classifier.config, **meta})


def load_models(directory: str | Path, device: str = "auto") -> tuple[nn.Module, nn.Module, dict]:
    """Inverse of :func:`save_models`: ``(denoiser, classifier, meta)`` in eval mode on ``device``."""
    from ...core.checkpoint import load_checkpoint
    from ...core.device import resolve_device
    from ...nets.classifiers import ConvClassifier
    from ...nets.unet_small import SmallUNet

    states, meta = load_checkpoint(directory)
    dn = meta["denoiser"]
    denoiser = SmallUNet(**{**dn, "mults": tuple(dn["mults"])})
    classifier = ConvClassifier(**meta["classifier"])
    denoiser.load_state_dict(states["denoiser"])
    classifier.load_state_dict(states["classifier"])
    dev = resolve_device(device)
    return denoiser.to(dev).eval(), classifier.to(dev).eval(), meta
