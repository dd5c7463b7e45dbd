"""Adversarial purification with a diffusion model: DiffPure (Nie et al., ICML 2022).

:class:`Purifier` (the diffusion round trip, :mod:`.model`), :class:`Defended` (purify, then
classify, :mod:`.api`), :func:`evaluate` (robust accuracy under the adaptive attacks of
:mod:`.attacks`, :mod:`.evaluate`) -> :class:`RobustnessReport`.

>>> purifier = Purifier(model, t_star=0.1, sampler_steps=20, sampler="sde")
>>> defended = Defended(classifier, purifier)
>>> report = evaluate(classifier, purifier, (x, y), attacks=["pgd", "pgd-eot"], eps=0.1)
>>> report = evaluate(classifier, purifier, (x, y), eps=0.1, converge=Convergence())  # raised until stable
"""
from .api import (DEFAULT_CLASSIFIER_TRAIN_CONFIG, DEFAULT_DENOISER_TRAIN_CONFIG, Defended, load_models, save_models,
                  train_classifier, train_denoiser)
from .attacks import ATTACKS
from .evaluate import Convergence, RobustnessReport, evaluate, save_convergence_plot, save_grid
from .model import Purifier, check_range
from .reference import REFERENCE_ATTACKS

__all__ = ["Purifier", "Defended", "check_range", "evaluate", "Convergence", "RobustnessReport", "ATTACKS",
           "REFERENCE_ATTACKS", "save_grid", "save_convergence_plot",
           "train_denoiser", "train_classifier", "save_models", "load_models",
           "DEFAULT_DENOISER_TRAIN_CONFIG", "DEFAULT_CLASSIFIER_TRAIN_CONFIG"]
