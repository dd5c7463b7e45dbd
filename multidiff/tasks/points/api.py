"""Point-cloud generation and completion with diffusion: the public API.

* :class:`Generator`: DDPM over point coordinates (PVD, Zhou et al. 2021: 1000 steps, linear betas
  1e-4..0.02) with the permutation-equivariant :class:`~multidiff.nets.point_denoiser.PointDenoiser`;
  samples with the core's DDPM / DDIM / DPM-Solver++(2M) at any step count.
* :class:`Completer`: PVD-style completion. The partial points sit clean among the noisy ones
  (flagged by a per-point feature) during training and are held fixed through the whole reverse
  process with ``conditioning.replace_known(noise_known=False)``; the loss runs over the free
  points only. Each pair is expressed in the frame of its partial scan (zero mean, unit std of the
  partial points), so completing a new scan needs nothing but the scan itself.
* :func:`save_clouds` / :func:`load_clouds`: one cloud as ``.ply``/``.pcd`` (open3d) or ``.npy``
  (``Generator.save`` / ``.load`` write and read checkpoints). ``save`` / ``load`` are their old
  names, deprecated.

The shared model is in :mod:`.model`, the benchmark protocol (:func:`~.evaluate.evaluate`,
:func:`~.evaluate.retrieve`) in :mod:`.evaluate`, :func:`~.plot.render` in :mod:`.plot`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ...core.checkpoint import write_atomic
from ...core.conditioning import replace_known
from ...core.deprecation import moved, renamed_kwargs
from ...core.device import resolve_device
from ...core.losses import draw_discrete_t, eps_mse
from ...core.validate import check_whole
from ...datasets.pointclouds import (Normalization, PointCloudFolder, check_points, normalize, partial_scan, read_cloud,
                                    shape_seed)
from .model import _PointDiffusion

__all__ = ["Generator", "Completer", "save_clouds", "load_clouds", "completion_pairs", "up_rotation", "UP_AXES"]

# the module-level cloud readers/writers were called save/load, like the checkpoint methods
__getattr__ = moved(__name__, {"save": f"{__name__}:save_clouds", "load": f"{__name__}:load_clouds"})


class Generator(_PointDiffusion):
    """Unconditional point-cloud DDPM (PVD's schedule; network: :class:`PointDenoiser`)."""

    kind = "points.generator"

    def fit(self, data, classes: Optional[Sequence[str]] = None, split: str = "train",
            max_shapes: Optional[int] = None, resume: bool = False) -> "Generator":
        """Train on a folder ``data/CLASS/split/*`` (or a (S, N, 3) array of clouds); ``resume=True``
        continues the run saved in ``checkpoint_dir`` (its steps, time and optimizer state)."""
        folder = self._folder(data, classes, split, max_shapes)
        self.num_shapes_ = len(folder)

        def loss_fn(net, batch):
            x0 = batch["x0"]
            return eps_mse(net, x0, draw_discrete_t(len(x0), self.num_train_steps, x0.device), self._alpha_bar_of)

        return self._train({"x0": folder.points}, loss_fn, resume)

    @renamed_kwargs(n_steps="sampler_steps")
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
            max_shapes: Optional[int] = None, resume: bool = False) -> "Completer":
        """Train on ``views`` hidden-point-removal scans of every shape of the folder (or array);
        ``resume=True`` continues the run saved in ``checkpoint_dir``."""
        folder = self._folder(data, classes, split, max_shapes)
        pairs = completion_pairs(folder, self.views, self.max_known, self.seed)
        self.num_shapes_ = len(folder)

        def loss_fn(net, batch):
            x0, known = batch["x0"], batch["known"]
            model = _hold(net, x0, known)
            t = draw_discrete_t(len(x0), self.num_train_steps, x0.device)
            return eps_mse(model, x0, t, self._alpha_bar_of, mask=(1 - known).expand_as(x0))

        return self._train({"x0": pairs["x0"], "known": pairs["known"]}, loss_fn, resume)

    def _prepare(self, partials: Sequence, offset: int = 0, rotation: Optional[np.ndarray] = None):
        known, mask, frames, kept = [], [], [], []
        for i, p in enumerate(partials, start=offset):
            if isinstance(p, (str, Path)):
                arr = read_cloud(p, self.num_points)
            else:
                arr = check_points(p, f"partial cloud {i}")
            if len(arr) > self.max_known:  # keep at most max_known, a seeded subset, as in training
                arr = arr[np.sort(np.random.default_rng(self.seed + i).choice(len(arr), self.max_known, replace=False))]
            upright = arr if rotation is None else arr @ rotation.T  # into the training data's z-up axes
            z, frame = normalize(torch.tensor(upright), "unit_std")
            row = torch.zeros(self.num_points, 3, dtype=torch.float64)
            row[: len(z)] = z
            m = torch.zeros(self.num_points, 1)
            m[: len(z)] = 1
            known.append(row.float()), mask.append(m), frames.append(frame), kept.append(torch.tensor(arr))
        return torch.stack(known), torch.stack(mask), frames, kept

    @renamed_kwargs(n_steps="sampler_steps")
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
        single = isinstance(partial, (str, Path)) or (isinstance(partial, (np.ndarray, torch.Tensor)) and partial.ndim == 2)
        if isinstance(partial, (np.ndarray, torch.Tensor)) and partial.ndim not in (2, 3):
            raise ValueError(f"partial must be one (M, 3) scan, a (B, M, 3) array or a list of scans, got an array of "
                             f"shape {tuple(partial.shape)}")
        partials = [partial] if single else list(partial)
        if not partials:
            raise ValueError("no partial clouds given")
        device = resolve_device(self.device)
        net = self.net.to(device).eval()
        gen = torch.Generator(device=device).manual_seed(self.seed if seed is None else seed)
        out = []
        for s in range(0, len(partials), batch_size):
            known, mask, frames, kept = self._prepare(partials[s:s + batch_size], offset=s, rotation=rotation)
            known, mask = known.to(device), mask.to(device)
            project = replace_known(known, mask.expand_as(known), noise_known=False)  # from x_T on
            x = self._run(_hold(net, known, mask), known.shape, sampler_steps, sampler, gen, device,
                          project).double().cpu()
            for frame, row, arr in zip(frames, x, kept):
                row = frame.invert(row) @ torch.from_numpy(rotation)  # back to the scan's axes (R^-1 = R^T)
                row[: len(arr)] = arr  # the scan points themselves, not their frame round trip
                out.append(row)
        result = torch.stack(out)
        return result[0] if single else result


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
