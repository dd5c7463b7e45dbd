"""Where and how a measurement was taken: the block every benchmark writes beside its numbers.

Timings mean little without the machine and its load, so each result file records the date,
the command line, the device (with its cores and torch threads), the 1/5/15-minute load average
before and after the run, the peak memory of the process and the git commit of the code.

    run = Run()                       # at the start: the date, the command, the load before
    ...                               # measure
    results.update(run.provenance())  # at the end: the load after, the peak memory
"""
from __future__ import annotations

import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import torch

__all__ = ["Run", "device_string", "git_commit", "load_average", "peak_rss_gb"]


def device_string(device: Optional[str | torch.device] = None) -> str:
    """``"CPU (x86_64, 2 cores, 1 torch threads)"``, or the CUDA device's name for a CUDA ``device``
    (``None``: the CPU)."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def git_commit(short: bool = False) -> Optional[str]:
    """The commit of the multidiff source tree (``git rev-parse HEAD``), None outside a git
    checkout or without git. Uncommitted edits are not flagged."""
    args = ["git", "rev-parse", *(["--short"] if short else []), "HEAD"]
    try:
        out = subprocess.run(args, cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def load_average() -> list[float]:
    """The 1-, 5- and 15-minute load averages of the machine (``os.getloadavg``)."""
    return list(os.getloadavg())


def peak_rss_gb() -> float:
    """The peak resident memory of this process so far, in GiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 30 if sys.platform == "darwin" else peak / 2 ** 20  # bytes on macOS, KiB on Linux


class Run:
    """One benchmark run: created at its start, :meth:`provenance` at its end.

    ``argv`` is the command line to record (default ``sys.argv``); ``device`` the device that
    computes (default the CPU)."""

    def __init__(self, argv: Optional[Sequence[str]] = None, device: Optional[str | torch.device] = None):
        self.argv = list(sys.argv if argv is None else argv)
        self.device = device
        self.started = time.time()
        self.load_before = load_average()

    def provenance(self) -> dict:
        """``{"date", "command", "device", "cpu_count", "threads", "commit", "load_before",
        "load_after", "peak_rss_gb"}``: the date (UTC) the run started, the command line
        (``python ...``), the device string (:func:`device_string`), the machine's cores and torch's
        threads, the git commit (None outside a checkout), the 1/5/15-minute load averages at the
        start and now, and the peak memory of the process (GiB)."""
        return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.started)),
                "command": "python " + shlex.join(self.argv), "device": device_string(self.device),
                "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "commit": git_commit(),
                "load_before": self.load_before, "load_after": load_average(), "peak_rss_gb": peak_rss_gb()}
