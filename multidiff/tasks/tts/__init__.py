"""Text to speech with a Grad-TTS diffusion decoder (Popov et al., ICML 2021).

:func:`train` -> :class:`TTS` (``synthesize``), :func:`load` (without a folder: the shipped voice),
:func:`evaluate` (WER / CER by an offline recogniser, MCD, log-F0 RMSE, RTF), :func:`curve_point`.
"""
from .api import (CPU_TRAIN_CONFIG, DEFAULT_TRAIN_CONFIG, DEFAULT_VOICE, PRESETS, TRAINING_PRESETS, TTS, load, prepare,
                  preset_settings, train)
from .evaluate import EvalResult, curve_point, evaluate
from .model import DiffusionConfig, collate, gradtts_loss

__all__ = ["DiffusionConfig", "PRESETS", "TRAINING_PRESETS", "TTS", "gradtts_loss", "collate", "prepare", "train", "load",
           "preset_settings", "evaluate", "curve_point", "EvalResult", "DEFAULT_TRAIN_CONFIG",
           "CPU_TRAIN_CONFIG", "DEFAULT_VOICE"]
