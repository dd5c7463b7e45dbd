"""Purify, then classify (:class:`Defended`), and the two networks DiffPure needs: trained
(:func:`train_denoiser`, :func:`train_classifier`, through ``core.training.fit``), saved and loaded
together as one :class:`PurificationModel` (the task contract of :mod:`multidiff.core.task`)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ...core.checkpoint import register_kind
from ...core.device import seeded
from ...core.samplers import Randn
from ...core.schedules import VPSDE, schedule_from_config
from ...core.task import register_task
from ...core.training import Batches, TrainConfig, fit, resolve_train_config
from ...core.validate import check_whole
from .model import Purifier, check_input, check_range

__all__ = ["Defended", "PurificationModel", "train_denoiser", "train_classifier",
           "DEFAULT_DENOISER_TRAIN_CONFIG", "DEFAULT_CLASSIFIER_TRAIN_CONFIG"]

# How the two networks train unless told otherwise (``train_config=``): AdamW lr 2e-3 (weight decay
# 1e-6) on a cosine schedule, clipping at norm 1, quiet; the diffusion model 50 epochs with EMA 0.999,
# the classifier 30 epochs with EMA 0.99.
DEFAULT_DENOISER_TRAIN_CONFIG = TrainConfig(epochs=50, lr=2e-3, weight_decay=1e-6, lr_schedule="cosine",
                                            ema_decay=0.999, grad_clip=1.0, progress=False)
DEFAULT_CLASSIFIER_TRAIN_CONFIG = TrainConfig(epochs=30, lr=2e-3, weight_decay=1e-6, lr_schedule="cosine",
                                              ema_decay=0.99, grad_clip=1.0, progress=False)
register_kind("purifier", "multidiff.tasks.purify.PurificationModel.load(DIR) (command line: multidiff purify evaluate "
                          "--checkpoint DIR)")


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
        """Logits of the purified ``x``, differentiable through the purification (log mean softmax over
        ``n_votes`` runs)."""
        logits = self._logits(x, generator, randn)
        if self.n_votes == 1:
            return logits[0]
        return torch.logsumexp(torch.log_softmax(logits, -1), 0) - math.log(self.n_votes)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, generator: Optional[torch.Generator] = None,
                randn: Optional[Randn] = None) -> torch.Tensor:
        """Labels ``(batch,)``: the majority vote over ``n_votes`` purification runs, without gradients."""
        logits = self._logits(x, generator, randn)
        votes = torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).sum(0).float()
        return (votes + 1e-3 * logits.softmax(-1).mean(0)).argmax(-1)


# training and persistence -------------------------------------------------------------------

def _batches(tensors, batch_size: int, seed: int) -> Batches:
    """Shuffled batches ``(t[idx] for t in tensors)`` whose short last batch is dropped."""
    return Batches(len(tensors[0]), batch_size, lambda idx: tuple(t[idx] for t in tensors), shuffle=True,
                   generator=torch.Generator().manual_seed(seed), drop_last=True)


def train_denoiser(x_train: torch.Tensor, train_config: Optional[TrainConfig] = None,
                   data_range: tuple[float, float] = (0.0, 1.0), batch_size: int = 128,
                   val: Optional[torch.Tensor] = None, schedule: VPSDE = VPSDE(), **net_kwargs) -> nn.Module:
    """Train a :class:`~multidiff.nets.unet_small.SmallUNet` as an eps-model of the continuous VP-SDE
    ``schedule`` (Song et al. 2021; DiffPure's score model, ``VPSDE(0.1, 20)``) on clean data rescaled to
    [-1, 1], via ``core.training.fit``, with ``train_config`` (None: :data:`DEFAULT_DENOISER_TRAIN_CONFIG`)."""
    from ...core.losses import draw_continuous_t, eps_mse
    from ...nets.unet_small import SmallUNet

    check_range(x_train, data_range, "x_train")
    config = resolve_train_config(DEFAULT_DENOISER_TRAIN_CONFIG, train_config)
    lo, hi = data_range
    scaled = lambda x: (x.float() - lo) / (hi - lo) * 2 - 1
    dims = x_train.dim() - 2
    with seeded(config.seed):  # the initialisation fixed by the config's seed, the caller's generators untouched
        net = SmallUNet(x_train.shape[1], dims=dims, time_scale=1000.0, **net_kwargs)

    def loss_fn(model, batch):
        x0 = batch[0]
        return eps_mse(model, x0, draw_continuous_t(len(x0), device=x0.device), schedule.alpha_bar_of)

    val_batches = None if val is None else [(v,) for v in scaled(val).split(batch_size)]
    fit(net, loss_fn, _batches([scaled(x_train)], batch_size, config.seed), config, val_batches=val_batches)
    return net


def train_classifier(x_train: torch.Tensor, y_train: torch.Tensor, n_classes: int,
                     train_config: Optional[TrainConfig] = None, batch_size: int = 64, **net_kwargs) -> nn.Module:
    """Train a :class:`~multidiff.nets.classifiers.ConvClassifier` with cross-entropy through
    ``core.training.fit``, with ``train_config`` (None: :data:`DEFAULT_CLASSIFIER_TRAIN_CONFIG`).
    The network records the input size it was trained on (``net.input_size``, e.g. ``(8, 8)``;
    saved by :meth:`PurificationModel.save`): :class:`Defended` and ``evaluate`` refuse inputs of other sizes,
    which its adaptive pooling would otherwise take without a word."""
    from ...nets.classifiers import ConvClassifier

    check_input(x_train, "x_train")
    if not isinstance(y_train, torch.Tensor):
        raise TypeError(f"y_train must be a torch.Tensor of class indices, got {type(y_train).__name__}; convert it "
                        "with torch.as_tensor(y, dtype=torch.long)")
    if y_train.shape != (len(x_train),):
        raise ValueError(f"y_train must have shape ({len(x_train)},), got {tuple(y_train.shape)}")
    config = resolve_train_config(DEFAULT_CLASSIFIER_TRAIN_CONFIG, train_config)
    with seeded(config.seed):  # as train_denoiser
        net = ConvClassifier(x_train.shape[1], n_classes, dims=x_train.dim() - 2, **net_kwargs)
    net.input_size = tuple(x_train.shape[2:])
    loss_fn = lambda model, batch: nn.functional.cross_entropy(model(batch[0]), batch[1])
    fit(net, loss_fn, _batches([x_train.float(), y_train.long()], batch_size, config.seed), config)
    return net


class PurificationModel:
    """DiffPure's two networks as one object: a VP-SDE eps-model of the clean data (Song et al. 2021;
    DiffPure, Nie et al. 2022) and the classifier it defends, on inputs in ``data_range``.

    ``fit(x, y)`` trains the classifier (:func:`train_classifier` with ``classifier_train_config``,
    ``classifier_batch_size`` and the ``classifier_net`` keywords of
    :class:`~multidiff.nets.classifiers.ConvClassifier`), then the denoiser (:func:`train_denoiser` with
    ``train_config``, ``batch_size`` and the ``denoiser_net`` keywords of
    :class:`~multidiff.nets.unet_small.SmallUNet`). ``sample(x, t_start, seed=)`` purifies ``x``;
    :meth:`purifier` gives the :class:`Purifier` that :class:`Defended` and ``evaluate`` take. ``meta``
    is saved with the weights (``data_range``, and what the caller adds: dataset, classes ...).
    The task contract (:mod:`multidiff.core.task`): ``kind``, fit, sample, save, load, default_train_config.
    """

    kind = "purifier"  # the checkpoint kind save() writes and load() reads

    def __init__(self, data_range: tuple[float, float] = (0.0, 1.0), train_config: Optional[TrainConfig] = None,
                 classifier_train_config: Optional[TrainConfig] = None, batch_size: int = 128,
                 classifier_batch_size: int = 64, denoiser_net: Optional[dict] = None,
                 classifier_net: Optional[dict] = None, meta: Optional[dict] = None):
        self.data_range = (float(data_range[0]), float(data_range[1]))
        self.train_config, self.classifier_train_config = train_config, classifier_train_config
        self.batch_size, self.classifier_batch_size = batch_size, classifier_batch_size
        self.denoiser_net, self.classifier_net = dict(denoiser_net or {}), dict(classifier_net or {})
        self.meta = {**(meta or {}), "data_range": list(self.data_range)}
        self.denoiser: Optional[nn.Module] = None
        self.classifier: Optional[nn.Module] = None
        self.schedule = VPSDE()  # the denoiser's: DiffPure's VP-SDE (0.1, 20), recorded by save

    @classmethod
    def default_train_config(cls) -> TrainConfig:
        """:data:`DEFAULT_DENOISER_TRAIN_CONFIG`, the diffusion model's (the classifier's:
        :data:`DEFAULT_CLASSIFIER_TRAIN_CONFIG`)."""
        return DEFAULT_DENOISER_TRAIN_CONFIG

    def fit(self, x: torch.Tensor, y: torch.Tensor, n_classes: Optional[int] = None,
            val: Optional[torch.Tensor] = None) -> "PurificationModel":
        """Train the classifier on ``(x, y)`` (``n_classes`` None: ``y.max() + 1``), then the denoiser
        on ``x`` (``val``: clean inputs for its validation loss); returns ``self``."""
        if n_classes is None:
            n_classes = int(torch.as_tensor(y).max()) + 1
        classifier = train_classifier(x, y, n_classes, self.classifier_train_config, self.classifier_batch_size,
                                      **self.classifier_net)
        denoiser = train_denoiser(x, self.train_config, self.data_range, self.batch_size, val, self.schedule,
                                  **self.denoiser_net)
        self.classifier, self.denoiser = classifier, denoiser
        return self

    def _check_fitted(self) -> None:
        if self.denoiser is None or self.classifier is None:
            raise RuntimeError("this PurificationModel is not fitted; call fit(x, y) or PurificationModel.load(dir)")

    def purifier(self, t_start: float = 0.1, sampler_steps: Optional[int] = None,
                 sampler: Optional[str] = None) -> Purifier:
        """The :class:`Purifier` of the denoiser on ``data_range``: diffuse to ``t_start``, then ``sampler``
        back to 0 in ``sampler_steps`` steps (DiffPure: ``"euler_sde"``, t* x 1000 steps)."""
        self._check_fitted()
        return Purifier(self.denoiser, t_start, sampler_steps=sampler_steps, sampler=sampler,
                        schedule=self.schedule, data_range=self.data_range)

    @torch.no_grad()
    def sample(self, x: torch.Tensor, t_start: float = 0.1, sampler_steps: Optional[int] = None,
               sampler: Optional[str] = None, seed: Optional[int] = None) -> torch.Tensor:
        """``x`` purified (same shape and range) by :meth:`purifier`; ``seed`` fixes the noise (None: fresh)."""
        purifier = self.purifier(t_start, sampler_steps, sampler)
        device = next(self.denoiser.parameters()).device
        generator = torch.Generator(device=device)
        if seed is None:
            generator.seed()  # fresh entropy, without touching the global RNG
        else:
            generator.manual_seed(seed)
        return purifier(x.to(device), generator=generator)

    def save(self, directory: str | Path) -> Path:
        """Both networks and ``meta`` (with the classifier's ``input_size`` when it records one) as one
        atomic safetensors checkpoint."""
        from ...core.checkpoint import save_checkpoint

        self._check_fitted()
        size = getattr(self.classifier, "input_size", None)
        extra = {} if size is None else {"classifier_input_size": [int(n) for n in size]}
        return save_checkpoint(directory, {"denoiser": self.denoiser.state_dict(),
                                           "classifier": self.classifier.state_dict()},
                               {"denoiser": self.denoiser.config, "classifier": self.classifier.config,
                                "schedule": self.schedule.to_config(), **self.meta, **extra}, kind=self.kind)

    @classmethod
    def load(cls, directory: str | Path, device: str = "auto") -> "PurificationModel":
        """The model :meth:`save` wrote, both networks in eval mode on ``device``; a checkpoint of another
        kind raises :class:`~multidiff.core.checkpoint.CheckpointKindError`. The classifier gets back the
        ``input_size`` it was trained on (checkpoints written before it was recorded load without one:
        inputs of any size are then taken)."""
        from ...core.checkpoint import load_checkpoint
        from ...core.device import resolve_device
        from ...nets.classifiers import ConvClassifier
        from ...nets.unet_small import SmallUNet

        states, config = load_checkpoint(directory, kind=cls.kind, max_kind_version=1)
        dn = config["denoiser"]
        denoiser = SmallUNet(**{**dn, "mults": tuple(dn["mults"])})
        classifier = ConvClassifier(**config["classifier"])
        denoiser.load_state_dict(states["denoiser"])
        classifier.load_state_dict(states["classifier"])
        if config.get("classifier_input_size") is not None:
            classifier.input_size = tuple(config["classifier_input_size"])
        meta = {k: v for k, v in config.items()
                if k not in ("denoiser", "classifier", "classifier_input_size", "schedule")}
        model = cls(data_range=tuple(meta.get("data_range", (0.0, 1.0))), meta=meta)
        if "schedule" in config:  # checkpoints written before it was recorded hold DiffPure's VP-SDE
            model.schedule = schedule_from_config(config["schedule"])
        dev = resolve_device(device)
        model.denoiser, model.classifier = denoiser.to(dev).eval(), classifier.to(dev).eval()
        return model


register_task(PurificationModel)
