"""Point-cloud generation and completion with diffusion (Luo & Hu 2021; PVD, Zhou et al. 2021).

:class:`Generator` samples clouds, :class:`Completer` completes partial scans, :func:`evaluate`
runs the benchmark protocol, :func:`save` / :func:`load` / :func:`render` handle cloud files.
"""
from .api import Completer, Generator, completion_pairs, load, save
from .evaluate import evaluate, retrieve
from .model import SAMPLER_NAMES
from .plot import render

__all__ = ["Generator", "Completer", "evaluate", "save", "load", "render", "completion_pairs", "retrieve",
           "SAMPLER_NAMES"]
