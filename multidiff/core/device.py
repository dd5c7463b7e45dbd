"""Device and seed helpers."""
from __future__ import annotations

import contextlib
import random
from typing import Iterator, Optional

import numpy as np
import torch

__all__ = ["resolve_device", "seed_everything", "seeded"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then CPU; anything else is passed to ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} was asked for but CUDA is not available; use device='auto' or 'cpu'")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices): for a user's script. Library code runs seeded
    work in :func:`seeded`, which leaves the caller's generators as they were."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def seeded(seed: Optional[int]) -> Iterator[None]:
    """Run the body with Python's ``random``, NumPy's global generator and torch's (CPU, every CUDA
    device, MPS) seeded by ``seed`` (:func:`seed_everything`), and put their states back on exit:
    the work inside is reproducible and the caller's random sequences continue as if it had not
    run. ``seed=None``: the body runs on the generators as they are, and nothing is restored."""
    if seed is None:
        yield
        return
    py, np_state = random.getstate(), np.random.get_state()
    mps = getattr(torch, "mps", None)
    mps_state = mps.get_rng_state() if mps is not None and torch.backends.mps.is_available() else None
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            seed_everything(seed)
            yield
        finally:
            random.setstate(py)
            np.random.set_state(np_state)
            if mps_state is not None:
                mps.set_rng_state(mps_state)
