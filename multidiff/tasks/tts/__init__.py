"""Text to speech with a Grad-TTS diffusion decoder (Popov et al., ICML 2021).

:func:`train` -> :class:`TTS` (``synthesize``), :func:`load`, :func:`evaluate` (MCD, log-F0 RMSE, RTF).
"""
from .api import PRESETS, TTS, load, prepare, train
from .evaluate import EvalResult, evaluate
from .model import SAMPLERS, DiffusionConfig, collate, gradtts_loss

__all__ = ["DiffusionConfig", "PRESETS", "TTS", "gradtts_loss", "collate", "prepare", "train", "load", "evaluate",
           "EvalResult", "SAMPLERS"]
