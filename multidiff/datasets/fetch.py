"""Find a published data set on disk, or download it into the cache with a checksum check.

Search order for a data set folder (e.g. ``air_quality_pm25``):
1. an explicit ``path`` the user gives (a folder, or a file inside it);
2. ``$MULTIDIFF_DATA/<folder>``;
3. ``../shared/data/<folder>`` beside the working directory or beside this checkout;
4. the cache ``$MULTIDIFF_CACHE`` (default ``~/.cache/multidiff``)``/<folder>``;
5. a download of the owner's archive into that cache, each file checked by SHA-256.
"""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..core.io import write_atomic

__all__ = ["RemoteDataset", "REGISTRY", "data_roots", "cache_dir", "locate", "sha256"]


@dataclass(frozen=True)
class RemoteDataset:
    folder: str                          # folder name under a data root
    files: dict[str, str]                # file name -> sha256 of the file as published
    url: Optional[str] = None            # owner's download (a zip/tar archive or the file itself)
    members: dict[str, str] = field(default_factory=dict)  # file name -> path inside the archive


REGISTRY: dict[str, RemoteDataset] = {
    "aqi36": RemoteDataset(
        folder="air_quality_pm25",
        files={"pm25_ground.txt": "8f77b738ae4c50621705a308e606e6229564ad7ad20358986bd6031355f0ab5f",
               "pm25_missing.txt": "3f991eab5bbc5e644e61360e6b71ce45179c86cf650b3bb9a53771d8f9953fe3"},
        # Yi et al. (2016) STMVL release, as CSDI's download.py fetches it
        url="https://www.microsoft.com/en-us/research/uploads/prod/2016/06/STMVL-Release.zip",
        members={"pm25_ground.txt": "Code/STMVL/SampleData/pm25_ground.txt",
                 "pm25_missing.txt": "Code/STMVL/SampleData/pm25_missing.txt"},
    ),
    "physionet2012": RemoteDataset(
        folder="physionet2012",
        files={"set-a.tar.gz": "051c04b2605eff2b88739fde0e36a36558fc76899f4aa5a109e8744c37b28e94"},
        url="https://physionet.org/files/challenge-2012/1.0.0/set-a.tar.gz",
    ),
    "etth1": RemoteDataset(
        folder="ett",
        files={"ETTh1.csv": "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066"},
        url="https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/ETTh1.csv",
    ),
    "ettm1": RemoteDataset(
        folder="ett",
        files={"ETTm1.csv": "6ce1759b1a18e3328421d5d75fadcb316c449fcd7cec32820c8dafda71986c9e"},
        url="https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/ETTm1.csv",
    ),
    # the Autoformer data (Wu et al. 2021) is published on a shared drive with no stable file address
    "weather": RemoteDataset(
        folder="weather", files={"weather.csv": "34ee981d07313e51da2a50bb600072c8ae4a69cb4b0651f4cb93a069d7a2ba63"}),
    "illness": RemoteDataset(
        folder="illness",
        files={"national_illness.csv": "93601f64d2566dc796ca4305adad8b8560c2db1a1ff04543c3bd813a7263570a"}),
    "exchange_rate": RemoteDataset(
        folder="exchange_rate",
        files={"exchange_rate.txt.gz": "6a4fbb561dcdee43f071a83badbeec9223a335552278348656738b556f1c2e9d"},
        url="https://raw.githubusercontent.com/laiguokun/multivariate-time-series-data/master/exchange_rate/exchange_rate.txt.gz",
    ),
}


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_dir() -> Path:
    return Path(os.environ.get("MULTIDIFF_CACHE", Path.home() / ".cache" / "multidiff"))


def data_roots() -> list[Path]:
    """Folders searched for data sets, in order (see module docstring)."""
    roots = []
    if os.environ.get("MULTIDIFF_DATA"):
        roots.append(Path(os.environ["MULTIDIFF_DATA"]))
    roots += [Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[2].parent / "shared" / "data",
              cache_dir()]
    seen, out = set(), []
    for r in roots:
        if r.resolve() not in seen:
            seen.add(r.resolve())
            out.append(r)
    return out


def _has_all(folder: Path, names) -> bool:
    return all((folder / n).is_file() for n in names)


def locate(name: str, path: Optional[str | os.PathLike] = None, download: bool = True) -> Path:
    """Folder holding data set ``name`` (a key of :data:`REGISTRY`), downloading it if needed."""
    if name not in REGISTRY:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(REGISTRY)}")
    spec = REGISTRY[name]
    if path is not None:
        p = Path(path).expanduser()
        folder = p.parent if p.is_file() else p
        for cand in (folder, folder / spec.folder):
            if _has_all(cand, spec.files):
                return cand
        raise FileNotFoundError(f"{p} does not hold the {name} files ({', '.join(spec.files)}); "
                                f"point path at the folder that contains them")
    for root in data_roots():
        if _has_all(root / spec.folder, spec.files):
            return root / spec.folder
    if not download or spec.url is None:
        raise FileNotFoundError(
            f"{name} not found under {', '.join(str(r) for r in data_roots())}; set MULTIDIFF_DATA "
            f"to a folder containing {spec.folder}/ or pass path=")
    return download_dataset(name)


def download_dataset(name: str, url: Optional[str] = None, dest: Optional[Path] = None) -> Path:
    """Download ``name`` from its owner (or ``url``) into the cache; verify every file's SHA-256."""
    spec = REGISTRY[name]
    url = url or spec.url
    dest = (dest or cache_dir()) / spec.folder
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            payload = resp.read()
    except OSError as err:
        raise FileNotFoundError(f"could not download {name} from {url} ({err}); download it by hand and set "
                                f"MULTIDIFF_DATA to the folder holding {spec.folder}/") from err
    for fname, digest in spec.files.items():
        member = spec.members.get(fname)
        if member is None:
            data = payload
        elif zipfile.is_zipfile(io.BytesIO(payload)):
            with zipfile.ZipFile(io.BytesIO(payload)) as zf:
                data = zf.read(member)
        else:
            with tarfile.open(fileobj=io.BytesIO(payload)) as tf:
                data = tf.extractfile(member).read()
        got = hashlib.sha256(data).hexdigest()
        if got != digest:
            raise ValueError(f"checksum mismatch for {fname} from {url}: expected {digest}, got {got}; "
                             "the download is corrupt or the source changed")
        write_atomic(dest / fname, lambda tmp, d=data: Path(tmp).write_bytes(d))
    return dest

