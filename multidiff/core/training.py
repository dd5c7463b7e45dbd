"""The training loop every diffusion model of multidiff goes through.

AdamW, a learning-rate schedule, EMA weights, gradient clipping, bf16 autocast on CUDA,
a tqdm progress bar, a step and a wall-time budget, early stopping on a validation loss,
atomic safetensors checkpoints and resume. The model owns its loss: ``loss_fn(model, batch) -> scalar``.
(The forecasting task trains through GluonTS/Lightning instead, which brings multi-GPU.)
"""
from __future__ import annotations

import contextlib
import copy
import math
import numbers
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

import torch
from torch import nn

from .checkpoint import load_checkpoint, save_checkpoint
from .device import resolve_device
from .validate import check_whole

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
    max_time: Optional[float] = None  # stop after this many seconds of training (summed over resumes);
                                      # the lr schedule then follows the time budget as well
    seed: int = 0                   # seeds torch's CPU and device RNGs inside fit only: the caller's
                                    # torch, numpy and python RNG states are left as they were
    progress: bool = True           # one tqdm bar over optimizer steps (over seconds when max_time binds)
    device: str = "auto"            # "auto", "cpu", "cuda", "cuda:1", ...

    def validate(self) -> None:
        check_whole("epochs", self.epochs)
        check_whole("max_steps", self.max_steps, none="no limit")
        if self.max_time is not None and (isinstance(self.max_time, bool) or not isinstance(self.max_time, numbers.Real)
                                          or not self.max_time > 0):
            raise ValueError(f"max_time must be None or a number of seconds > 0, got {self.max_time!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if self.warmup_steps < 0 or self.patience < 0 or self.grad_clip < 0:
            raise ValueError("warmup_steps, patience and grad_clip must be >= 0, got "
                             f"{self.warmup_steps}, {self.patience} and {self.grad_clip}")
        if self.lr_schedule not in ("multistep", "cosine", "constant"):
            raise ValueError(f"lr_schedule must be multistep, cosine or constant, got {self.lr_schedule!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)  # one row per epoch
    steps: int = 0
    best_val: Optional[float] = None
    seconds: float = 0.0            # training wall time, summed over resumed runs
    stopped_early: bool = False
    stopped_by: str = "epochs"      # "epochs", "max_steps", "max_time" or "early_stopping"


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


def _lr_factor(cfg: TrainConfig, step: int, progress: float) -> float:
    """Multiplier of ``cfg.lr`` at optimizer step ``step`` once ``progress`` (in [0, 1]) of the run is done."""
    warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
    p = min(progress, 1.0)
    if cfg.lr_schedule == "multistep":
        return warm * (0.01 if p >= 0.9 else 0.1 if p >= 0.75 else 1.0)
    if cfg.lr_schedule == "cosine":
        return warm * 0.5 * (1 + math.cos(math.pi * p))
    return warm


def _seed(device: torch.device, seed: int) -> None:
    """Seed torch's CPU generator and the one of ``device`` (torch.manual_seed would reseed every GPU)."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)
    elif device.type == "mps":
        torch.mps.manual_seed(seed)


@contextlib.contextmanager
def _private_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Run the body with torch's CPU and ``device`` generators seeded with ``seed``; the caller's
    RNG states come back on exit."""
    mps_state = torch.mps.get_rng_state() if device.type == "mps" else None
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        _seed(device, seed)
        try:
            yield
        finally:
            if mps_state is not None:
                torch.mps.set_rng_state(mps_state)


def _autocast(cfg: TrainConfig, device: torch.device):
    use_bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)


@torch.no_grad()
def _validate(model, loss_fn, batches, device, cfg, seed) -> float:
    model.eval()
    total, n = 0.0, 0
    with _private_rng(device, seed):  # the same noise every epoch, so val losses are comparable
        for batch in batches:
            with _autocast(cfg, device):
                total += float(loss_fn(model, to_device(batch, device)))
            n += 1
    model.train()
    return total / max(n, 1)


class _Progress:
    """One tqdm bar whose ETA is what will run: it counts seconds against ``max_time`` when a
    time budget is set, and switches to counting optimizer steps once the step rate (after 20
    steps, or at the last step of a shorter run) shows that the step limit will end training first."""

    def __init__(self, cfg: TrainConfig, total_steps: Optional[int], steps: int, elapsed: float):
        from tqdm.auto import tqdm
        self.cfg, self.total_steps, self.by_time = cfg, total_steps, cfg.max_time is not None
        self.start_steps, self.start_time, self.checked = steps, elapsed, False
        if self.by_time:
            self.bar = tqdm(total=cfg.max_time, initial=elapsed, disable=not cfg.progress,
                            desc="training (time budget)", unit="s",
                            bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]")
        else:
            self.bar = tqdm(total=total_steps, initial=steps, disable=not cfg.progress, desc="training", unit="step")

    def set_total_steps(self, total_steps: int) -> None:
        self.total_steps = total_steps
        if not self.by_time and not self.bar.disable:
            self.bar.total = total_steps
            self.bar.refresh()

    def _steps_bind(self, steps: int, elapsed: float) -> bool:
        if self.total_steps is None:
            return False
        per_step = (elapsed - self.start_time) / max(steps - self.start_steps, 1)
        return elapsed + (self.total_steps - steps) * per_step < self.cfg.max_time

    def update(self, steps: int, elapsed: float, loss: float) -> None:
        bar = self.bar
        if bar.disable:
            return
        probe = 20 if self.total_steps is None else min(20, self.total_steps - self.start_steps)
        if self.by_time and not self.checked and steps - self.start_steps >= probe:
            self.checked = True
            if self._steps_bind(steps, elapsed):
                self.by_time = False
                bar.reset(total=self.total_steps)
                bar.n = bar.last_print_n = bar.initial = steps
                bar.unit, bar.desc, bar.bar_format = "step", "training", None
        bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
        bar.update((min(elapsed, self.cfg.max_time) if self.by_time else steps) - bar.n)

    def close(self) -> None:
        self.bar.close()


def fit(model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor], train_batches: Iterable,
        config: TrainConfig, val_batches: Optional[Iterable] = None,
        checkpoint_dir: Optional[str | Path] = None, resume: bool = False,
        extra_config: Optional[dict] = None) -> TrainResult:
    """Train ``model`` in place by minimising ``loss_fn`` over ``train_batches`` (re-iterable,
    e.g. a list or a DataLoader). At the end the model holds its EMA weights (the best ones by
    validation loss when ``val_batches`` is given).

    Training runs ``config.epochs`` passes and stops earlier at ``config.max_steps`` optimizer
    steps, after ``config.max_time`` seconds (checked after every step), or by early stopping;
    ``TrainResult.stopped_by`` says which. The learning-rate schedule follows the budget that will
    actually run: its progress is ``max(step / total_steps, elapsed / max_time)``, so with a time
    budget the run is no longer bit-reproducible.

    Randomness: torch's CPU generator (and that of the training device) is seeded with
    ``config.seed`` inside a fork, so the caller's torch, numpy and python RNG states are the same
    after ``fit`` as before, and ``loss_fn`` should draw its noise from torch.

    ``checkpoint_dir`` gets an atomic checkpoint ``last/`` after every epoch (and ``best/`` on a new
    best validation loss); with ``resume=True`` training continues from ``last/`` (steps, time
    already spent and the early-stopping state included).
    ``extra_config`` is stored in the checkpoint's JSON (e.g. the model's hyper-parameters).
    """
    config.validate()
    device = resolve_device(config.device)
    try:
        steps_per_epoch: Optional[int] = len(train_batches)  # type: ignore[arg-type]
    except TypeError:
        steps_per_epoch = None  # an iterable without len(): counted during the first epoch
    if steps_per_epoch == 0:
        raise ValueError("0 training steps would run: train_batches is empty (0 batches per epoch); pass more "
                         "data, a smaller batch size, or drop_last=False")
    with _private_rng(device, config.seed):  # _train reseeds with seed + start epoch on resume
        return _train(model, loss_fn, train_batches, config, val_batches, checkpoint_dir, resume, extra_config,
                      device, steps_per_epoch)


def _train(model, loss_fn, train_batches, config: TrainConfig, val_batches, checkpoint_dir, resume, extra_config,
           device: torch.device, steps_per_epoch: Optional[int]) -> TrainResult:
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    ema = EMA(model, config.ema_decay) if config.ema_decay > 0 else None
    result, start_epoch, bad_epochs, best_state = TrainResult(), 0, 0, None

    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if resume and ckpt is not None and (ckpt / "last" / "config.json").exists():
        states, saved = load_checkpoint(ckpt / "last", map_location=device)
        model.load_state_dict(states["model"])
        opt.load_state_dict(states["optimizer"])
        if ema is not None and "ema" in states:
            ema.shadow = {k: v.to(device) for k, v in states["ema"].items()}
        loop = saved["loop"]
        start_epoch, bad_epochs = loop["epoch"], loop["bad_epochs"]
        result.steps, result.best_val, result.history = loop["steps"], loop["best_val"], loop["history"]
        result.seconds = loop.get("seconds", 0.0)  # absent in checkpoints of older versions
        steps_per_epoch = steps_per_epoch or loop.get("steps_per_epoch")
        if (ckpt / "best").exists():
            best_state = load_checkpoint(ckpt / "best", map_location=device)[0]["ema"]
    _seed(device, config.seed + start_epoch)

    def total_steps_of(per_epoch: Optional[int]) -> Optional[int]:
        if per_epoch is None:
            return config.max_steps
        return min(config.max_steps or math.inf, config.epochs * per_epoch)

    total_steps = total_steps_of(steps_per_epoch)
    t0, before = time.perf_counter(), result.seconds

    def elapsed() -> float:
        return before + time.perf_counter() - t0

    def progress(step: int) -> float:
        p = step / total_steps if total_steps else 0.0
        return max(p, elapsed() / config.max_time) if config.max_time else p

    bar = _Progress(config, total_steps, result.steps, before)
    stop: Optional[str] = None
    try:
        for epoch in range(start_epoch, config.epochs):
            if epoch == start_epoch:  # a resumed run may have used up its budget already
                if config.max_steps and result.steps >= config.max_steps:
                    stop = "max_steps"
                elif config.max_time and before >= config.max_time:  # the same test as at the saved epoch's end
                    stop = "max_time"
                if stop:
                    break
            losses, lr = [], config.lr
            for batch in train_batches:
                lr = config.lr * _lr_factor(config, result.steps, progress(result.steps))
                for group in opt.param_groups:
                    group["lr"] = lr
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
                if ema is not None:
                    ema.update(model)
                losses.append(float(loss.detach()))
                result.steps += 1
                bar.update(result.steps, elapsed(), losses[-1])
                if config.max_steps and result.steps >= config.max_steps:
                    stop = "max_steps"
                elif config.max_time and elapsed() >= config.max_time:
                    stop = "max_time"
                if stop:
                    break
            if not losses:
                raise ValueError(f"0 training steps would run: train_batches yielded no batch in epoch {epoch + 1}; "
                                 "pass a re-iterable with data (a list or a DataLoader), not a one-shot generator")
            if steps_per_epoch is None and not stop:
                steps_per_epoch = len(losses)
                total_steps = total_steps_of(steps_per_epoch)
                bar.set_total_steps(total_steps)
            row = {"epoch": epoch + 1, "train_loss": sum(losses) / len(losses), "lr": lr}
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
            # decided on the time stored in the checkpoint, so that a resume takes the same decision
            now = elapsed()
            if not stop and config.max_time and now >= config.max_time:
                stop = "max_time"
            if config.patience and bad_epochs >= config.patience:
                stop, result.stopped_early = stop or "early_stopping", True
            if ckpt is not None:
                states = {"model": model.state_dict(), "optimizer": opt.state_dict()}
                if ema is not None:
                    states["ema"] = ema.shadow
                loop = {"epoch": epoch + 1, "bad_epochs": bad_epochs, "steps": result.steps,
                        "best_val": result.best_val, "history": result.history, "seconds": now,
                        "steps_per_epoch": steps_per_epoch, "stopped_by": stop, "train_config": asdict(config)}
                save_checkpoint(ckpt / "last", states, {"loop": loop, **(extra_config or {})})
            if stop:
                break
    finally:
        bar.close()
    result.stopped_by = stop or "epochs"
    result.seconds = elapsed()
    final = best_state if best_state is not None else (ema.shadow if ema is not None else None)
    if final is not None:
        model.load_state_dict(final)
    model.eval()
    return result
