"""Point-cloud generation and completion with diffusion: the public API.

* :class:`Generator`: DDPM over point coordinates (PVD, Zhou et al. 2021: 1000 steps, linear betas
  1e-4..0.02) with the permutation-equivariant :class:`~multidiff.nets.point_denoiser.PointDenoiser`;
  samples with the core's DDPM / DDIM / DPM-Solver++(2M) at any step count.
* :class:`Completer`: PVD-style completion. The partial points sit clean among the noisy ones
  (flagged by a per-point feature) during training and are held fixed through the whole reverse
  process with ``conditioning.replace_known(noise_known=False)``; the loss runs over the free
  points only. Each pair is expressed in the frame of its partial scan (zero mean, unit std of the
  partial points), so completing a new scan needs nothing but the scan itself.
* :class:`LatentGenerator`: Luo & Hu (2021): a PointNet encoder, a latent prior and a point-wise
  denoiser conditioned on the shape latent; cost linear in points, no neighbour graph (:mod:`.latent`).
* :class:`LatentCompleter`: completion linear in points: a PointNet code of the scan, then the missing
  points drawn one by one given it by Luo & Hu's point-wise denoiser (:mod:`.latent_completion`).
* :func:`save_clouds` / :func:`load_clouds`: one cloud as ``.ply``/``.pcd`` (open3d) or ``.npy``
  (``Generator.save`` / ``.load`` write and read checkpoints).

Every public class of the task is here; the models they train are in :mod:`.model`, :mod:`.latent` and
:mod:`.latent_completion`, the benchmark protocol (:func:`~.evaluate.evaluate`,
:func:`~.evaluate.retrieve`) in :mod:`.evaluate`, :func:`~.plot.render` in :mod:`.plot`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ...core.checkpoint import load_checkpoint, load_state_strict, register_kind
from ...core.conditioning import replace_known
from ...core.device import resolve_device
from ...core.io import write_atomic
from ...core.losses import draw_discrete_t, eps_mse
from ...core.samplers import resolve as resolve_sampler
from ...core.schedules import DiscreteSchedule
from ...core.task import register_task
from ...core.training import Batches, TrainConfig, TrainResult, fit as train_loop, resolve_train_config
from ...core.validate import check_whole
from ...datasets.pointclouds import (NORMALIZATIONS, Normalization, PointCloudFolder, check_points, normalize,
                                    partial_scan, read_cloud, shape_seed)
from .latent import (DECODER_WIDTHS, DEFAULT_LATENT_TRAIN_CONFIG, ENCODER_WIDTHS, PRIOR_TRAIN_CONFIG, TIME_FEATURES,
                     LatentPointDiffusion)
from .latent_completion import ScanCompletionDiffusion
from .model import PointModel, _PointDiffusion, check_training_args

__all__ = ["Generator", "Completer", "LatentGenerator", "LatentCompleter", "save_clouds", "load_clouds",
           "completion_pairs", "up_rotation", "UP_AXES", "scan_list", "prepare_scans", "restore_scan"]

# the checkpoint kinds of the classes below (their attribute ``kind``) and what loads each
_SAMPLE, _COMPLETE = "multidiff points sample DIR OUT", "multidiff points complete DIR PARTIAL... --out OUT"
register_kind("points.generator", f"multidiff.tasks.points.Generator.load(DIR) (command line: {_SAMPLE})")
register_kind("points.completer", f"multidiff.tasks.points.Completer.load(DIR) (command line: {_COMPLETE})")
register_kind("points.latent", f"multidiff.tasks.points.LatentGenerator.load(DIR) (command line: {_SAMPLE})")
register_kind("points.latent_completer",
              f"multidiff.tasks.points.LatentCompleter.load(DIR) (command line: {_COMPLETE})")


class Generator(_PointDiffusion):
    """Unconditional point-cloud DDPM (PVD's schedule; network: :class:`~multidiff.nets.point_denoiser.PointDenoiser`)."""

    kind = "points.generator"

    def fit(self, data, classes: Optional[Sequence[str]] = None, split: str = "train",
            max_shapes: Optional[int] = None, resume: bool = False,
            on_epoch_end: Optional[Callable[["Generator", dict], None]] = None) -> "Generator":
        """Train on a folder ``data/CLASS/split/*`` (or a (S, N, 3) array of clouds); ``resume=True``
        continues the run saved in ``checkpoint_dir`` (its steps, time and optimizer state).

        ``on_epoch_end(snapshot, info)`` runs after every epoch with ``snapshot`` a fitted copy of this
        object holding the weights sampling would use (EMA) and ``info`` the epoch's row of the history
        with ``steps`` and ``seconds`` of training (:func:`multidiff.core.training.fit`). Its time is not
        training time and it changes neither the run nor its seeded numbers: e.g. a learning curve,
        ``on_epoch_end=EveryMinutes(30, score)`` (:class:`~multidiff.core.training.EveryMinutes`)."""
        folder = self.read_clouds(data, classes, split, max_shapes)
        self.num_shapes_ = len(folder)

        def loss_fn(net, batch):
            x0 = batch["x0"]
            return eps_mse(net, x0, draw_discrete_t(len(x0), self.num_train_steps, x0.device),
                           self.schedule.alpha_bar_of)

        return self._train({"x0": folder.points}, loss_fn, resume, on_epoch_end)

    @torch.no_grad()
    def sample(self, n: int, sampler_steps: int = 50, sampler: str = "ddpm", seed: Optional[int] = None,
               batch_size: int = 256) -> torch.Tensor:
        """``n`` clouds (n, num_points, 3) in the training normalisation (``self.normalization``)."""
        self._check_fitted()
        n = check_whole("n", n)
        device = resolve_device(self.device)
        net = self.net.to(device).eval()
        gen = torch.Generator(device=device).manual_seed(self.seed if seed is None else seed)
        out = []
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            out.append(self._run(net, (b, self.num_points, 3), sampler_steps, sampler, gen, device).float().cpu())
        return torch.cat(out)


_LD = DEFAULT_LATENT_TRAIN_CONFIG
_LATENT_HPARAMS = ("num_points", "latent_dim", "num_train_steps", "beta_start", "beta_end", "time_features",
                   "kl_weight", "train_points", "encoder_points", "prior_num_train_steps", "prior_width",
                   "prior_layers", "prior_max_steps", "encoder_widths", "decoder_widths", "normalization",
                   "prior_prediction")
LATENT_KIND_VERSION = 1


class LatentGenerator(PointModel):
    """Point-cloud generation as Luo & Hu (CVPR 2021): a shape latent from a prior, then every point
    denoised on its own given it (model: :class:`~.latent.LatentPointDiffusion`).

    A training step costs time in proportion to ``batch_size * (train_points + encoder_points)``,
    not to ``num_points``; sampling is linear in ``num_points`` and builds no neighbour graph.
    ``num_points`` is the size of the clouds read for training and of the sampled clouds. The
    networks have Luo & Hu's sizes unless ``encoder_widths`` / ``decoder_widths`` say otherwise.
    ``prior_max_steps`` optimizer steps refit the latent prior after the main run, on the latents the
    final (EMA) encoder gives the training shapes (about a minute per thousand steps on a shared CPU core).

    Training settings: ``train_config`` (None: :data:`~.latent.DEFAULT_LATENT_TRAIN_CONFIG`);
    ``epochs``, ``max_steps``, ``lr`` and ``ema_decay`` replace its fields when set to other values
    than its own; ``seed``, ``device`` and ``progress`` always do. With ``checkpoint_dir`` the main
    run writes ``checkpoint_dir/last`` after every epoch: ``fit(..., resume=True)`` continues it
    (after an interruption, or with a larger ``train_config.max_time``) and :meth:`load_snapshot`
    reads it while it runs.
    """

    kind = "points.latent"
    kind_version, hparam_names, DEFAULT_TRAIN_CONFIG = LATENT_KIND_VERSION, _LATENT_HPARAMS, DEFAULT_LATENT_TRAIN_CONFIG
    schedule_names = ("schedule", "prior_schedule")

    def __init__(self, num_points: int = 2048, latent_dim: int = 256, num_train_steps: int = 100,
                 beta_start: float = 1e-4, beta_end: float = 0.02, time_features: str = "signal",
                 kl_weight: float = 1e-3, train_points: int = 512, encoder_points: int = 512,
                 prior_num_train_steps: int = 1000, prior_width: int = 256, prior_layers: int = 3,
                 prior_max_steps: int = 2000, encoder_widths: Sequence[int] = ENCODER_WIDTHS,
                 decoder_widths: Sequence[int] = DECODER_WIDTHS, normalization: str = "unit_std",
                 prior_prediction: str = "v", epochs: int = _LD.epochs, max_steps: Optional[int] = _LD.max_steps,
                 batch_size: int = 32,
                 lr: float = _LD.lr, ema_decay: float = _LD.ema_decay, device: str = "auto", seed: int = 0,
                 progress: bool = True, checkpoint_dir: Optional[str] = None,
                 train_config: Optional[TrainConfig] = None):
        self.num_points = check_whole("num_points", num_points, 2)
        for name, value in (("latent_dim", latent_dim), ("train_points", train_points),
                            ("encoder_points", encoder_points), ("batch_size", batch_size),
                            ("num_train_steps", num_train_steps), ("prior_num_train_steps", prior_num_train_steps)):
            check_whole(name, value)
        check_training_args(batch_size=batch_size, views=1, epochs=epochs, max_steps=max_steps, lr=lr)
        self.prior_max_steps = check_whole("prior_max_steps", prior_max_steps, 0)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {normalization!r}")
        if time_features not in TIME_FEATURES:
            raise ValueError(f"time_features must be one of {', '.join(TIME_FEATURES)}, got {time_features!r}")
        if not kl_weight >= 0:
            raise ValueError(f"kl_weight must be >= 0, got {kl_weight}")
        self.latent_dim, self.num_train_steps = latent_dim, num_train_steps
        self.beta_start, self.beta_end, self.time_features = beta_start, beta_end, time_features
        self.kl_weight, self.normalization = kl_weight, normalization
        self.train_points, self.encoder_points = train_points, encoder_points
        self.prior_num_train_steps, self.prior_width = prior_num_train_steps, prior_width
        self.prior_layers, self.prior_prediction = prior_layers, prior_prediction
        # tuples: a checkpoint's JSON gives lists back
        self.encoder_widths, self.decoder_widths = tuple(encoder_widths), tuple(decoder_widths)
        self._set_training(epochs, max_steps, batch_size, lr, ema_decay, device, seed, progress, checkpoint_dir,
                           train_config, lambda: LatentPointDiffusion(
                               latent_dim, num_train_steps, beta_start, beta_end, time_features, prior_num_train_steps,
                               prior_width, prior_layers, self.encoder_widths, self.decoder_widths, prior_prediction))
        self.clip: Optional[float] = None  # |x0| bound for sampling, set by fit
        self.train_result: Optional[TrainResult] = None
        self.prior_result: Optional[TrainResult] = None

    @classmethod
    def hparams_from_config(cls, cfg: dict) -> dict:
        """The constructor's settings (``hparam_names``) recorded in the config of a checkpoint or of a
        training snapshot (the second value of :func:`~multidiff.core.checkpoint.load_checkpoint`)."""
        missing = [k for k in _LATENT_HPARAMS if k not in cfg]
        if missing:
            raise ValueError(f"the checkpoint's config lacks {missing}: it was not written by this version of "
                             f"{cls.__name__}.save (or by fit's checkpoints); train and save it again")
        return {k: cfg[k] for k in _LATENT_HPARAMS}

    @property
    def schedule(self) -> DiscreteSchedule:
        """The points' schedule (its model's)."""
        return self.model.schedule

    @property
    def prior_schedule(self) -> DiscreteSchedule:
        """The latent prior's schedule (its model's)."""
        return self.model.prior_schedule

    def fit(self, data, classes: Optional[Sequence[str]] = None, split: str = "train",
            max_shapes: Optional[int] = None, resume: bool = False,
            on_epoch_end: Optional[Callable[["LatentGenerator", dict], None]] = None) -> "LatentGenerator":
        """Train on a folder ``data/CLASS/split/*`` (or a (S, N, 3) array of clouds), then refit the prior
        (:meth:`fit_prior`).

        ``resume=True`` continues the run kept in ``checkpoint_dir`` (its weights, optimizer, steps and
        time spent), e.g. after an interruption or with a larger ``train_config.max_time``.
        ``on_epoch_end`` as :meth:`Generator.fit`; its snapshot holds the prior as trained so far with the
        encoder: ``snapshot.fit_prior(data)`` refits it as ``fit`` ends."""
        if resume and self.checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir= (the folder whose last/ checkpoint training "
                             "continues from)")
        folder = self.read_clouds(data, classes, split, max_shapes)
        x = folder.points
        if len(x) == 0:
            raise ValueError("no training clouds")
        self.num_shapes_ = len(x)
        self.clip = 1.1 * float(x.abs().max())  # range of clean coordinates seen in training
        loader = Batches(len(x), self.batch_size, lambda idx: x[idx], shuffle=True,
                         generator=torch.Generator().manual_seed(self.seed))

        def loss_fn(model, batch):
            return model.loss(batch, self.kl_weight, self.train_points, self.encoder_points)

        # where the clouds came from, so that load_snapshot can refit the prior of a run in progress
        source = ({"data": str(data), "classes": list(classes) if classes else None, "split": split,
                   "max_shapes": max_shapes, "seed": self.seed} if isinstance(data, (str, Path)) else None)
        self.train_result = train_loop(self.model, loss_fn, loader, self._train_config(),
                                       checkpoint_dir=self.checkpoint_dir, resume=resume,
                                       extra_config={**self.config(), "train_data": source},
                                       on_epoch_end=self._snapshots(on_epoch_end))
        self.fit_prior(folder)
        self.model.cpu().eval()
        self.fitted = True
        return self

    def fit_prior(self, data, classes: Optional[Sequence[str]] = None, split: str = "train",
                  max_shapes: Optional[int] = None) -> "LatentGenerator":
        """Refit the latent prior on the posteriors the encoder gives the clouds ``data`` names, as
        :meth:`fit` does after its main run: ``prior_max_steps`` optimizer steps of
        :data:`~.latent.PRIOR_TRAIN_CONFIG` (seeded by ``seed + 1``); ``prior_result`` holds their
        :class:`~multidiff.core.training.TrainResult`. The encoder and the point denoiser stay as they
        are (the prior learns from gradient-stopped latents, so it can be refitted after the fact).
        ``data`` (with ``classes``, ``split``, ``max_shapes``) as :meth:`read_clouds` reads it: the
        training clouds. Nothing happens when ``prior_max_steps`` is 0. Returns self."""
        if self.prior_max_steps == 0:
            return self
        x = self.read_clouds(data, classes, split, max_shapes).points
        cfg = self._train_config()
        device = resolve_device(cfg.device)
        model = self.model.to(device).eval()
        gen = torch.Generator(device=device).manual_seed(self.seed)
        posts = [model.encode(chunk.to(device), self.encoder_points, gen) for chunk in x.split(64)]
        mean, logvar = (torch.cat(p).cpu() for p in zip(*posts))
        loader = Batches(len(mean), min(len(mean), 128), lambda idx: (mean[idx], logvar[idx]), shuffle=True,
                         generator=torch.Generator().manual_seed(self.seed + 1))
        prior_cfg = resolve_train_config(PRIOR_TRAIN_CONFIG, None, {}, {
            "seed": self.seed + 1, "progress": cfg.progress, "device": cfg.device, "max_steps": self.prior_max_steps})
        self.prior_result = train_loop(model.prior, lambda _, b: model.prior_loss(*b), loader, prior_cfg)
        model.cpu().eval()
        return self

    @torch.no_grad()
    def sample(self, n: int, sampler_steps: Optional[int] = None, sampler: str = "ddpm", seed: Optional[int] = None,
               batch_size: int = 32, prior_sampler: str = "ddpm",
               prior_sampler_steps: Optional[int] = 100) -> torch.Tensor:
        """``n`` clouds (n, num_points, 3) in the training normalisation (``self.normalization``).

        ``sampler`` / ``sampler_steps`` run the points' reverse process (None: every step of the
        schedule, as Luo & Hu), ``prior_sampler`` / ``prior_sampler_steps`` the latents'. The time is
        linear in ``n * num_points * sampler_steps``; the prior's share is small."""
        self._check_fitted()
        n = check_whole("n", n)
        batch_size = check_whole("batch_size", batch_size)
        for name in (sampler, prior_sampler):
            resolve_sampler(name, "discrete")
        device = resolve_device(self.device)
        model = self.model.to(device).eval()
        gen = torch.Generator(device=device).manual_seed(self.seed if seed is None else seed)
        z = model.sample_latents(n, prior_sampler, prior_sampler_steps, gen, device)
        out = [model.decode(chunk, self.num_points, sampler, sampler_steps, gen, self.clip).float().cpu()
               for chunk in z.split(batch_size)]
        return torch.cat(out)

    @classmethod
    def load_snapshot(cls, checkpoint_dir: str | Path, device: str = "auto", data=None,
                      classes: Optional[Sequence[str]] = None, split: str = "train",
                      max_shapes: Optional[int] = None) -> tuple["LatentGenerator", dict]:
        """The model as training left it in ``checkpoint_dir/last`` (its EMA weights), with the latent
        prior refitted as :meth:`fit` ends, and the loop state (``steps``, ``seconds``, ``epoch``).
        Reads a run in progress, e.g. to draw a learning curve from another process.

        The refit reads the training clouds from the folder ``fit`` was given (recorded in the
        snapshot) unless ``data`` (with ``classes``, ``split``, ``max_shapes``) names them; a run
        trained on an array needs ``data``. ``prior_max_steps=0`` models keep the prior as it is."""
        states, cfg = load_checkpoint(Path(checkpoint_dir) / "last", kind="training")
        source = cfg.get("train_data") or {}
        obj = cls(**cls.hparams_from_config(cfg), device=device, progress=False, seed=source.get("seed", 0))
        obj._check_schedules(cfg, f"snapshot {checkpoint_dir}")
        weights = states["ema"] if "ema" in states else states["model"]
        load_state_strict(obj.model, weights, f"snapshot {checkpoint_dir}")
        obj.clip = cfg.get("clip")
        if obj.prior_max_steps:
            if data is None and not source:
                raise ValueError(f"the run in {checkpoint_dir} was trained on an array of clouds: pass them as data= "
                                 "to refit the latent prior")
            if data is None:
                data, classes, split, max_shapes = (source["data"], source["classes"], source["split"],
                                                    source["max_shapes"])
            obj.fit_prior(data, classes, split, max_shapes)
        obj.model.cpu().eval()
        obj.fitted = True
        return obj, cfg["loop"]

    @classmethod
    def load(cls, directory: str | Path, device: str = "auto") -> "LatentGenerator":
        """Rebuild a model saved with :meth:`save`; a checkpoint of another kind raises
        :class:`~multidiff.core.checkpoint.CheckpointKindError` naming the loader that fits."""
        states, cfg = load_checkpoint(directory, kind=cls.kind, max_kind_version=LATENT_KIND_VERSION)
        obj = cls(**cls.hparams_from_config(cfg), device=device, progress=False)
        obj._check_schedules(cfg, f"checkpoint {directory}")
        load_state_strict(obj.model, states["model"], f"checkpoint {directory}")
        obj.model.eval()
        obj.clip = cfg.get("clip")
        obj.fitted = True
        return obj


def completion_pairs(folder: PointCloudFolder, views: int, max_known: int, seed: int = 0,
                     crop: float = 0.0) -> dict:
    """Training/test pairs from hidden-point-removal scans, each in the frame of its partial.

    Returns ``x0`` (P, N, 3) with the known (scanned) points first, ``known`` (P, N, 1) their flags,
    and ``frame`` (the :class:`Normalization` of each partial, mapping back to the folder's
    normalisation), ``shape`` (index of the source shape). Seeds are fixed by file name and view.
    """
    xs, masks, centers, scales, shape = [], [], [], [], []
    n = folder.points.shape[1]
    for i, (cloud, path) in enumerate(zip(folder.points, folder.paths)):
        for v in range(views):
            s = shape_seed(path, seed * 1000 + v)
            vis = partial_scan(cloud, seed=s, crop=crop)
            if len(vis) > max_known:
                vis = np.sort(np.random.default_rng(s).choice(vis, max_known, replace=False))
            hidden = np.setdiff1d(np.arange(n), vis)
            known, frame = normalize(cloud[vis].double(), "unit_std")
            x0 = frame.apply(torch.cat([cloud[vis], cloud[hidden]]).double())
            m = torch.zeros(n, 1)
            m[: len(vis)] = 1
            xs.append(x0.float()), masks.append(m), centers.append(frame.center), scales.append(frame.scale)
            shape.append(i)
    return {"x0": torch.stack(xs), "known": torch.stack(masks),
            "frame": Normalization(torch.stack(centers).float(), torch.stack(scales).float()),
            "shape": torch.tensor(shape)}


class Completer(_PointDiffusion):
    """PVD-style completion: partial points held clean and fixed, the rest denoised."""

    kind = "points.completer"

    in_features = 1  # the known-point flag

    def fit(self, data, classes: Optional[Sequence[str]] = None, split: str = "train",
            max_shapes: Optional[int] = None, resume: bool = False,
            on_epoch_end: Optional[Callable[["Completer", dict], None]] = None) -> "Completer":
        """Train on ``views`` hidden-point-removal scans of every shape of the folder (or array);
        ``resume=True`` continues the run saved in ``checkpoint_dir``; ``on_epoch_end`` as
        :meth:`Generator.fit`."""
        folder = self.read_clouds(data, classes, split, max_shapes)
        pairs = completion_pairs(folder, self.views, self.max_known, self.seed)
        self.num_shapes_ = len(folder)

        def loss_fn(net, batch):
            x0, known = batch["x0"], batch["known"]
            model = _hold(net, x0, known)
            t = draw_discrete_t(len(x0), self.num_train_steps, x0.device)
            return eps_mse(model, x0, t, self.schedule.alpha_bar_of, mask=(1 - known).expand_as(x0))

        return self._train({"x0": pairs["x0"], "known": pairs["known"]}, loss_fn, resume, on_epoch_end)

    @torch.no_grad()
    def complete(self, partial, sampler_steps: int = 50, sampler: str = "ddpm", seed: Optional[int] = None,
                 batch_size: int = 64, up_axis: str = "z"):
        """Complete one (M, 3) scan -> (num_points, 3), or a list of scans -> (B, num_points, 3).

        A scan is an array, a tensor, or the path of a point file (``.ply``, ``.pcd``, ``.npy``, ...,
        read whole), e.g. a depth sensor's. Each is centred and scaled by itself (zero mean, unit
        std of its points, as the training scans), so its units do not matter; ``up_axis`` names
        the scan's up direction (``"z"``, ``"-y"``, ...) and the scan is turned so that it points
        along +z, the up axis of ModelNet and of the training data (a camera frame with y down
        needs ``"-y"``). Output is in the scan's own units and axes (float64); its first
        ``min(M, max_known)`` rows are scan points, bit-exact (a seeded subset when the scan has
        more than ``max_known`` points).
        """
        self._check_fitted()
        rotation = up_rotation(up_axis)
        partials, single = scan_list(partial)
        device = resolve_device(self.device)
        net = self.net.to(device).eval()
        gen = torch.Generator(device=device).manual_seed(self.seed if seed is None else seed)
        out = []
        for s in range(0, len(partials), batch_size):
            known, mask, frames, kept = prepare_scans(partials[s:s + batch_size], self.num_points, self.max_known,
                                                      self.seed, rotation, offset=s)
            known, mask = known.to(device), mask.to(device)
            project = replace_known(known, mask.expand_as(known), noise_known=False)  # from x_T on
            x = self._run(_hold(net, known, mask), known.shape, sampler_steps, sampler, gen, device,
                          project).double().cpu()
            out += [restore_scan(row, frame, arr, rotation) for frame, row, arr in zip(frames, x, kept)]
        result = torch.stack(out)
        return result[0] if single else result

    sample = complete  # the task contract's draw (multidiff.core.task)


_LATENT_COMPLETER_HPARAMS = ("num_points", "latent_dim", "num_train_steps", "beta_start", "beta_end",
                             "time_features", "train_points", "encoder_points", "encoder_widths", "decoder_widths",
                             "max_known", "views", "normalization")
LATENT_COMPLETER_KIND_VERSION = 1


class LatentCompleter(PointModel):
    """Completion of partial scans at any number of points: the scan's code, then the missing points
    drawn one by one given it (model: :class:`~.latent_completion.ScanCompletionDiffusion`; its module
    tells what it learns from).

    Same contract as :class:`Completer`: :meth:`fit` trains on ``views`` hidden-point-removal
    scans of every training shape (at most ``max_known`` points each, default ``num_points // 2``),
    :meth:`complete` takes scans in any units and axes and returns ``num_points`` points whose first
    rows are the scan's. A training step costs time in proportion to
    ``batch_size * (train_points + encoder_points)``, completion to the points drawn; neither builds
    a neighbour graph. Training settings as :class:`LatentGenerator` (Luo & Hu's Adam, EMA).
    """

    kind = "points.latent_completer"
    kind_version, hparam_names = LATENT_COMPLETER_KIND_VERSION, _LATENT_COMPLETER_HPARAMS
    DEFAULT_TRAIN_CONFIG = DEFAULT_LATENT_TRAIN_CONFIG

    def __init__(self, num_points: int = 2048, latent_dim: int = 256, num_train_steps: int = 200,
                 beta_start: float = 1e-4, beta_end: float = 0.05, time_features: str = "signal",
                 train_points: int = 512, encoder_points: int = 512, encoder_widths: Sequence[int] = ENCODER_WIDTHS,
                 decoder_widths: Sequence[int] = DECODER_WIDTHS, max_known: Optional[int] = None, views: int = 4,
                 normalization: str = "unit_std", epochs: int = _LD.epochs, max_steps: Optional[int] = _LD.max_steps,
                 batch_size: int = 32, lr: float = _LD.lr, ema_decay: float = _LD.ema_decay, device: str = "auto",
                 seed: int = 0, progress: bool = True, checkpoint_dir: Optional[str] = None,
                 train_config: Optional[TrainConfig] = None):
        self.num_points = check_whole("num_points", num_points, 2)
        for name, value in (("latent_dim", latent_dim), ("num_train_steps", num_train_steps), ("views", views),
                            ("train_points", train_points), ("encoder_points", encoder_points),
                            ("batch_size", batch_size)):
            check_whole(name, value)
        check_training_args(batch_size=batch_size, views=views, epochs=epochs, max_steps=max_steps, lr=lr)
        if max_known is not None and not 0 < max_known < num_points:
            raise ValueError(f"max_known must lie in [1, num_points - 1] = [1, {num_points - 1}], got {max_known}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {normalization!r}")
        self.latent_dim, self.num_train_steps = latent_dim, num_train_steps
        self.beta_start, self.beta_end = beta_start, beta_end
        self.time_features, self.train_points, self.encoder_points = time_features, train_points, encoder_points
        self.encoder_widths, self.decoder_widths = tuple(encoder_widths), tuple(decoder_widths)
        self.max_known = max_known if max_known is not None else num_points // 2
        self.views, self.normalization = views, normalization
        self._set_training(epochs, max_steps, batch_size, lr, ema_decay, device, seed, progress, checkpoint_dir,
                           train_config, lambda: ScanCompletionDiffusion(
                               latent_dim, num_train_steps, beta_start, beta_end, time_features, self.encoder_widths,
                               self.decoder_widths))
        self.clip: Optional[float] = None  # |x0| bound for sampling (in the scans' frames), set by fit
        self.train_result: Optional[TrainResult] = None

    @property
    def schedule(self) -> DiscreteSchedule:
        """The missing points' schedule (its model's)."""
        return self.model.schedule

    def fit(self, data, classes: Optional[Sequence[str]] = None, split: str = "train",
            max_shapes: Optional[int] = None, resume: bool = False,
            on_epoch_end: Optional[Callable[["LatentCompleter", dict], None]] = None) -> "LatentCompleter":
        """Train on ``views`` scans of every shape of a folder ``data/CLASS/split/*`` (or a (S, N, 3)
        array); ``resume=True`` continues the run kept in ``checkpoint_dir``; ``on_epoch_end`` as
        :meth:`Generator.fit`."""
        if resume and self.checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir= (the folder whose last/ checkpoint training "
                             "continues from)")
        folder = self.read_clouds(data, classes, split, max_shapes)
        if len(folder) == 0:
            raise ValueError("no training clouds")
        pairs = completion_pairs(folder, self.views, self.max_known, self.seed)
        x0, known = pairs["x0"], pairs["known"]
        # range of the points seen in training, in the scans' frames (set now for on_epoch_end's snapshots)
        self.clip = clip = 1.1 * float(x0.abs().max())
        loader = Batches(len(x0), self.batch_size, lambda idx: (x0[idx], known[idx]), shuffle=True,
                         generator=torch.Generator().manual_seed(self.seed))
        result = train_loop(self.model, lambda m, b: m.loss(*b, self.train_points, self.encoder_points), loader,
                            self._train_config(), checkpoint_dir=self.checkpoint_dir, resume=resume,
                            extra_config={**self.config(), "clip": clip},
                            on_epoch_end=self._snapshots(on_epoch_end))
        self.model.cpu().eval()
        self.num_shapes_, self.clip, self.train_result, self.fitted = len(folder), clip, result, True
        return self

    @torch.no_grad()
    def complete(self, partial, sampler_steps: Optional[int] = 50, sampler: str = "ddpm", seed: Optional[int] = None,
                 batch_size: int = 64, up_axis: str = "z"):
        """Complete one (M, 3) scan -> (num_points, 3), or a list of scans -> (B, num_points, 3).

        Scans as :meth:`Completer.complete` takes them (arrays, tensors or
        point files; any units; ``up_axis`` turned onto +z); each is cut to at most ``max_known``
        points (a seeded subset) and its ``num_points - len(kept)`` missing points are drawn.
        ``sampler_steps=None`` runs every step of the schedule. Output is in the scan's units and
        axes (float64), the kept scan points, bit-exact, in its first rows.
        """
        self._check_fitted()
        rotation = up_rotation(up_axis)
        partials, single = scan_list(partial)
        batch_size = check_whole("batch_size", batch_size)
        resolve_sampler(sampler, "discrete")
        device = resolve_device(self.device)
        model = self.model.to(device).eval()
        gen = torch.Generator(device=device).manual_seed(self.seed if seed is None else seed)
        out = []
        for s in range(0, len(partials), batch_size):
            known, mask, frames, kept = prepare_scans(partials[s:s + batch_size], self.num_points, self.max_known,
                                                      self.seed, rotation, offset=s)
            sizes = [len(k) for k in kept]
            # every scan's code from its own points (repeated up to the longest: the max-pool ignores repeats)
            longest = max(sizes)
            scans = torch.stack([known[i, torch.arange(longest) % m] for i, m in enumerate(sizes)]).to(device)
            z = model.code(scans)
            drawn = model.decode(z, self.num_points - min(sizes), sampler, sampler_steps, gen, self.clip).double().cpu()
            for i, m in enumerate(sizes):  # the points are independent given z: the first ones are a sample
                row = torch.cat([known[i, :m].double(), drawn[i, : self.num_points - m]])
                out.append(restore_scan(row, frames[i], kept[i], rotation))
        result = torch.stack(out)
        return result[0] if single else result

    @classmethod
    def load(cls, directory: str | Path, device: str = "auto") -> "LatentCompleter":
        """Rebuild a model saved with :meth:`save`; a checkpoint of another kind raises
        :class:`~multidiff.core.checkpoint.CheckpointKindError` naming the loader that fits."""
        states, cfg = load_checkpoint(directory, kind=cls.kind, max_kind_version=LATENT_COMPLETER_KIND_VERSION)
        obj = cls(**{k: cfg[k] for k in _LATENT_COMPLETER_HPARAMS}, device=device, progress=False)
        obj._check_schedules(cfg, f"checkpoint {directory}")
        load_state_strict(obj.model, states["model"], f"checkpoint {directory}")
        obj.model.eval()
        obj.clip, obj.fitted = cfg["clip"], True
        return obj

    sample = complete  # the task contract's draw (multidiff.core.task)


for _task in (Generator, Completer, LatentGenerator, LatentCompleter):
    register_task(_task)


def scan_list(partial) -> tuple[list, bool]:
    """The scans of ``partial`` (one (M, 3) scan or a path, a (B, M, 3) array, or a list of either) as a
    list, and whether it was a single scan."""
    single = isinstance(partial, (str, Path)) or (isinstance(partial, (np.ndarray, torch.Tensor)) and partial.ndim == 2)
    if isinstance(partial, (np.ndarray, torch.Tensor)) and partial.ndim not in (2, 3):
        raise ValueError(f"partial must be one (M, 3) scan, a (B, M, 3) array or a list of scans, got an array of "
                         f"shape {tuple(partial.shape)}")
    partials = [partial] if single else list(partial)
    if not partials:
        raise ValueError("no partial clouds given")
    return partials, single


def prepare_scans(partials: Sequence, num_points: int, max_known: int, seed: int, rotation: np.ndarray,
                  offset: int = 0):
    """Scans (arrays, tensors or point files) as a completer sees them: each cut to at most ``max_known``
    points (a subset seeded by ``seed`` and its index), turned upright by ``rotation`` and put in its own
    frame (zero mean, unit std). Returns ``known`` (B, num_points, 3) with each scan in its first rows,
    ``mask`` (B, num_points, 1) flagging them, the frames, and the kept points in the scan's units."""
    known, mask, frames, kept = [], [], [], []
    for i, p in enumerate(partials, start=offset):
        arr = read_cloud(p, num_points) if isinstance(p, (str, Path)) else check_points(p, f"partial cloud {i}")
        if len(arr) > max_known:  # keep at most max_known, a seeded subset, as in training
            arr = arr[np.sort(np.random.default_rng(seed + i).choice(len(arr), max_known, replace=False))]
        z, frame = normalize(torch.tensor(arr @ rotation.T), "unit_std")  # into the training data's z-up axes
        row = torch.zeros(num_points, 3, dtype=torch.float64)
        row[: len(z)] = z
        m = torch.zeros(num_points, 1)
        m[: len(z)] = 1
        known.append(row.float()), mask.append(m), frames.append(frame), kept.append(torch.tensor(arr))
    return torch.stack(known), torch.stack(mask), frames, kept


def restore_scan(row: torch.Tensor, frame: Normalization, kept: torch.Tensor, rotation: np.ndarray) -> torch.Tensor:
    """A completion ``row`` (num_points, 3) in its scan's frame back in the scan's units and axes
    (R^-1 = R^T), with the scan's kept points, bit-exact, in its first rows."""
    row = frame.invert(row.double()) @ torch.from_numpy(rotation)
    row[: len(kept)] = kept  # the scan points themselves, not their frame round trip
    return row


UP_AXES = ("z", "-z", "y", "-y", "x", "-x")

# rotations R (det +1) with R @ up = +z, ModelNet's up axis: row vectors turn upright as x @ R.T
_UP_ROTATIONS = {"z": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "-z": [[1, 0, 0], [0, -1, 0], [0, 0, -1]],
                 "y": [[1, 0, 0], [0, 0, -1], [0, 1, 0]], "-y": [[1, 0, 0], [0, 0, 1], [0, -1, 0]],
                 "x": [[0, 0, -1], [0, 1, 0], [1, 0, 0]], "-x": [[0, 0, 1], [0, 1, 0], [-1, 0, 0]]}


def up_rotation(up_axis: str = "z") -> np.ndarray:
    """The rotation (3, 3) that turns ``up_axis`` ("z", "-y", ...) of a scan onto +z, the up
    axis of ModelNet (and of the models trained on it)."""
    if up_axis not in _UP_ROTATIONS:
        raise ValueError(f"up_axis must be one of {', '.join(UP_AXES)}, got {up_axis!r} (a camera frame with "
                         "y pointing down, as open3d's and most depth sensors', has up axis '-y')")
    return np.array(_UP_ROTATIONS[up_axis], dtype=np.float64)


def _hold(net, known: torch.Tensor, mask: torch.Tensor):
    """Eps model that sees ``known`` (clean) where ``mask`` is 1 and the flag as a feature."""
    def model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return net(mask * known + (1 - mask) * x_t, t, mask)
    return model


def save_clouds(cloud, path: str | Path) -> Path:
    """Write one (N, 3) cloud to ``.ply``/``.pcd`` (open3d, binary) or ``.npy``, atomically."""
    arr = check_points(cloud, "cloud to save")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        write_atomic(path, lambda tmp: np.save(open(tmp, "wb"), arr))
    elif suffix in (".ply", ".pcd"):
        from ...datasets.pointclouds import require_open3d
        o3d = require_open3d()
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(arr))

        def write(tmp):
            real = tmp + suffix  # open3d picks the format from the suffix
            if not o3d.io.write_point_cloud(real, pcd, write_ascii=False):
                raise OSError(f"open3d could not write {path}")
            Path(real).replace(tmp)
        write_atomic(path, write)
    else:
        raise ValueError(f"cannot save a cloud as {suffix or '(no suffix)'!r}; use .ply, .pcd or .npy")
    return path


def load_clouds(path: str | Path, num_points: int = 1024) -> torch.Tensor:
    """Read a cloud (any format of :data:`~multidiff.datasets.pointclouds.SUFFIXES`) as an (N, 3) float tensor."""
    return torch.tensor(read_cloud(path, num_points), dtype=torch.float32)
