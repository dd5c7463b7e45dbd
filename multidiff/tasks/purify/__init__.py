"""Adversarial purification with a diffusion model: DiffPure (Nie et al., ICML 2022).

:class:`Purifier` (the diffusion round trip, :mod:`.model`), :class:`Defended` (purify, then
classify, :mod:`.api`), :func:`evaluate` (robust accuracy under the adaptive attacks of
:mod:`.attacks`, :mod:`.evaluate`) -> :class:`RobustnessReport` (:mod:`.report`; figures: :mod:`.plot`);
:func:`summarise_seeds` summarises the reports of several seeds.

>>> purifier = Purifier(model, t_start=0.1, sampler_steps=20, sampler="euler_sde")
>>> defended = Defended(classifier, purifier)
>>> report = evaluate(classifier, purifier, (x, y), attacks=["pgd", "pgd-eot"], eps=0.1)
>>> report = evaluate(classifier, purifier, (x, y), eps=0.1, converge=Convergence())  # raised until stable
"""
from .api import (DEFAULT_CLASSIFIER_TRAIN_CONFIG, DEFAULT_DENOISER_TRAIN_CONFIG, Defended, PurificationModel,
                  train_classifier, train_denoiser)
from .attacks import ATTACKS
from .evaluate import Convergence, evaluate
from .model import Purifier, check_range
from .plot import save_convergence_plot, save_grid
from .reference import REFERENCE_ATTACKS
from .report import RobustnessReport, cross_check, seed_summary, summarise_seeds, summary_markdown

__all__ = ["Purifier", "Defended", "check_range", "evaluate", "Convergence", "RobustnessReport", "ATTACKS",
           "REFERENCE_ATTACKS", "save_grid", "save_convergence_plot", "summarise_seeds", "seed_summary", "cross_check",
           "summary_markdown",
           "PurificationModel", "train_denoiser", "train_classifier",
           "DEFAULT_DENOISER_TRAIN_CONFIG", "DEFAULT_CLASSIFIER_TRAIN_CONFIG"]
