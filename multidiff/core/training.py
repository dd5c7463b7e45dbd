"""The training loop every diffusion model of multidiff goes through.

AdamW, a learning-rate schedule, EMA weights, gradient clipping, bf16 autocast on CUDA,
a tqdm progress bar, early stopping on a validation loss, atomic safetensors checkpoints
and resume. The model owns its loss: ``loss_fn(model, batch) -> scalar``.
(The forecasting task trains through GluonTS/Lightning instead, which brings multi-GPU.)
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import torch
from torch import nn

from .checkpoint import load_checkpoint, save_checkpoint
from .device import resolve_device, seed_everything

__all__ = ["TrainConfig", "TrainResult", "EMA", "fit", "to_device"]


@dataclass
class TrainConfig:
    epochs: int = 100               # passes over the training batches
    lr: float = 1e-3                # AdamW learning rate (CSDI: 1e-3)
    weight_decay: float = 1e-6      # AdamW weight decay (CSDI: 1e-6)
    lr_schedule: str = "multistep"  # "multistep" (x0.1 at 75 % and 90 %, as CSDI), "cosine" or "constant"
    warmup_steps: int = 0           # linear warm-up of the learning rate
    ema_decay: float = 0.999        # 0 disables EMA; EMA weights are the ones kept for sampling
    grad_clip: float = 1.0          # max global grad norm; 0 disables clipping
    precision: str = "auto"         # "auto" (bf16 autocast on CUDA, fp32 elsewhere), "bf16" or "fp32"
    patience: int = 0               # early stopping after this many epochs without val improvement; 0 off
    max_steps: Optional[int] = None  # stop after this many optimizer steps in total
    seed: int = 0                   # seeds torch, numpy and python before training
    progress: bool = True           # tqdm bar over epochs
    device: str = "auto"            # "auto", "cpu", "cuda", "cuda:1", ...

    def validate(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if self.lr_schedule not in ("multistep", "cosine", "constant"):
            raise ValueError(f"lr_schedule must be multistep, cosine or constant, got {self.lr_schedule!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)  # one row per epoch
    steps: int = 0
    best_val: Optional[float] = None
    seconds: float = 0.0
    stopped_early: bool = False


class EMA:
    """Exponential moving average of a model's floating-point parameters and buffers."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                self.shadow[k].lerp_(v.detach(), 1 - self.decay)
            else:
                self.shadow[k].copy_(v)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow


def to_device(batch: Any, device: torch.device) -> Any:
    """Move tensors in nested dicts/lists/tuples to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def _lr_lambda(cfg: TrainConfig, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        p = step / max(1, total_steps)
        if cfg.lr_schedule == "multistep":
            return warm * (0.01 if p >= 0.9 else 0.1 if p >= 0.75 else 1.0)
        if cfg.lr_schedule == "cosine":
            return warm * 0.5 * (1 + math.cos(math.pi * min(p, 1.0)))
        return warm
    return factor


def _autocast(cfg: TrainConfig, device: torch.device):
    use_bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)


@torch.no_grad()
def _validate(model, loss_fn, batches, device, cfg, seed) -> float:
    model.eval()
    total, n = 0.0, 0
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # the same noise every epoch, so val losses are comparable
        for batch in batches:
            with _autocast(cfg, device):
                total += float(loss_fn(model, to_device(batch, device)))
            n += 1
    model.train()
    return total / max(n, 1)


def fit(model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor], train_batches: Iterable,
        config: TrainConfig, val_batches: Optional[Iterable] = None,
        checkpoint_dir: Optional[str | Path] = None, resume: bool = False,
        extra_config: Optional[dict] = None) -> TrainResult:
    """Train ``model`` in place by minimising ``loss_fn`` over ``train_batches`` (re-iterable,
    e.g. a DataLoader). At the end the model holds its EMA weights (the best ones by
    validation loss when ``val_batches`` is given).

    ``checkpoint_dir`` gets an atomic checkpoint ``last/`` after every epoch (and ``best/`` on a new
    best validation loss); with ``resume=True`` training continues from ``last/``.
    ``extra_config`` is stored in the checkpoint's JSON (e.g. the model's hyper-parameters).
    """
    config.validate()
    device = resolve_device(config.device)
    seed_everything(config.seed)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    try:
        steps_per_epoch = len(train_batches)  # type: ignore[arg-type]
    except TypeError:
        steps_per_epoch = 1
    total = config.max_steps or config.epochs * max(steps_per_epoch, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(config, total))
    ema = EMA(model, config.ema_decay) if config.ema_decay > 0 else None
    result, start_epoch, bad_epochs, best_state = TrainResult(), 0, 0, None

    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if resume and ckpt is not None and (ckpt / "last" / "config.json").exists():
        states, saved = load_checkpoint(ckpt / "last", map_location=device)
        model.load_state_dict(states["model"])
        opt.load_state_dict(states["optimizer"])
        sched.load_state_dict(states["scheduler"])
        if ema is not None and "ema" in states:
            ema.shadow = {k: v.to(device) for k, v in states["ema"].items()}
        loop = saved["loop"]
        start_epoch, bad_epochs = loop["epoch"], loop["bad_epochs"]
        result.steps, result.best_val, result.history = loop["steps"], loop["best_val"], loop["history"]
        seed_everything(config.seed + start_epoch)
        if ckpt is not None and (ckpt / "best").exists():
            best_state = load_checkpoint(ckpt / "best", map_location=device)[0]["ema"]

    from tqdm.auto import tqdm
    t0 = time.perf_counter()
    bar = tqdm(range(start_epoch, config.epochs), disable=not config.progress, desc="training", unit="epoch")
    for epoch in bar:
        losses = []
        for batch in train_batches:
            with _autocast(config, device):
                loss = loss_fn(model, to_device(batch, device))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training loss became {float(loss)} at step {result.steps}; "
                                         "lower the learning rate or check the inputs for extreme values")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            sched.step()
            if ema is not None:
                ema.update(model)
            losses.append(float(loss.detach()))
            result.steps += 1
            if config.max_steps and result.steps >= config.max_steps:
                break
        row = {"epoch": epoch + 1, "train_loss": sum(losses) / max(len(losses), 1), "lr": sched.get_last_lr()[0]}
        if val_batches is not None:
            eval_model = model
            if ema is not None:
                eval_model = copy.deepcopy(model)
                eval_model.load_state_dict(ema.shadow)
            row["val_loss"] = _validate(eval_model, loss_fn, val_batches, device, config, config.seed + 1)
            if result.best_val is None or row["val_loss"] < result.best_val:
                result.best_val, bad_epochs = row["val_loss"], 0
                best_state = {k: v.clone() for k, v in (ema.shadow if ema else model.state_dict()).items()}
                if ckpt is not None:
                    save_checkpoint(ckpt / "best", {"ema": best_state}, {"epoch": epoch + 1, **(extra_config or {})})
            else:
                bad_epochs += 1
        result.history.append(row)
        bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k.endswith("loss")})
        if ckpt is not None:
            states = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
            if ema is not None:
                states["ema"] = ema.shadow
            loop = {"epoch": epoch + 1, "bad_epochs": bad_epochs, "steps": result.steps,
                    "best_val": result.best_val, "history": result.history, "train_config": asdict(config)}
            save_checkpoint(ckpt / "last", states, {"loop": loop, **(extra_config or {})})
        if config.patience and bad_epochs >= config.patience:
            result.stopped_early = True
            break
        if config.max_steps and result.steps >= config.max_steps:
            break
    result.seconds += time.perf_counter() - t0
    final = best_state if best_state is not None else (ema.shadow if ema is not None else None)
    if final is not None:
        model.load_state_dict(final)
    model.eval()
    return result
