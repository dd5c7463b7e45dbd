"""multidiff: diffusion models for time series, audio and point clouds.

Tasks (``multidiff.tasks``): imputation (CSDI), forecasting (TimeGrad), mel-spectrogram TTS
decoding (Grad-TTS), point-cloud generation/completion (Luo & Hu, PVD) and adversarial
purification (DiffPure), all built on one core (``multidiff.core``).
"""
__version__ = "0.1.0"

from . import core  # noqa: E402


def __getattr__(name):  # lazy: `import multidiff` stays light, tasks load their extras on use
    if name in ("tasks", "datasets", "metrics", "nets"):
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(name)
