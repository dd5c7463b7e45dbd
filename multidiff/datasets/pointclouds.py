"""Point-cloud folders in the ModelNet / ShapeNet layout ``ROOT/CLASS/{train,test}/*.EXT``.

Files are read through open3d (``.pcd``, ``.ply`` point clouds; ``.off``, ``.obj`` and face-only
``.ply`` meshes are sampled to points, Poisson-disk as ModelNet40-1k/PointFlow, or uniformly), or
numpy (``.npy``, ``.txt``/``.pts`` with x y z in the first three columns).

Normalisation is per shape and invertible (:class:`Normalization`): ``"unit_std"`` is Luo & Hu's
``shape_unit`` (zero mean, standard deviation 1 over all coordinates), the default because it
matches the unit variance of the diffusion noise; ``"unit_sphere"`` is zero mean with the farthest
point at radius 1. Partial scans for completion come from open3d's hidden-point removal
(Katz et al. 2007) seen from a random camera, optionally cropped, with a fixed seed per shape.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..core.validate import check_whole

__all__ = ["SUFFIXES", "NORMALIZATIONS", "require_open3d", "read_cloud", "check_points", "resample", "Normalization",
           "normalize", "list_shapes", "PointCloudFolder", "load_folder", "partial_scan", "shape_seed"]

SUFFIXES = (".pcd", ".ply", ".off", ".obj", ".npy", ".txt", ".pts")
NORMALIZATIONS = ("unit_std", "unit_sphere")


def require_open3d():
    try:
        import open3d as o3d
    except ImportError as err:  # open3d-cpu also needs the system library libusb-1.0
        raise ImportError(f"point-cloud files are read with open3d, which failed to import ({err}); "
                          "pip install open3d-cpu (and apt-get install libusb-1.0-0 on Debian/Ubuntu)") from err
    return o3d


def check_points(points, name: str = "point cloud") -> np.ndarray:
    """Validate one cloud: a non-empty (N, 3) array of finite numbers; returns a float64 copy."""
    arr = points.detach().cpu().numpy() if isinstance(points, torch.Tensor) else np.asarray(points)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must have shape (N, 3), got {arr.shape}")
    if len(arr) == 0:
        raise ValueError(f"{name} is empty (0 points)")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(1).sum())
        raise ValueError(f"{name} has {bad} points with NaN or inf coordinates; remove them first")
    return arr.astype(np.float64, copy=True)


def _mesh_points(o3d, mesh, path: Path, num_points: int, sampling: str, seed: int) -> np.ndarray:
    if len(mesh.triangles) == 0:
        raise ValueError(f"{path} holds no points and no triangles")
    o3d.utility.random.seed(seed)
    if sampling == "poisson":
        pcd = mesh.sample_points_poisson_disk(num_points, init_factor=5)
    elif sampling == "uniform":
        pcd = mesh.sample_points_uniformly(num_points)
    else:
        raise ValueError(f"mesh sampling must be 'poisson' or 'uniform', got {sampling!r}")
    return np.asarray(pcd.points)


def read_cloud(path: str | Path, num_points: int = 1024, sampling: str = "poisson", seed: int = 0) -> np.ndarray:
    """Read one file as an (N, 3) float64 array in its own units.

    Meshes (``.off``, ``.obj``, ``.ply`` without vertices-only content) are sampled to ``num_points``
    (``sampling="poisson"`` or ``"uniform"``); point files keep all their points.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"unsupported point-cloud file type {suffix or '(none)'!r} for {path}; "
                         f"use one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if suffix == ".npy":
        arr = np.load(path, allow_pickle=False)
        arr = arr[:, :3] if arr.ndim == 2 and arr.shape[1] > 3 else arr
    elif suffix in (".txt", ".pts"):
        text = path.read_text().replace(",", " ")
        rows = [(n, r.split()) for n, r in enumerate(text.splitlines(), 1)
                if r.strip() and not r.lstrip().startswith("#")]
        short = [(n, len(r)) for n, r in rows if len(r) < 3]
        if short:  # a 2-D file is not a cloud with its z left out: refuse rather than read 0 points
            n, k = short[0]
            raise ValueError(f"{path}: line {n} has {k} value{'s' if k != 1 else ''} ({len(short)} lines have fewer "
                             "than 3); a point file needs x y z on every line (more columns, e.g. normals or "
                             "colours, are ignored)")
        try:
            arr = np.array([[float(v) for v in r[:3]] for _, r in rows], dtype=np.float64)
        except ValueError as err:
            raise ValueError(f"{path}: expected x y z numbers in the first three columns ({err})") from err
        arr = arr.reshape(-1, 3)
    else:
        o3d = require_open3d()
        arr = np.zeros((0, 3))
        if suffix in (".pcd", ".ply"):
            arr = np.asarray(o3d.io.read_point_cloud(str(path)).points)
        if suffix in (".off", ".obj") or (suffix == ".ply" and len(arr) == 0):
            mesh = o3d.io.read_triangle_mesh(str(path))
            arr = _mesh_points(o3d, mesh, path, num_points, sampling, seed) if len(mesh.triangles) else np.asarray(mesh.vertices)
    return check_points(arr, name=str(path))


def resample(points: np.ndarray, num_points: int, rng: np.random.Generator) -> np.ndarray:
    """Random subset of ``num_points`` points. A cloud with fewer points is repeated whole as
    often as it fits and topped up with a random subset, so every point appears (a 1024-point
    file at 2048 points holds each point exactly twice), rather than some points not at all."""
    n = len(points)
    if n >= num_points:
        return points[rng.choice(n, num_points, replace=False)]
    idx = np.concatenate([np.tile(np.arange(n), num_points // n), rng.choice(n, num_points % n, replace=False)])
    return points[idx]


@dataclass(frozen=True)
class Normalization:
    """Per-shape affine map ``x_norm = (x - center) / scale``; :meth:`invert` undoes it."""

    center: torch.Tensor  # (..., 1, 3)
    scale: torch.Tensor   # (..., 1, 1)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.center.to(x)) / self.scale.to(x)

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.to(x) + self.center.to(x)


def normalize(points: torch.Tensor, mode: str = "unit_std") -> tuple[torch.Tensor, Normalization]:
    """Normalise (N, 3) or (B, N, 3) clouds per shape; returns ``(normalised, Normalization)``.

    ``"unit_std"``: zero mean, std 1 over all coordinates (Luo & Hu 2021 ``shape_unit``).
    ``"unit_sphere"``: zero mean, farthest point at distance 1.
    """
    if mode not in NORMALIZATIONS:
        raise ValueError(f"normalisation must be one of {', '.join(NORMALIZATIONS)}, got {mode!r}")
    x = torch.as_tensor(points)
    center = x.mean(-2, keepdim=True)
    centred = x - center
    if mode == "unit_std":
        scale = centred.flatten(-2).std(-1).reshape(center.shape[:-1] + (1,))
    else:
        scale = centred.norm(dim=-1).amax(-1).reshape(center.shape[:-1] + (1,))
    if (scale <= 0).any():
        raise ValueError("a cloud has all its points at one location; it cannot be normalised")
    norm = Normalization(center, scale)
    return norm.apply(x), norm


def list_shapes(root: str | Path, classes: Optional[Sequence[str]] = None, split: str = "train") -> list[tuple[Path, str]]:
    """``(file, class)`` pairs of ``root/CLASS/split/*`` with a supported suffix, sorted."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"point-cloud folder {root} does not exist; expected ROOT/CLASS/{{train,test}}/*.pcd")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    available = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    wanted = list(classes) if classes else available
    if not wanted:
        raise FileNotFoundError(f"{root} holds no class folders; expected ROOT/CLASS/{{train,test}}/files")
    unknown = [c for c in wanted if c not in available]
    if unknown:
        raise ValueError(f"unknown class {unknown} in {root}; available: {', '.join(available) or '(none)'}")
    out = []
    for cls in wanted:
        folder = root / cls / split
        files = sorted(folder.iterdir()) if folder.is_dir() else []
        good = [f for f in files if f.is_file() and f.suffix.lower() in SUFFIXES]
        if not good:
            found = sorted({f.suffix or f.name for f in files if f.is_file()})
            hint = f" (found only unsupported files: {', '.join(found)})" if found else ""
            raise ValueError(f"class folder {folder} has no point-cloud files{hint}; "
                             f"supported types: {', '.join(SUFFIXES)}")
        out += [(f, cls) for f in good]
    return out


def shape_seed(path: str | Path, seed: int) -> int:
    """A seed fixed by the file's name and ``seed`` (stable across runs and machines)."""
    return (zlib.crc32(Path(path).name.encode()) + 7919 * int(seed)) % (2 ** 31)


@dataclass
class PointCloudFolder:
    """Clouds of one split, resampled to ``num_points`` and normalised per shape."""

    points: torch.Tensor        # (S, num_points, 3) normalised
    norm: Normalization         # per-shape maps back to the files' units
    labels: list[str]           # class of each shape
    paths: list[Path]
    file_points: Optional[list[int]] = None  # points each file held before resampling (None: unknown)

    def distinct_points(self) -> int:
        """Points per cloud that are not repeats: ``num_points``, or fewer when a file held fewer
        (ModelNet10 here: 1024 per shape, so a 2048-point folder repeats each point twice)."""
        n = self.points.shape[1]
        return min([n, *self.file_points]) if self.file_points else n

    def __len__(self) -> int:
        return len(self.points)

    def raw(self) -> torch.Tensor:
        """The clouds in the files' own units."""
        return self.norm.invert(self.points)


def load_folder(root: str | Path, classes: Optional[Sequence[str]] = None, split: str = "train",
                num_points: int = 1024, normalization: str = "unit_std", max_shapes: Optional[int] = None,
                seed: int = 0, sampling: str = "poisson") -> PointCloudFolder:
    """Read ``root/CLASS/split/*`` (all classes when ``classes`` is None) into a :class:`PointCloudFolder`.

    Each cloud is resampled to ``num_points`` with a seed fixed by its file name, so the same
    files always give the same tensor. ``max_shapes`` keeps the first shapes of the sorted list.
    """
    num_points = check_whole("num_points", num_points)
    max_shapes = check_whole("max_shapes", max_shapes, none="every shape")  # 0 read every shape
    shapes = list_shapes(root, classes, split)[:max_shapes]
    clouds, sizes = [], []
    for path, _ in shapes:
        s = shape_seed(path, seed)
        arr = read_cloud(path, num_points, sampling, seed=s)
        sizes.append(len(arr))
        clouds.append(resample(arr, num_points, np.random.default_rng(s)) if len(arr) != num_points else arr)
    x, norm = normalize(torch.tensor(np.stack(clouds), dtype=torch.float64), normalization)
    return PointCloudFolder(x.float(), Normalization(norm.center.float(), norm.scale.float()),
                            [c for _, c in shapes], [p for p, _ in shapes], sizes)


def partial_scan(points, seed: int, radius: float = 100.0, crop: float = 0.0, min_points: int = 16) -> np.ndarray:
    """Indices of the points visible from a random camera (open3d hidden-point removal).

    The camera sits at 2x the cloud's bounding radius in a direction drawn with ``seed``;
    ``radius`` is HPR's spherical-flip radius relative to the camera distance. ``crop`` in [0, 1)
    additionally drops that fraction of the visible points nearest to a second random direction
    (a PCN/ShapeNet-style crop). Returns sorted indices into ``points``.
    """
    pts = check_points(points, "cloud to scan")
    if not 0 <= crop < 1:
        raise ValueError(f"crop must lie in [0, 1), got {crop}")
    o3d = require_open3d()
    rng = np.random.default_rng(seed)
    centre = pts.mean(0)
    dist = 2.0 * max(np.linalg.norm(pts - centre, axis=1).max(), 1e-12)
    view = rng.normal(size=3)
    camera = centre + dist * view / np.linalg.norm(view)
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
    _, idx = pcd.hidden_point_removal(camera, dist * radius)
    idx = np.sort(np.asarray(idx, dtype=np.int64))
    if crop > 0 and len(idx) > min_points:
        d = rng.normal(size=3)
        anchor = centre + dist / 2 * d / np.linalg.norm(d)
        keep = max(min_points, int(round(len(idx) * (1 - crop))))
        order = np.argsort(-np.linalg.norm(pts[idx] - anchor, axis=1))
        idx = np.sort(idx[order[:keep]])
    if len(idx) < min_points:
        raise ValueError(f"the scan sees only {len(idx)} points (< {min_points}); use a denser cloud")
    return idx
