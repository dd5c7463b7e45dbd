"""Purify, then classify (:class:`Defended`), and the two networks DiffPure needs: training
(:func:`train_denoiser`, :func:`train_classifier`, through ``core.training.fit``) and one
checkpoint for both (:func:`save_models`, :func:`load_models`)."""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ...core.samplers import Randn
from ...core.schedules import vp_alpha_bar
from ...core.training import Batches, TrainConfig, fit, resolve_train_config
from ...core.validate import check_whole
from .model import Purifier, check_input, check_range

__all__ = ["Defended", "train_denoiser", "train_classifier", "save_models", "load_models",
           "DEFAULT_DENOISER_TRAIN_CONFIG", "DEFAULT_CLASSIFIER_TRAIN_CONFIG"]

# How the two networks train unless told otherwise (``train_config=``): AdamW lr 2e-3 (weight decay
# 1e-6) on a cosine schedule, clipping at norm 1, quiet; the diffusion model 50 epochs with EMA 0.999,
# the classifier 30 epochs with EMA 0.99.
DEFAULT_DENOISER_TRAIN_CONFIG = TrainConfig(epochs=50, lr=2e-3, weight_decay=1e-6, lr_schedule="cosine",
                                            ema_decay=0.999, grad_clip=1.0, progress=False)
DEFAULT_CLASSIFIER_TRAIN_CONFIG = TrainConfig(epochs=30, lr=2e-3, weight_decay=1e-6, lr_schedule="cosine",
                                              ema_decay=0.99, grad_clip=1.0, progress=False)


class Defended(nn.Module):
    """Purify, then classify: a plain ``nn.Module`` classifier on the purifier's ``data_range``.

    ``forward(x)`` gives differentiable logits ``(batch, n_classes)`` (with ``n_votes > 1`` the log
    of the mean softmax over the runs); gradients flow through every purification step, so any
    white-box attack library (e.g. ``torchattacks``) can attack it as it would a bare classifier.
    ``predict`` gives the majority vote over ``n_votes`` purification runs (ties broken by the mean
    probability). Both networks are put in eval mode (an attacked classifier must not update
    batch-norm statistics or drop units); the purification noise is the only randomness: fresh from
    torch's global generator unless ``generator`` (or ``randn``) is given.
    """

    def __init__(self, classifier: nn.Module, purifier: Purifier, n_votes: int = 1):
        super().__init__()
        self.classifier, self.purifier, self.n_votes = classifier, purifier, check_whole("n_votes", n_votes)
        self.eval()

    @property
    def data_range(self) -> tuple[float, float]:
        """The input range the model is defined on (the purifier's)."""
        return self.purifier.data_range

    def _logits(self, x: torch.Tensor, generator: Optional[torch.Generator],
                randn: Optional[Randn] = None) -> torch.Tensor:
        check_input(x, "input", self.classifier)  # before purification runs: a shape the classifier cannot take
        runs = self.purifier.purify_many(x, self.n_votes, generator=generator, randn=randn)
        return self.classifier(runs.reshape(-1, *x.shape[1:])).reshape(self.n_votes, x.shape[0], -1)

    def forward(self, x: torch.Tensor, generator: Optional[torch.Generator] = None,
                randn: Optional[Randn] = None) -> torch.Tensor:
        logits = self._logits(x, generator, randn)
        if self.n_votes == 1:
            return logits[0]
        return torch.logsumexp(torch.log_softmax(logits, -1), 0) - math.log(self.n_votes)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, generator: Optional[torch.Generator] = None,
                randn: Optional[Randn] = None) -> torch.Tensor:
        logits = self._logits(x, generator, randn)
        votes = torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).sum(0).float()
        return (votes + 1e-3 * logits.softmax(-1).mean(0)).argmax(-1)


# training and persistence -------------------------------------------------------------------

def _batches(tensors, batch_size: int, seed: int) -> Batches:
    """Shuffled batches ``(t[idx] for t in tensors)`` whose short last batch is dropped."""
    return Batches(len(tensors[0]), batch_size, lambda idx: tuple(t[idx] for t in tensors), shuffle=True,
                   generator=torch.Generator().manual_seed(seed), drop_last=True)


def _train_config(default: TrainConfig, train_config: Optional[TrainConfig], net_kwargs: dict,
                  caller: str) -> TrainConfig:
    """``train_config`` (None: ``default``); the former keyword ``config=`` still works for one release."""
    if "config" in net_kwargs:
        warnings.warn(f"{caller}(config=...) is deprecated and will be removed in the next release; pass "
                      "train_config=...", DeprecationWarning, stacklevel=3)
        if train_config is not None:
            raise TypeError(f"{caller}() got both train_config and config (its deprecated name); pass train_config")
        train_config = net_kwargs.pop("config")
    return resolve_train_config(default, train_config)


def train_denoiser(x_train: torch.Tensor, train_config: Optional[TrainConfig] = None,
                   data_range: tuple[float, float] = (0.0, 1.0), batch_size: int = 128,
                   val: Optional[torch.Tensor] = None, **net_kwargs) -> nn.Module:
    """Train a :class:`~multidiff.nets.unet_small.SmallUNet` as a continuous VP-SDE eps-model
    (Song et al. 2021; DiffPure's score model) on clean data rescaled to [-1, 1], via ``core.training.fit``,
    with ``train_config`` (None: :data:`DEFAULT_DENOISER_TRAIN_CONFIG`)."""
    from ...core.losses import draw_continuous_t, eps_mse
    from ...nets.unet_small import SmallUNet

    check_range(x_train, data_range, "x_train")
    config = _train_config(DEFAULT_DENOISER_TRAIN_CONFIG, train_config, net_kwargs, "train_denoiser")
    lo, hi = data_range
    scaled = lambda x: (x.float() - lo) / (hi - lo) * 2 - 1
    dims = x_train.dim() - 2
    net = SmallUNet(x_train.shape[1], dims=dims, time_scale=1000.0, **net_kwargs)

    def loss_fn(model, batch):
        x0 = batch[0]
        return eps_mse(model, x0, draw_continuous_t(len(x0), device=x0.device), vp_alpha_bar)

    val_batches = None if val is None else [(v,) for v in scaled(val).split(batch_size)]
    fit(net, loss_fn, _batches([scaled(x_train)], batch_size, config.seed), config, val_batches=val_batches)
    return net


def train_classifier(x_train: torch.Tensor, y_train: torch.Tensor, n_classes: int,
                     train_config: Optional[TrainConfig] = None, batch_size: int = 64, **net_kwargs) -> nn.Module:
    """Train a :class:`~multidiff.nets.classifiers.ConvClassifier` with cross-entropy through
    ``core.training.fit``, with ``train_config`` (None: :data:`DEFAULT_CLASSIFIER_TRAIN_CONFIG`).
    The network records the input size it was trained on (``net.input_size``, e.g. ``(8, 8)``;
    saved by :func:`save_models`): :class:`Defended` and ``evaluate`` refuse inputs of other sizes,
    which its adaptive pooling would otherwise take without a word."""
    from ...nets.classifiers import ConvClassifier

    check_input(x_train, "x_train")
    if not isinstance(y_train, torch.Tensor):
        raise TypeError(f"y_train must be a torch.Tensor of class indices, got {type(y_train).__name__}; convert it "
                        "with torch.as_tensor(y, dtype=torch.long)")
    if y_train.shape != (len(x_train),):
        raise ValueError(f"y_train must have shape ({len(x_train)},), got {tuple(y_train.shape)}")
    config = _train_config(DEFAULT_CLASSIFIER_TRAIN_CONFIG, train_config, net_kwargs, "train_classifier")
    net = ConvClassifier(x_train.shape[1], n_classes, dims=x_train.dim() - 2, **net_kwargs)
    net.input_size = tuple(x_train.shape[2:])
    loss_fn = lambda model, batch: nn.functional.cross_entropy(model(batch[0]), batch[1])
    fit(net, loss_fn, _batches([x_train.float(), y_train.long()], batch_size, config.seed), config)
    return net


def save_models(directory: str | Path, denoiser: nn.Module, classifier: nn.Module, meta: dict) -> Path:
    """Write both networks and their hyper-parameters as one atomic safetensors checkpoint (with the
    classifier's ``input_size`` when it records one)."""
    from ...core.checkpoint import save_checkpoint

    size = getattr(classifier, "input_size", None)
    extra = {} if size is None else {"classifier_input_size": [int(n) for n in size]}
    return save_checkpoint(directory, {"denoiser": denoiser.state_dict(), "classifier": classifier.state_dict()},
                           {"denoiser": denoiser.config, "classifier": classifier.config, **meta, **extra},
                           kind="purifier")


def load_models(directory: str | Path, device: str = "auto") -> tuple[nn.Module, nn.Module, dict]:
    """Inverse of :func:`save_models`: ``(denoiser, classifier, meta)`` in eval mode on ``device``;
    a checkpoint of another kind raises :class:`~multidiff.core.checkpoint.CheckpointKindError`.
    The classifier gets back the ``input_size`` it was trained on (checkpoints written before it was
    recorded load without one: inputs of any size are then taken)."""
    from ...core.checkpoint import load_checkpoint
    from ...core.device import resolve_device
    from ...nets.classifiers import ConvClassifier
    from ...nets.unet_small import SmallUNet

    states, meta = load_checkpoint(directory, kind="purifier", max_kind_version=1)
    dn = meta["denoiser"]
    denoiser = SmallUNet(**{**dn, "mults": tuple(dn["mults"])})
    classifier = ConvClassifier(**meta["classifier"])
    denoiser.load_state_dict(states["denoiser"])
    classifier.load_state_dict(states["classifier"])
    if meta.get("classifier_input_size") is not None:
        classifier.input_size = tuple(meta["classifier_input_size"])
    dev = resolve_device(device)
    return denoiser.to(dev).eval(), classifier.to(dev).eval(), meta
