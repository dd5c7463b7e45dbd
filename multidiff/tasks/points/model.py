"""The diffusion model both point-cloud tasks share: hyper-parameters, PVD's schedule (1000 steps,
linear betas 1e-4..0.02) over a :class:`~multidiff.nets.point_denoiser.PointDenoiser`, sampling
through the core's DDPM / DDIM / DPM-Solver++(2M) (with DDPM's ``clip_denoised``), training through
``core.training.fit``, and checkpoints; :class:`PointModel`, the base of every public point-cloud
model (how it reads clouds, its training settings, its config and ``save``). The public classes
(:class:`~.api.Generator`, :class:`~.api.Completer`, :class:`~.api.LatentGenerator`,
:class:`~.api.LatentCompleter`) are in :mod:`.api`."""
from __future__ import annotations

import copy
import math
import numbers
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ...core.checkpoint import load_checkpoint, save_checkpoint
from ...core.denoiser import clip_denoised
from ...core.device import seeded
from ...core.samplers import run as run_sampler
from ...core.schedules import DiscreteSchedule, recorded_schedule
from ...core.validate import check_whole
from ...core.training import Batches, TrainConfig, TrainResult, fit as train_loop, resolve_train_config
from ...datasets.pointclouds import NORMALIZATIONS, PointCloudFolder, check_points, load_folder, normalize, resample
from ...nets.point_denoiser import PointDenoiser

__all__ = ["DEFAULT_TRAIN_CONFIG", "PointModel"]

# How both point-cloud models train unless told otherwise: AdamW lr 1e-3 (weight decay 1e-6) on a
# cosine schedule, clipping at norm 1, EMA 0.999, 100 epochs. ``train_config=`` replaces it; the
# keywords epochs, max_steps, lr and ema_decay default to its values.
DEFAULT_TRAIN_CONFIG = TrainConfig(epochs=100, lr=1e-3, weight_decay=1e-6, lr_schedule="cosine", ema_decay=0.999,
                                   grad_clip=1.0)
_D = DEFAULT_TRAIN_CONFIG
_TRAIN_KEYWORDS = ("epochs", "max_steps", "lr", "ema_decay")

_HPARAMS = ("num_points", "channels", "layers", "k", "num_train_steps", "beta_start", "beta_end", "normalization",
            "max_known", "views")
KIND_VERSION = 2  # 2: the hyper-parameter num_train_steps


def check_training_args(batch_size, views, epochs, max_steps, lr) -> None:
    """``ValueError`` naming the argument for a training setting no run can use, when the model is
    built rather than after the data are read (0 epochs or a batch of 0 clouds used to start reading
    and training; a NaN learning rate to train on NaN)."""
    for name, value, none in (("batch_size", batch_size, None), ("views", views, None),
                              ("epochs", epochs, "the train_config's"), ("max_steps", max_steps, "no limit")):
        check_whole(name, value, none=none)
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr)
                           or not lr > 0):
        raise ValueError(f"lr must be > 0 (a finite number), got {lr!r}")


class PointModel:
    """What every point-cloud model shares: :meth:`read_clouds` (its ``num_points``, ``normalization`` and
    ``seed``); its :class:`TrainConfig` from :meth:`default_train_config` and the keywords ``epochs``,
    ``max_steps``, ``lr``, ``ema_decay`` (replacing its fields when set to other values than its own) with
    ``seed``, ``device`` and ``progress``; its config (``clip`` and the settings named by ``hparam_names``);
    and :meth:`save` of the module in attribute ``weights_key`` as ``kind``."""

    kind = ""  # the checkpoint kind (core.checkpoint.register_kind) that save() writes and load() reads
    kind_version = 1
    hparam_names: tuple = ()
    schedule_names: tuple = ("schedule",)  # the attributes holding its schedules, recorded by config()
    weights_key = "model"
    DEFAULT_TRAIN_CONFIG: TrainConfig  # what fit trains with unless train_config= replaces it

    @classmethod
    def default_train_config(cls) -> TrainConfig:
        """The class's ``DEFAULT_TRAIN_CONFIG`` (the task contract, :mod:`multidiff.core.task`)."""
        return cls.DEFAULT_TRAIN_CONFIG

    def read_clouds(self, data, classes: Optional[Sequence[str]] = None, split: str = "train",
                    max_shapes: Optional[int] = None) -> PointCloudFolder:
        """The clouds ``data`` names, read as ``fit`` reads them: a folder ``data/CLASS/split/*``
        (``classes``, ``split`` and at most ``max_shapes`` shapes per class), a :class:`PointCloudFolder`
        (as it is), or a (S, N, 3) array of clouds; each resampled to ``num_points`` points (seeded by
        ``seed``) and put in the model's ``normalization``."""
        if isinstance(data, PointCloudFolder):
            return data
        if isinstance(data, (str, Path)):
            return load_folder(data, classes, split, self.num_points, self.normalization, max_shapes, self.seed)
        clouds = torch.as_tensor(np.asarray(data) if not isinstance(data, torch.Tensor) else data)
        if clouds.dim() != 3 or clouds.shape[-1] != 3 or len(clouds) == 0:
            raise ValueError("training clouds must be a folder path or a (S, N, 3) array, got shape "
                             f"{tuple(clouds.shape)}")
        rows = [check_points(c, f"cloud {i}") for i, c in enumerate(clouds)]
        rng = np.random.default_rng(self.seed)
        sizes = [len(r) for r in rows]
        rows = [r if len(r) == self.num_points else resample(r, self.num_points, rng) for r in rows]
        x, norm = normalize(torch.tensor(np.stack(rows)), self.normalization)
        return PointCloudFolder(x.float(), norm, ["?"] * len(rows), [Path(f"cloud_{i}") for i in range(len(rows))],
                                sizes)

    def _set_training(self, epochs, max_steps, batch_size, lr, ema_decay, device, seed, progress, checkpoint_dir,
                      train_config, build) -> None:
        """Keep the training settings and set ``self.model = build()``, its initialisation fixed by ``seed``
        (the caller's random generators untouched); the model is not fitted yet."""
        self.epochs, self.max_steps, self.batch_size = epochs, max_steps, batch_size
        self.lr, self.ema_decay = lr, ema_decay
        self.device, self.seed, self.progress, self.checkpoint_dir = device, seed, progress, checkpoint_dir
        self.train_config = train_config
        with seeded(seed):
            self.model = build()
        self.fitted = False

    def _check_fitted(self):
        if not self.fitted:
            name = type(self).__name__
            raise RuntimeError(f"this {name} is not fitted; call fit(...) or {name}.load(dir)")

    def _snapshots(self, on_epoch_end: Optional[Callable]) -> Optional[Callable]:
        """``on_epoch_end`` as ``core.training.fit`` calls it: ``on_epoch_end(obj, info)`` with ``obj`` a fitted
        shallow copy of this object holding the loop's copy of the weights (EMA); None stays None."""
        if on_epoch_end is None:
            return None

        def call(module, info: dict) -> None:
            obj = copy.copy(self)
            setattr(obj, self.weights_key, module)
            obj.fitted = True
            on_epoch_end(obj, info)
        return call

    def _train_config(self) -> TrainConfig:
        """The :class:`TrainConfig` ``fit`` trains with."""
        return resolve_train_config(self.default_train_config(), self.train_config,
                                    {k: getattr(self, k) for k in _TRAIN_KEYWORDS},
                                    {"seed": self.seed, "progress": self.progress, "device": self.device})

    def config(self) -> dict:
        """``clip``, the settings named by ``hparam_names`` and the schedules (``schedule_names``, as
        ``to_config()``), as checkpoints record them."""
        return {"clip": self.clip, **{k: getattr(self, k) for k in self.hparam_names},
                **{k: getattr(self, k).to_config() for k in self.schedule_names}}

    def _check_schedules(self, cfg: dict, what: str) -> None:
        """``ValueError`` unless the schedules a checkpoint's ``cfg`` records are those its settings built."""
        for name in self.schedule_names:
            recorded_schedule(cfg, getattr(self, name), what, key=name)

    def save(self, directory: str | Path) -> Path:
        """Write the (EMA) weights and hyper-parameters atomically (safetensors + JSON)."""
        self._check_fitted()
        return save_checkpoint(directory, {self.weights_key: getattr(self, self.weights_key).state_dict()},
                               self.config(), kind=self.kind, kind_version=self.kind_version)


class _PointDiffusion(PointModel):
    """What both tasks share: hyper-parameters, the schedule, training through the core, persistence.

    Training settings: ``train_config`` (None: :data:`DEFAULT_TRAIN_CONFIG`); ``epochs``,
    ``max_steps``, ``lr`` and ``ema_decay`` replace its fields when set to other values than their
    defaults (those of :data:`DEFAULT_TRAIN_CONFIG`); ``seed``, ``device`` and ``progress`` always do.
    """

    in_features = 0
    kind_version, hparam_names, weights_key, DEFAULT_TRAIN_CONFIG = KIND_VERSION, _HPARAMS, "net", DEFAULT_TRAIN_CONFIG

    def __init__(self, num_points: int = 1024, channels: int = 128, layers: int = 4, k: int = 16,
                 num_train_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02,
                 normalization: str = "unit_std", epochs: int = _D.epochs, max_steps: Optional[int] = _D.max_steps,
                 batch_size: int = 32, lr: float = _D.lr, ema_decay: float = _D.ema_decay, device: str = "auto",
                 seed: int = 0, progress: bool = True, checkpoint_dir: Optional[str] = None,
                 max_known: Optional[int] = None, views: int = 4, train_config: Optional[TrainConfig] = None):
        if num_points < 2:
            raise ValueError(f"num_points must be >= 2, got {num_points}")
        check_training_args(batch_size=batch_size, views=views, epochs=epochs, max_steps=max_steps, lr=lr)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {normalization!r}")
        if max_known is not None and not 0 < max_known < num_points:
            raise ValueError(f"max_known must lie in [1, num_points - 1] = [1, {num_points - 1}], got {max_known}")
        self.num_points, self.channels, self.layers, self.k = num_points, channels, layers, k
        self.num_train_steps, self.beta_start, self.beta_end = num_train_steps, beta_start, beta_end
        self.normalization, self.epochs, self.max_steps = normalization, epochs, max_steps
        self.batch_size, self.lr, self.ema_decay, self.device = batch_size, lr, ema_decay, device
        self.seed, self.progress, self.checkpoint_dir = seed, progress, checkpoint_dir
        self.max_known = max_known if max_known is not None else num_points // 2
        self.views, self.train_config = views, train_config
        self.schedule = DiscreteSchedule("linear", num_train_steps, beta_start, beta_end)
        with seeded(seed):  # the initialisation fixed by seed, the caller's generators untouched
            self.net = self._build()
        self.fitted = False
        self.clip: Optional[float] = None  # |x0| bound for sampling, set by fit
        self.train_result: Optional[TrainResult] = None

    def _build(self) -> PointDenoiser:
        return PointDenoiser(self.channels, self.layers, self.k, in_features=self.in_features)

    def _train(self, batches: dict, loss_fn, resume: bool = False,
               on_epoch_end: Optional[Callable] = None) -> "_PointDiffusion":
        self.clip = 1.1 * float(batches["x0"].abs().max())  # range of clean coordinates seen in training
        n = len(batches["x0"])
        if n == 0:
            raise ValueError("no training clouds")
        loader = Batches(n, self.batch_size, lambda idx: {k: v[idx] for k, v in batches.items()},
                         shuffle=True, generator=torch.Generator().manual_seed(self.seed))
        if resume and self.checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir= (the folder whose last/ checkpoint training continues from)")
        self.train_result = train_loop(self.net, loss_fn, loader, self._train_config(), checkpoint_dir=self.checkpoint_dir,
                                       resume=resume, extra_config=self.config(),
                                       on_epoch_end=self._snapshots(on_epoch_end))
        self.net.cpu()
        self.fitted = True
        return self

    def _clipped(self, model):
        """Eps model whose implied clean cloud is clamped to the training range (DDPM's
        ``clip_denoised``, Ho et al. 2020): keeps few-step samplers stable."""
        if self.clip is None:
            return model
        return clip_denoised(model, self.schedule.alpha_bar_of, -self.clip, self.clip)

    def _run(self, model, shape, sampler_steps, sampler, generator, device, project=None):
        """Samples of ``shape`` from noise through the core's entry point (its grid for ``sampler``)."""
        return run_sampler(self._clipped(model), sampler=sampler, sampler_steps=sampler_steps,
                           schedule=self.schedule, shape=shape, device=device, generator=generator,
                           project=project)

    @classmethod
    def load_snapshot(cls, checkpoint_dir: str | Path, device: str = "auto") -> tuple["_PointDiffusion", dict]:
        """The model as training left it in ``checkpoint_dir/last`` (written after every epoch by
        ``fit`` with ``checkpoint_dir=``; its EMA weights when it keeps an EMA), and the loop state
        (``steps``, ``seconds`` of training, ``epoch``). Reads a run in progress, e.g. to draw a
        learning curve from another process."""
        states, cfg = load_checkpoint(Path(checkpoint_dir) / "last", kind="training")
        obj = cls(**{k: cfg[k] for k in _HPARAMS}, device=device)
        obj._check_schedules(cfg, f"snapshot {checkpoint_dir}")
        obj.net.load_state_dict(states["ema"] if "ema" in states else states["model"])
        obj.clip = cfg.get("clip")
        obj.net.eval()
        obj.fitted = True
        return obj, cfg["loop"]

    @classmethod
    def load(cls, directory: str | Path, device: str = "auto"):
        """Rebuild a model saved with :meth:`save`; a checkpoint of another kind raises
        :class:`~multidiff.core.checkpoint.CheckpointKindError` naming the loader that fits."""
        states, cfg = load_checkpoint(directory, kind=cls.kind, max_kind_version=KIND_VERSION)
        obj = cls(**{k: cfg[k] for k in _HPARAMS}, device=device)
        obj._check_schedules(cfg, f"checkpoint {directory}")
        obj.net.load_state_dict(states["net"])
        obj.clip = cfg.get("clip")
        obj.net.eval()
        obj.fitted = True
        return obj

