"""The shared diffusion core: schedules, the denoiser contract, samplers, conditioning, training."""
from . import checkpoint, conditioning, denoiser, io, losses, samplers, schedules, task, training, validate
from .device import resolve_device, seed_everything, seeded

__all__ = ["checkpoint", "conditioning", "denoiser", "io", "losses", "samplers", "schedules", "task", "training",
           "validate", "resolve_device", "seed_everything", "seeded"]
