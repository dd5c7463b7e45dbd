"""Point-cloud generation and completion with diffusion (Luo & Hu 2021; PVD, Zhou et al. 2021).

:class:`Generator` (a denoiser over whole clouds) and :class:`LatentGenerator` (Luo & Hu's
shape-latent model) sample clouds, :class:`Completer` (PVD-style) and :class:`LatentCompleter` (a
code of the scan, the missing points drawn given it, linear in points) complete partial scans,
:func:`evaluate` runs the benchmark protocol, :func:`save_clouds` / :func:`load_clouds` / :func:`render` handle cloud
files (``Generator.save`` / ``.load`` handle checkpoints).
"""
from .api import (UP_AXES, Completer, Generator, LatentCompleter, LatentGenerator, completion_pairs, load_clouds,
                  save_clouds, up_rotation)
from .evaluate import evaluate, reference_rows, retrieve
from .latent import DEFAULT_LATENT_TRAIN_CONFIG
from .model import DEFAULT_TRAIN_CONFIG
from .plot import render

__all__ = ["Generator", "LatentGenerator", "Completer", "LatentCompleter", "evaluate", "save_clouds", "load_clouds",
           "render", "completion_pairs", "retrieve", "DEFAULT_TRAIN_CONFIG", "DEFAULT_LATENT_TRAIN_CONFIG",
           "up_rotation", "UP_AXES", "reference_rows"]
