"""Adversarial purification with a diffusion model: DiffPure (Nie et al., ICML 2022).

:class:`Purifier` (the diffusion round trip), :class:`Defended` (purify, then classify),
:func:`evaluate` (robust accuracy under adaptive attacks, :mod:`.attacks`) -> :class:`RobustnessReport`.
"""
from .attacks import ATTACKS
from .evaluate import RobustnessReport, evaluate, save_grid
from .model import (Defended, Purifier, check_range, load_models, save_models, train_classifier,
                    train_denoiser)

__all__ = ["Purifier", "Defended", "check_range", "evaluate", "RobustnessReport", "ATTACKS", "save_grid",
           "train_denoiser", "train_classifier", "save_models", "load_models"]
