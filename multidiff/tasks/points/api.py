"""Point-cloud generation and completion with diffusion: the public API.

* :class:`Generator`: DDPM over point coordinates (PVD, Zhou et al. 2021: 1000 steps, linear betas
  1e-4..0.02) with the permutation-equivariant :class:`~multidiff.nets.point_denoiser.PointDenoiser`;
  samples with the core's DDPM / DDIM / DPM-Solver++(2M) at any step count.
* :class:`Completer`: PVD-style completion. The partial points sit clean among the noisy ones
  (flagged by a per-point feature) during training and are held fixed through the whole reverse
  process with ``conditioning.replace_known(noise_known=False)``; the loss runs over the free
  points only. Each pair is expressed in the frame of its partial scan (zero mean, unit std of the
  partial points), so completing a new scan needs nothing but the scan itself.
* :func:`evaluate`: MMD/COV/1-NNA (CD and EMD) for a Generator against a folder's split, or
  CD/EMD/F-score for a Completer on hidden-point-removal scans of the split.
* :func:`save` / :func:`load`: clouds as ``.ply``/``.pcd`` (open3d) or ``.npy``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ...core.checkpoint import load_checkpoint, save_checkpoint, write_atomic
from ...core.conditioning import replace_known
from ...core.denoiser import clip_denoised
from ...core.device import resolve_device
from ...core.losses import draw_discrete_t, eps_mse
from ...core.samplers import discrete_grid, sample as run_sampler
from ...core.schedules import alpha_bars, linear_betas
from ...core.training import TrainConfig, TrainResult, fit as train_loop
from ...core.validate import check_whole
from ...datasets.pointclouds import (NORMALIZATIONS, Normalization, PointCloudFolder, check_points, load_folder,
                                    normalize, partial_scan, read_cloud, resample, shape_seed)
from ...metrics import points as M
from ...nets.point_denoiser import PointDenoiser

__all__ = ["Generator", "Completer", "evaluate", "save", "load", "render", "completion_pairs", "retrieve",
           "SAMPLER_NAMES"]

SAMPLER_NAMES = {"ddpm": "ddpm", "ddim": "ddim", "dpm_solver": "dpm_solver", "dpm_solver_pp_2m": "dpm_solver"}
_HPARAMS = ("num_points", "channels", "layers", "k", "num_steps", "beta_start", "beta_end", "normalization",
            "max_known", "views")


class _PointDiffusion:
    """What both tasks share: hyper-parameters, the schedule, training through the core, persistence."""

    in_features = 0

    def __init__(self, num_points: int = 1024, channels: int = 128, layers: int = 4, k: int = 16,
                 num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02,
                 normalization: str = "unit_std", epochs: int = 100, max_steps: Optional[int] = None,
                 batch_size: int = 32, lr: float = 1e-3, ema_decay: float = 0.999, device: str = "auto",
                 seed: int = 0, progress: bool = True, checkpoint_dir: Optional[str] = None,
                 max_known: Optional[int] = None, views: int = 4):
        if num_points < 2:
            raise ValueError(f"num_points must be >= 2, got {num_points}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {normalization!r}")
        if max_known is not None and not 0 < max_known < num_points:
            raise ValueError(f"max_known must lie in [1, num_points - 1] = [1, {num_points - 1}], got {max_known}")
        self.num_points, self.channels, self.layers, self.k = num_points, channels, layers, k
        self.num_steps, self.beta_start, self.beta_end = num_steps, beta_start, beta_end
        self.normalization, self.epochs, self.max_steps = normalization, epochs, max_steps
        self.batch_size, self.lr, self.ema_decay, self.device = batch_size, lr, ema_decay, device
        self.seed, self.progress, self.checkpoint_dir = seed, progress, checkpoint_dir
        self.max_known = max_known if max_known is not None else num_points // 2
        self.views = views
        self.alpha_bars = alpha_bars(linear_betas(num_steps, beta_start, beta_end))
        self.net = self._build()
        self.fitted = False
        self.clip: Optional[float] = None  # |x0| bound for sampling, set by fit
        self.train_result: Optional[TrainResult] = None

    def _build(self) -> PointDenoiser:
        return PointDenoiser(self.channels, self.layers, self.k, in_features=self.in_features)

    def _alpha_bar_of(self, t: torch.Tensor) -> torch.Tensor:
        return self.alpha_bars.to(t.device)[t.long()]

    def _train(self, batches: dict, loss_fn) -> "_PointDiffusion":
        self.clip = 1.1 * float(batches["x0"].abs().max())  # range of clean coordinates seen in training
        gen = torch.Generator().manual_seed(self.seed)
        loader = _Batches(batches, self.batch_size, gen)
        cfg = TrainConfig(epochs=self.epochs, lr=self.lr, max_steps=self.max_steps, ema_decay=self.ema_decay,
                          seed=self.seed, progress=self.progress, device=self.device, lr_schedule="cosine")
        self.train_result = train_loop(self.net, loss_fn, loader, cfg, checkpoint_dir=self.checkpoint_dir,
                                       extra_config=self.config())
        self.net.cpu()
        self.fitted = True
        return self

    def _folder(self, data, classes, split, max_shapes) -> PointCloudFolder:
        if isinstance(data, PointCloudFolder):
            return data
        if isinstance(data, (str, Path)):
            return load_folder(data, classes, split, self.num_points, self.normalization, max_shapes, self.seed)
        clouds = torch.as_tensor(np.asarray(data) if not isinstance(data, torch.Tensor) else data)
        if clouds.dim() != 3 or clouds.shape[-1] != 3 or len(clouds) == 0:
            raise ValueError(f"training clouds must be a folder path or a (S, N, 3) array, got shape {tuple(clouds.shape)}")
        rows = [check_points(c, f"cloud {i}") for i, c in enumerate(clouds)]
        rng = np.random.default_rng(self.seed)
        rows = [r if len(r) == self.num_points else resample(r, self.num_points, rng) for r in rows]
        x, norm = normalize(torch.tensor(np.stack(rows)), self.normalization)
        return PointCloudFolder(x.float(), norm, ["?"] * len(rows), [Path(f"cloud_{i}") for i in range(len(rows))])

    def _check_fitted(self):
        if not self.fitted:
            raise RuntimeError(f"this {type(self).__name__} is not fitted; call fit(...) or {type(self).__name__}.load(dir)")

    def _clipped(self, model):
        """Eps model whose implied clean cloud is clamped to the training range (DDPM's
        ``clip_denoised``, Ho et al. 2020): keeps few-step samplers stable."""
        if self.clip is None:
            return model
        return clip_denoised(model, self._alpha_bar_of, -self.clip, self.clip)

    def _run(self, model, x, n_steps, sampler, generator, project=None):
        if sampler not in SAMPLER_NAMES:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLER_NAMES)}, got {sampler!r}")
        method = SAMPLER_NAMES[sampler]
        grid = discrete_grid(self.alpha_bars, n_steps, spacing="logsnr" if method == "dpm_solver" else "uniform")
        kwargs = {"generator": generator, "project": project}
        return run_sampler(method, self._clipped(model), x, grid, **kwargs)

    def config(self) -> dict:
        return {"task": type(self).__name__, "clip": self.clip, **{k: getattr(self, k) for k in _HPARAMS}}

    def save(self, directory: str | Path) -> Path:
        """Write the (EMA) weights and hyper-parameters atomically (safetensors + JSON)."""
        self._check_fitted()
        return save_checkpoint(directory, {"net": self.net.state_dict()}, self.config())

    @classmethod
    def load(cls, directory: str | Path, device: str = "auto"):
        """Rebuild a model saved with :meth:`save`."""
        states, cfg = load_checkpoint(directory)
        if cfg.get("task") != cls.__name__:
            raise ValueError(f"{directory} holds a {cfg.get('task')!r} checkpoint, not a {cls.__name__}")
        obj = cls(**{k: cfg[k] for k in _HPARAMS}, device=device)
        obj.net.load_state_dict(states["net"])
        obj.clip = cfg.get("clip")
        obj.net.eval()
        obj.fitted = True
        return obj


class Generator(_PointDiffusion):
    """Unconditional point-cloud DDPM (PVD's schedule; network: :class:`PointDenoiser`)."""

    def fit(self, data, classes: Optional[Sequence[str]] = None, split: str = "train",
            max_shapes: Optional[int] = None) -> "Generator":
        """Train on a folder ``data/CLASS/split/*`` (or a (S, N, 3) array of clouds)."""
        folder = self._folder(data, classes, split, max_shapes)
        self.num_shapes_ = len(folder)

        def loss_fn(net, batch):
            x0 = batch["x0"]
            return eps_mse(net, x0, draw_discrete_t(len(x0), self.num_steps, x0.device), self._alpha_bar_of)

        return self._train({"x0": folder.points}, loss_fn)

    @torch.no_grad()
    def sample(self, n: int, n_steps: int = 50, sampler: str = "ddpm", seed: Optional[int] = None,
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
            x = torch.randn((b, self.num_points, 3), generator=gen, device=device)
            out.append(self._run(net, x, n_steps, sampler, gen).float().cpu())
        return torch.cat(out)


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

    in_features = 1  # the known-point flag

    def fit(self, data, classes: Optional[Sequence[str]] = None, split: str = "train",
            max_shapes: Optional[int] = None) -> "Completer":
        """Train on ``views`` hidden-point-removal scans of every shape of the folder (or array)."""
        folder = self._folder(data, classes, split, max_shapes)
        pairs = completion_pairs(folder, self.views, self.max_known, self.seed)
        self.num_shapes_ = len(folder)

        def loss_fn(net, batch):
            x0, known = batch["x0"], batch["known"]
            model = _hold(net, x0, known)
            t = draw_discrete_t(len(x0), self.num_steps, x0.device)
            return eps_mse(model, x0, t, self._alpha_bar_of, mask=(1 - known).expand_as(x0))

        return self._train({"x0": pairs["x0"], "known": pairs["known"]}, loss_fn)

    def _prepare(self, partials: Sequence, offset: int = 0):
        known, mask, frames, kept = [], [], [], []
        for i, p in enumerate(partials, start=offset):
            arr = check_points(p, f"partial cloud {i}")
            if len(arr) > self.max_known:  # keep at most max_known, a seeded subset, as in training
                arr = arr[np.sort(np.random.default_rng(self.seed + i).choice(len(arr), self.max_known, replace=False))]
            z, frame = normalize(torch.tensor(arr), "unit_std")
            row = torch.zeros(self.num_points, 3, dtype=torch.float64)
            row[: len(z)] = z
            m = torch.zeros(self.num_points, 1)
            m[: len(z)] = 1
            known.append(row.float()), mask.append(m), frames.append(frame), kept.append(torch.tensor(arr))
        return torch.stack(known), torch.stack(mask), frames, kept

    @torch.no_grad()
    def complete(self, partial, n_steps: int = 50, sampler: str = "ddpm", seed: Optional[int] = None,
                 batch_size: int = 64):
        """Complete one (M, 3) scan -> (num_points, 3), or a list of scans -> (B, num_points, 3).

        Output is in the scan's own units (float64); its first ``min(M, max_known)`` rows are scan
        points, bit-exact (a seeded subset when the scan has more than ``max_known`` points).
        """
        self._check_fitted()
        single = isinstance(partial, (np.ndarray, torch.Tensor)) and np.ndim(partial) == 2
        partials = [partial] if single else list(partial)
        if not partials:
            raise ValueError("no partial clouds given")
        device = resolve_device(self.device)
        net = self.net.to(device).eval()
        gen = torch.Generator(device=device).manual_seed(self.seed if seed is None else seed)
        out = []
        for s in range(0, len(partials), batch_size):
            known, mask, frames, kept = self._prepare(partials[s:s + batch_size], offset=s)
            known, mask = known.to(device), mask.to(device)
            project = replace_known(known, mask.expand_as(known), noise_known=False)
            x = project(torch.randn(known.shape, generator=gen, device=device), None)
            x = self._run(_hold(net, known, mask), x, n_steps, sampler, gen, project).double().cpu()
            for frame, row, arr in zip(frames, x, kept):
                row = frame.invert(row)
                row[: len(arr)] = arr  # the scan points themselves, not their frame round trip
                out.append(row)
        result = torch.stack(out)
        return result[0] if single else result


def _hold(net, known: torch.Tensor, mask: torch.Tensor):
    """Eps model that sees ``known`` (clean) where ``mask`` is 1 and the flag as a feature."""
    def model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return net(mask * known + (1 - mask) * x_t, t, mask)
    return model


class _Batches:
    """Re-iterable shuffled mini-batches over a dict of equally long tensors."""

    def __init__(self, data: dict, batch_size: int, generator: torch.Generator):
        self.data, self.batch_size, self.generator = data, batch_size, generator
        self.n = len(next(iter(data.values())))
        if self.n == 0:
            raise ValueError("no training clouds")

    def __len__(self) -> int:
        return max(1, -(-self.n // self.batch_size))

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator)
        for i in range(0, self.n, self.batch_size):
            idx = order[i:i + self.batch_size]
            yield {k: v[idx] for k, v in self.data.items()}


def retrieve(partials: Sequence, library: dict, points: int = 256) -> torch.Tensor:
    """Nearest-neighbour retrieval baseline for completion.

    ``library`` is :func:`completion_pairs` of the training set: full shapes in the frames of their
    partial scans. Each query scan is put in its own frame, the library shape with the lowest
    one-sided squared Chamfer distance from the scan to the shape (on ``points`` random points of
    each shape) is chosen, and returned mapped back into the scan's units.
    """
    lib = library["x0"]
    sub = lib[:, torch.randperm(lib.shape[1], generator=torch.Generator().manual_seed(0))[:points]]
    out = []
    for i, p in enumerate(partials):
        z, frame = normalize(torch.tensor(check_points(p, f"partial cloud {i}")), "unit_std")
        z = z.float()
        scores = torch.cat([M.one_sided_chamfer(z.expand(len(c), -1, -1), c) for c in sub.split(256)])
        out.append(frame.invert(lib[int(scores.argmin())].double()))
    return torch.stack(out)


def _subsample(x: torch.Tensor, n: Optional[int], seed: int = 0) -> torch.Tensor:
    if n is None or n >= x.shape[1]:
        return x
    return x[:, torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(seed))[:n]]


def evaluate(model, data, classes: Optional[Sequence[str]] = None, split: str = "test", n_steps: int = 50,
             sampler: str = "ddpm", max_shapes: Optional[int] = None, n_samples: Optional[int] = None,
             metrics: Sequence[str] = ("cd", "emd"), emd_points: Optional[int] = None, threshold: float = 0.05,
             seed: int = 0, baseline: Optional[dict] = None) -> dict:
    """Score a fitted model on ``data/CLASS/split``.

    Generator: MMD/COV/1-NNA (PointFlow) of ``n_samples`` (default: as many as references) samples
    vs the split, both in the training normalisation; ``samples_per_s`` is the sampling throughput.
    Completer: mean CD, EMD and F-score@``threshold`` between completion and ground truth in the
    ground truth's unit-sphere frame, over one scan per test shape (seeded by file name);
    ``baseline`` (a training :func:`completion_pairs`) adds the same numbers for :func:`retrieve`.
    ``emd_points`` subsamples clouds for the EMD only (a CPU budget knob; None keeps all).
    """
    folder = model._folder(data, classes, split, max_shapes)
    if isinstance(model, Generator):
        n = n_samples or len(folder)
        t0 = time.perf_counter()
        gen = model.sample(n, n_steps, sampler, seed=seed)
        rate = n / (time.perf_counter() - t0)
        ref = folder.points
        report = {"samples_per_s": rate, "n_gen": n, "n_ref": len(ref)}
        for m in metrics:
            g, r = (_subsample(gen, emd_points), _subsample(ref, emd_points)) if m.startswith("emd") else (gen, ref)
            report.update(M.generation_metrics(g, r, metrics=(m,)))
        return report
    if not isinstance(model, Completer):
        raise TypeError(f"evaluate expects a Generator or a Completer, got {type(model).__name__}")
    pairs = completion_pairs(folder, 1, model.max_known, seed)
    truth = pairs["frame"].invert(pairs["x0"])  # folder-normalised frame
    partials = [t[: int(k.sum())] for t, k in zip(truth, pairs["known"])]
    t0 = time.perf_counter()
    preds = {"model": model.complete(partials, n_steps, sampler, seed=seed).float()}
    rate = len(partials) / (time.perf_counter() - t0)
    if baseline is not None:
        preds["nn_retrieval"] = retrieve(partials, baseline).float()
    gt, sphere = normalize(truth.double(), "unit_sphere")
    report = {"n_shapes": len(partials), "completions_per_s": rate, "threshold": threshold}
    for name, pred in preds.items():
        p = sphere.apply(pred.double()).float()
        g = gt.float()
        report[name] = {"CD": float(M.chamfer(p, g).mean()),
                        "EMD": float(M.emd_sinkhorn(_subsample(p, emd_points), _subsample(g, emd_points)).mean()),
                        f"F@{threshold}": float(M.fscore(p, g, threshold).mean())}
    return report


def save(cloud, path: str | Path) -> Path:
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


def load(path: str | Path, num_points: int = 1024) -> torch.Tensor:
    """Read a cloud (any format of :data:`~multidiff.datasets.pointclouds.SUFFIXES`) as an (N, 3) float tensor."""
    return torch.tensor(read_cloud(path, num_points), dtype=torch.float32)


def render(clouds: Sequence, path: str | Path, titles: Optional[Sequence[str]] = None, cols: Optional[int] = None,
           size: float = 2.2, point_size: Optional[float] = None, dpi: int = 90, up: str = "z") -> Path:
    """Render clouds to a PNG grid with matplotlib 3D scatter, atomically; ``up`` is the vertical
    axis ("z" for ModelNet, "y" for ShapeNet as PointFlow distributes it).
    ``point_size`` defaults to a marker area that keeps sparse and dense clouds readable."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if up not in ("y", "z"):
        raise ValueError(f"up must be 'y' or 'z', got {up!r}")
    order = [0, 1, 2] if up == "z" else [0, 2, 1]
    arrs = [check_points(c, f"cloud {i}")[:, order] for i, c in enumerate(clouds)]
    if not arrs:
        raise ValueError("no clouds to render")
    cols = cols or min(len(arrs), 4)
    rows = -(-len(arrs) // cols)
    fig = plt.figure(figsize=(size * cols, size * rows))
    for i, a in enumerate(arrs):
        ax = fig.add_subplot(rows, cols, i + 1, projection="3d")
        s = point_size if point_size is not None else float(np.clip(2000 / len(a), 0.5, 8))
        ax.scatter(a[:, 0], a[:, 1], a[:, 2], s=s, c=a[:, 2], cmap="viridis", linewidths=0)
        lo, hi = a.min(0), a.max(0)
        mid, half = (lo + hi) / 2, (hi - lo).max() / 2
        ax.set_xlim(mid[0] - half, mid[0] + half), ax.set_ylim(mid[1] - half, mid[1] + half)
        ax.set_zlim(mid[2] - half, mid[2] + half)
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    path = Path(path)
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    plt.close(fig)
    return path
