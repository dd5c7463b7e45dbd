"""Adversarial purification with a diffusion model: DiffPure (Nie et al., ICML 2022).

:class:`Purifier` (the diffusion round trip, :mod:`.model`), :class:`Defended` (purify, then
classify, :mod:`.api`), :func:`evaluate` (robust accuracy under the adaptive attacks of
:mod:`.attacks`, :mod:`.evaluate`) -> :class:`RobustnessReport`.

>>> purifier = Purifier(model, t_star=0.1, sampler_steps=20, sampler="sde")
>>> defended = Defended(classifier, purifier)
>>> report = evaluate(classifier, purifier, (x, y), attacks=["pgd", "pgd-eot"], eps=0.1)
"""
from .api import (DEFAULT_CLASSIFIER_TRAIN_CONFIG, DEFAULT_DENOISER_TRAIN_CONFIG, Defended, load_models, save_models,
                  train_classifier, train_denoiser)
from .attacks import ATTACKS
from .evaluate import RobustnessReport, evaluate, save_grid
from .model import Purifier, check_range

__all__ = ["Purifier", "Defended", "check_range", "evaluate", "RobustnessReport", "ATTACKS", "save_grid",
           "train_denoiser", "train_classifier", "save_models", "load_models",
           "DEFAULT_DENOISER_TRAIN_CONFIG", "DEFAULT_CLASSIFIER_TRAIN_CONFIG"]
