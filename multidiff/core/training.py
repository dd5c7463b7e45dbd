"""The training loop every diffusion model of multidiff goes through.

AdamW, a learning-rate schedule, EMA weights, gradient clipping, bf16 autocast on CUDA,
a tqdm progress bar, a step and a wall-time budget, early stopping on a validation loss,
atomic safetensors checkpoints and resume. The model owns its loss: ``loss_fn(model, batch) -> scalar``.

On one device the loop runs in the calling process, as it always has. Asked for more
(``accelerator``, ``devices``, ``num_nodes``, ``strategy`` of :class:`TrainConfig`), it runs on
Lightning Fabric: data-parallel (DDP) over processes, launched by Fabric itself, ``torchrun`` or
SLURM, each process training on its own shard of every epoch (see ``docs/scaling.md``).
(TimeGrad forecasting trains through GluonTS/Lightning instead: its ``trainer_kwargs`` take the same options.)

Every task reaches the loop the same way: a task-level default :class:`TrainConfig` (e.g.
``points.DEFAULT_TRAIN_CONFIG``), replaceable by a ``train_config=`` argument, merged with the
task's own keywords by :func:`resolve_train_config`; and mini-batches from :class:`Batches`.
"""
from __future__ import annotations

import contextlib
import copy
import math
import numbers
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Union

import numpy as np
import torch
from torch import nn

from .checkpoint import load_checkpoint, register_kind, save_checkpoint
from .device import resolve_device
from .validate import check_whole

__all__ = ["TrainConfig", "TrainResult", "EMA", "fit", "to_device", "batches", "Batches", "n_batches",
           "resolve_train_config", "global_rank", "EveryMinutes"]

ACCELERATORS = ("auto", "cpu", "cuda", "gpu", "mps")
# data-parallel strategies only: the EMA, clipping and checkpoints need the whole model on every
# process (no FSDP/DeepSpeed), and fit runs inside the caller's script, so processes are started
# by re-running the script (Fabric's "ddp" launcher, torchrun, srun), never by spawn or fork,
# which would have to pickle the loss function and the data
STRATEGIES = ("auto", "ddp", "ddp_find_unused_parameters_true")

register_kind("training", "multidiff.core.training.fit(..., checkpoint_dir=DIR/.., resume=True) (a training run's "
              "last/ or best/ state, not a saved model; the task's own save() writes the model)")


@dataclass
class TrainConfig:
    """Settings of :func:`fit`, one per line below; ``validate()`` checks them. Each task keeps its
    default as ``DEFAULT_TRAIN_CONFIG``."""
    epochs: int = 100               # passes over the training batches
    lr: float = 1e-3                # AdamW learning rate (CSDI: 1e-3)
    weight_decay: float = 1e-6      # AdamW weight decay (CSDI: 1e-6)
    lr_schedule: str = "multistep"  # "multistep" (x0.1 at 75 % and 90 %, as CSDI), "cosine" or "constant"
    warmup_steps: int = 0           # linear warm-up of the learning rate
    ema_decay: float = 0.999        # 0 disables EMA; EMA weights are the ones kept for sampling
    ema_min_windows: float = 0.0    # > 0 with max_steps: the EMA averages over at most max_steps / this many
                                    # steps (decay <= 1 - ema_min_windows / max_steps), since an EMA without
                                    # bias correction keeps a short run near its initial weights; 0 off
    grad_clip: float = 1.0          # max global grad norm; 0 disables clipping
    precision: str = "auto"         # "auto" (bf16 autocast on CUDA, fp32 elsewhere), "bf16" or "fp32"
    patience: int = 0               # early stopping after this many epochs without val improvement; 0 off
    max_steps: Optional[int] = None  # stop after this many optimizer steps in total
    max_time: Optional[float] = None  # stop after this many seconds of training (summed over resumes);
                                      # the lr schedule then follows the time budget as well
    seed: int = 0                   # seeds torch's CPU and device RNGs inside fit only: the caller's
                                    # torch, numpy and python RNG states are left as they were
    progress: bool = True           # one tqdm bar over optimizer steps (over seconds when max_time binds)
    device: str = "auto"            # "auto", "cpu", "cuda", "cuda:1", ...: the one device of a single-process run
    # many devices and nodes (Lightning Fabric); the defaults train in the calling process, as above
    accelerator: str = "auto"       # "auto" (the type of `device`), "cpu", "cuda" (or "gpu"), "mps"
    devices: Union[int, str] = 1    # processes per node, one device each; -1 or "auto": every device there
    num_nodes: int = 1              # machines; each process takes its own shard of an epoch, so the global
                                    # batch is batch_size x devices x num_nodes (lr is not rescaled)
    strategy: str = "auto"          # "auto" (DDP when there is more than one process), "ddp",
                                    # "ddp_find_unused_parameters_true" (a model whose loss leaves parameters out)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first setting out of range."""
        check_whole("epochs", self.epochs)
        check_whole("max_steps", self.max_steps, none="no limit")
        if self.max_time is not None and (isinstance(self.max_time, bool) or not isinstance(self.max_time, numbers.Real)
                                          or not self.max_time > 0):
            raise ValueError(f"max_time must be None or a number of seconds > 0, got {self.max_time!r}")
        if not (isinstance(self.lr, numbers.Real) and math.isfinite(self.lr) and self.lr > 0):  # nan too
            raise ValueError(f"lr must be > 0 (a finite number), got {self.lr!r}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if not self.ema_min_windows >= 0:
            raise ValueError(f"ema_min_windows must be >= 0, got {self.ema_min_windows}")
        if self.warmup_steps < 0 or self.patience < 0 or self.grad_clip < 0:
            raise ValueError("warmup_steps, patience and grad_clip must be >= 0, got "
                             f"{self.warmup_steps}, {self.patience} and {self.grad_clip}")
        if self.lr_schedule not in ("multistep", "cosine", "constant"):
            raise ValueError(f"lr_schedule must be multistep, cosine or constant, got {self.lr_schedule!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if self.accelerator not in ACCELERATORS:
            raise ValueError(f"accelerator must be one of {', '.join(ACCELERATORS)}, got {self.accelerator!r}")
        whole = isinstance(self.devices, numbers.Integral) and not isinstance(self.devices, bool)
        if not (self.devices == "auto" or (whole and (self.devices >= 1 or self.devices == -1))):
            raise ValueError(f"devices must be a whole number >= 1, or -1 or 'auto' (every device of the "
                             f"accelerator), got {self.devices!r}")
        check_whole("num_nodes", self.num_nodes, 1)
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}: the loop "
                             "trains data-parallel, in processes that each re-run the calling script")

    def distributed(self) -> bool:
        """Whether training runs on Lightning Fabric (any of ``accelerator``, ``devices``,
        ``num_nodes``, ``strategy`` set) rather than in the calling process on ``device``."""
        return (self.accelerator, self.devices, self.num_nodes, self.strategy) != ("auto", 1, 1, "auto")

    def effective_ema_decay(self) -> float:
        """``ema_decay``, capped by ``ema_min_windows`` for a run of ``max_steps`` steps (0: no EMA)."""
        if not self.ema_min_windows or self.max_steps is None:
            return self.ema_decay
        return min(self.ema_decay, max(0.0, 1 - self.ema_min_windows / self.max_steps))


def resolve_train_config(default: TrainConfig, train_config: Optional[TrainConfig] = None,
                         keywords: Optional[Mapping[str, Any]] = None, task_wide: Optional[Mapping[str, Any]] = None,
                         owner: str = "train_config") -> TrainConfig:
    """The one route from a task's arguments to the :class:`TrainConfig` it trains with.

    ``train_config`` (None: the task's ``default``) is the base; each entry of ``keywords`` (the
    task's own keyword arguments that mirror a field, e.g. ``epochs`` or ``lr``, whose defaults
    equal ``default``'s) replaces that field when it differs from ``default``'s value, so a keyword
    left at its default defers to ``train_config``; ``task_wide`` (``seed``, ``device``,
    ``progress``: they also govern initialisation and sampling) always replaces. Validated;
    ``owner`` names the argument in errors."""
    if train_config is None:
        train_config = default
    elif not isinstance(train_config, TrainConfig):
        raise TypeError(f"{owner} must be a multidiff.core.training.TrainConfig or None, got "
                        f"{type(train_config).__name__}; e.g. dataclasses.replace(DEFAULT_TRAIN_CONFIG, lr=...)")
    names = {f.name for f in fields(TrainConfig)}
    changes = {k: v for k, v in (keywords or {}).items() if v != getattr(default, k)}
    changes.update(task_wide or {})
    unknown = sorted(set(changes) - names)
    if unknown:
        raise TypeError(f"{unknown} are not TrainConfig fields")
    config = replace(train_config, **changes)
    config.validate()
    return config


def n_batches(n_items: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches :func:`batches` yields for ``n_items``."""
    full, rest = divmod(n_items, batch_size)
    return full + (1 if rest and (not drop_last or full == 0) else 0)


def _shard_size(n_items: int, rank: int, world_size: int, even: bool) -> int:
    """Items in process ``rank``'s share of ``n_items`` (see :func:`batches`)."""
    if world_size == 1 or not n_items:
        return n_items
    return -(-n_items // world_size) if even else len(range(rank, n_items, world_size))


def batches(n_items: int, batch_size: int, shuffle: bool = False, generator: Optional[torch.Generator] = None,
            drop_last: bool = False, rank: int = 0, world_size: int = 1, even: bool = True) -> Iterator[torch.Tensor]:
    """One pass of mini-batch indices over ``n_items`` items: consecutive chunks of ``batch_size``
    of ``torch.randperm(n_items, generator=generator)`` (one permutation per pass) with
    ``shuffle``, of ``0..n_items-1`` without. ``drop_last`` drops a last, smaller batch unless it
    is the only one. The one batch iterator of multidiff; see :class:`Batches` for a re-iterable.

    With ``world_size`` > 1 (data-parallel training) the pass is the share of process ``rank``:
    every ``world_size``-th item of the order from ``rank`` on (the order must be the same on
    every process, so ``generator`` must be seeded alike). ``even`` first pads the order by
    wrapping around to a multiple of ``world_size``, as torch's ``DistributedSampler`` does,
    so that every process takes as many steps (training); without it the shares are disjoint
    and may differ by one item (validation). Batch ``i`` of every process together holds the
    items of batch ``i`` of one process with a ``world_size`` times larger ``batch_size``."""
    check_whole("batch_size", batch_size, 1)
    order = torch.randperm(n_items, generator=generator) if shuffle else torch.arange(n_items)
    if world_size > 1 and n_items:
        if even:
            order = order[torch.arange(-(-n_items // world_size) * world_size) % n_items]
        order = order[rank::world_size]
    for i in range(n_batches(len(order), batch_size, drop_last)):
        yield order[i * batch_size:(i + 1) * batch_size]


class Batches:
    """Re-iterable mini-batches for :func:`fit`: each pass runs :func:`batches` and yields
    ``gather(indices)`` (e.g. ``lambda i: {k: v[i] for k, v in data.items()}``); ``len()`` is the
    number of batches per pass. A shuffled pass draws its permutation from ``generator``, so a
    seeded generator gives the same batches run after run. :meth:`shard` gives one process's
    share for data-parallel training (``fit`` calls it). A subclass may define ``gather`` as a
    method (and pass ``gather=None``) and ``n_items`` as a property."""

    def __init__(self, n_items: int, batch_size: int, gather: Optional[Callable[[torch.Tensor], Any]],
                 shuffle: bool = True, generator: Optional[torch.Generator] = None, drop_last: bool = False):
        self._n_items, self.batch_size = check_whole("n_items", n_items, 0), check_whole("batch_size", batch_size, 1)
        if gather is not None:
            self.gather = gather
        elif not callable(getattr(self, "gather", None)):
            raise TypeError("Batches needs gather(indices) -> batch")
        self.shuffle, self.generator, self.drop_last = shuffle, generator, drop_last
        self.rank, self.world_size, self.even = 0, 1, True

    @property
    def n_items(self) -> int:
        """Items in the whole data set (all shards together)."""
        return self._n_items

    def __len__(self) -> int:
        return n_batches(_shard_size(self.n_items, self.rank, self.world_size, self.even), self.batch_size,
                         self.drop_last)

    def __iter__(self) -> Iterator[Any]:
        for idx in batches(self.n_items, self.batch_size, self.shuffle, self.generator, self.drop_last, self.rank,
                           self.world_size, self.even):
            yield self.gather(idx)

    def shard(self, rank: int, world_size: int, generator: Optional[torch.Generator] = None,
              even: bool = True) -> "Batches":
        """A copy that yields the share of process ``rank`` of ``world_size`` (see :func:`batches`;
        ``even``: as many batches on every process), still ``batch_size`` items per batch on each
        process. Every process must draw the same permutations: from this object's generator
        (seeded alike everywhere), or, when it has none, from ``generator``."""
        check_whole("world_size", world_size, 1)
        check_whole("rank", rank, 0, world_size - 1)
        out = copy.copy(self)
        out.rank, out.world_size, out.even = rank, world_size, even
        if out.generator is None and out.shuffle:
            if generator is None:
                raise ValueError("a shuffled Batches without a generator cannot be sharded: every process would draw "
                                 "its own permutation; pass generator=torch.Generator().manual_seed(seed)")
            out.generator = generator
        return out


@dataclass
class TrainResult:
    """What :func:`fit` returns: the per-epoch history, the steps taken, the best validation loss and why it stopped."""
    history: list[dict[str, float]] = field(default_factory=list)  # one row per epoch
    optimizer_steps: int = 0        # optimizer steps taken, summed over resumed runs
    best_val: Optional[float] = None
    seconds: float = 0.0            # training wall time, summed over resumed runs
    stopped_early: bool = False
    stopped_by: str = "epochs"      # "epochs", "max_steps", "max_time" or "early_stopping"
    world_size: int = 1             # processes that trained together (losses are their means)


def global_rank() -> int:
    """This process's rank in a data-parallel run (0 when there is none). After :func:`fit` every
    process holds the trained model; write files and print on rank 0 only."""
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class EMA:
    """Exponential moving average of a model's floating-point parameters and buffers."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``: ``shadow += (1 - decay) (param - shadow)``; integer
        buffers are copied."""
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                self.shadow[k].lerp_(v.detach(), 1 - self.decay)
            else:
                self.shadow[k].copy_(v)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights, a ``state_dict`` that ``model.load_state_dict`` takes."""
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
def _forked_rng(device: torch.device) -> Iterator[None]:
    """Run the body with torch's CPU and ``device`` generators as they are; their states come back on exit."""
    mps_state = torch.mps.get_rng_state() if device.type == "mps" else None
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        try:
            yield
        finally:
            if mps_state is not None:
                torch.mps.set_rng_state(mps_state)


@contextlib.contextmanager
def _private_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Run the body with torch's CPU and ``device`` generators seeded with ``seed``; the caller's
    RNG states come back on exit."""
    with _forked_rng(device):
        _seed(device, seed)
        yield


def _autocast(cfg: TrainConfig, device: torch.device):
    use_bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)


def _rank_seed(seed: int, rank: int) -> int:
    """The seed of process ``rank``'s noise draws: ``seed`` itself on rank 0 (so a one-process run
    is the run of old), a mix of both elsewhere (seed + rank would replay rank 0's next epochs,
    and torch's CPU generator keeps only 32 bits of a seed)."""
    if rank == 0:
        return seed
    return int(np.random.SeedSequence(seed, spawn_key=(rank,)).generate_state(1)[0])


class _SequenceShard:
    """Process ``rank``'s share of a list of batches: every ``world_size``-th one from ``rank`` on;
    ``even`` pads the list by wrapping around first, so that every process gets as many."""

    def __init__(self, items: Sequence, rank: int, world_size: int, even: bool):
        n = len(items)
        padded = -(-n // world_size) * world_size if even else n
        self.items = [items[i % n] for i in range(padded)][rank::world_size]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)


class _Carry:
    """A batch in a box: Fabric's precision plugins cast floating tensors in a module's inputs
    (bf16-mixed: to bf16, data and positions too), whereas the loop's precision means autocast only."""

    def __init__(self, batch: Any):
        self.batch = batch


class _LossOf(nn.Module):
    """``loss_fn(model, batch)`` as a module's forward, so that DDP, which synchronises gradients
    only through its wrapper's ``__call__``, wraps the whole loss whatever methods of the model it calls."""

    def __init__(self, model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor]):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, carry: _Carry) -> torch.Tensor:
        return self.loss_fn(self.model, carry.batch)


class _Local:
    """One process on one device (``config.device``): the loop as it always ran, with no Lightning."""

    rank, world_size = 0, 1

    def __init__(self, config: TrainConfig):
        self.config, self.device = config, resolve_device(config.device)

    def shard(self, batches: Iterable, seed: int, name: str, even: bool) -> Iterable:
        return batches

    def setup(self, model: nn.Module, loss_fn) -> Callable[[Any], torch.Tensor]:
        return lambda batch: loss_fn(model, batch)

    def autocast(self):
        return _autocast(self.config, self.device)

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def sum(self, values: list[float]) -> list[float]:
        return values

    def broadcast(self, obj: Any) -> Any:
        return obj

    def barrier(self) -> None:
        pass


def _fabric_settings(cfg: TrainConfig) -> dict:
    """Fabric's constructor arguments for ``cfg``: ``accelerator="auto"`` takes the type of
    ``device``; a ``device`` with an index (``"cuda:1"``) is the one device; ``precision``
    ``"auto"`` / ``"bf16"`` / ``"fp32"`` become ``"bf16-mixed"`` on CUDA else ``"32-true"`` /
    ``"bf16-mixed"`` / ``"32-true"``."""
    accelerator = "cuda" if cfg.accelerator == "gpu" else cfg.accelerator
    device = resolve_device(cfg.device) if cfg.device != "auto" or accelerator == "auto" else None
    if accelerator == "auto":
        accelerator = device.type
    elif cfg.device != "auto" and device.type != accelerator:
        raise ValueError(f"device={cfg.device!r} and accelerator={cfg.accelerator!r} disagree; leave device='auto' "
                         "and choose the hardware with accelerator (and devices)")
    devices: Any = cfg.devices
    if device is not None and cfg.device != "auto" and device.index is not None:
        if devices != 1:
            raise ValueError(f"device={cfg.device!r} is one device, but devices={devices!r}; leave device='auto' "
                             "(and pick the GPUs with CUDA_VISIBLE_DEVICES)")
        devices = [device.index]
    precision = {"fp32": "32-true", "bf16": "bf16-mixed"}.get(cfg.precision,
                                                             "bf16-mixed" if accelerator == "cuda" else "32-true")
    return {"accelerator": accelerator, "devices": devices, "num_nodes": cfg.num_nodes, "strategy": cfg.strategy,
            "precision": precision}


class _Fabric:
    """The loop's view of Lightning Fabric: launch (Fabric's launcher re-runs the calling script
    for processes 1..n-1 unless torchrun or SLURM started them), one DDP-wrapped loss, gradients
    averaged in backward, and the few collectives the loop needs to take the same decisions on
    every process."""

    def __init__(self, config: TrainConfig):
        try:
            from lightning.fabric import Fabric
        except ImportError as err:
            raise ImportError("training with accelerator, devices, num_nodes or strategy set runs on Lightning Fabric: "
                              "pip install lightning (or multidiff[ts])") from err
        self.fabric = Fabric(**_fabric_settings(config))
        try:
            self.fabric.launch()
        except TypeError as err:  # a fork/spawn launcher, chosen by "auto" in a notebook or interactive shell
            raise RuntimeError("training on several processes needs a script that each process re-runs (python "
                               "train.py, torchrun, srun), not a notebook or an interactive shell") from err
        self.rank, self.world_size, self.device = self.fabric.global_rank, self.fabric.world_size, self.fabric.device

    def shard(self, batches: Iterable, seed: int, name: str, even: bool) -> Iterable:
        """This process's share of ``batches``. ``even`` (training): the same number of batches on
        every process, since one that stopped early would leave the others waiting in the gradient
        all-reduce; validation needs no padding (a DataLoader's DistributedSampler pads anyway)."""
        if self.world_size == 1:
            return batches
        if callable(getattr(batches, "shard", None)):
            return batches.shard(self.rank, self.world_size, torch.Generator().manual_seed(seed), even=even)
        if isinstance(batches, torch.utils.data.DataLoader):  # a DistributedSampler, its epoch set on every pass
            return self.fabric.setup_dataloaders(batches, move_to_device=False)
        if isinstance(batches, Sequence):
            return _SequenceShard(batches, self.rank, self.world_size, even)
        raise TypeError(f"{name} must be a Batches (or have its shard(rank, world_size, generator, even) method), "
                        f"a torch DataLoader or a list of batches to be split over {self.world_size} processes, "
                        f"got {type(batches).__name__}")

    def setup(self, model: nn.Module, loss_fn) -> Callable[[Any], torch.Tensor]:
        module = self.fabric.setup_module(_LossOf(model, loss_fn))
        return lambda batch: module(_Carry(batch))

    def autocast(self):
        return self.fabric.autocast()

    def backward(self, loss: torch.Tensor) -> None:
        self.fabric.backward(loss)

    def sum(self, values: list[float]) -> list[float]:
        if self.world_size == 1:
            return values
        dtype = torch.float32 if self.device.type == "mps" else torch.float64
        return self.fabric.all_reduce(torch.tensor(values, dtype=dtype, device=self.device), reduce_op="sum").tolist()

    def broadcast(self, obj: Any) -> Any:
        return self.fabric.broadcast(obj, 0) if self.world_size > 1 else obj

    def barrier(self) -> None:
        if self.world_size > 1:
            self.fabric.barrier()


@torch.no_grad()
def _validate(model, loss_fn, batches, engine, seed) -> float:
    """Mean validation loss over the batches of every process."""
    model.eval()
    total, n = 0.0, 0
    with _private_rng(engine.device, seed):  # the same noise every epoch, so val losses are comparable
        for batch in batches:
            with engine.autocast():
                total += float(loss_fn(model, to_device(batch, engine.device)))
            n += 1
    model.train()
    total, n = engine.sum([total, n])
    return total / max(n, 1)


class _Progress:
    """One tqdm bar whose ETA is what will run: it counts seconds against ``max_time`` when a
    time budget is set, and switches to counting optimizer steps once the step rate (after 20
    steps, or at the last step of a shorter run) shows that the step limit will end training first."""

    def __init__(self, cfg: TrainConfig, total_steps: Optional[int], steps: int, elapsed: float, show: bool):
        from tqdm.auto import tqdm
        self.cfg, self.total_steps, self.by_time = cfg, total_steps, cfg.max_time is not None
        self.start_steps, self.start_time, self.checked = steps, elapsed, False
        if self.by_time:
            self.bar = tqdm(total=cfg.max_time, initial=elapsed, disable=not show,
                            desc="training (time budget)", unit="s",
                            bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]")
        else:
            self.bar = tqdm(total=total_steps, initial=steps, disable=not show, desc="training", unit="step")

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
        extra_config: Optional[dict] = None,
        on_epoch_end: Optional[Callable[[nn.Module, dict], None]] = None) -> TrainResult:
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
    already spent, the early-stopping state and the random generators included: torch's, the
    device's and that of ``train_batches.generator`` when it has one, e.g. a shuffled
    :class:`Batches`). A run killed and resumed therefore ends bit-identical to one left alone; a
    run that stopped inside an epoch (``max_steps``, ``max_time``) continues with the next epoch.
    ``extra_config`` is stored in the checkpoint's JSON (e.g. the model's hyper-parameters).

    Several processes (``config.devices`` x ``config.num_nodes`` > 1, data-parallel on Lightning
    Fabric, Li et al. 2020, "PyTorch Distributed"): every process runs the caller's script up to
    here and trains a replica. Each takes its own shard of every epoch (a :class:`Batches` or
    anything with its ``shard(rank, world_size, generator, even)``, a DataLoader, or a list of batches),
    ``batch_size`` items per batch on each; gradients are averaged, so the replicas stay equal.
    The data order and initial weights agree across processes (rank 0's weights are broadcast),
    the noise draws do not (process ``r`` seeds with a mix of ``config.seed`` and ``r``).
    Losses in the history and the progress bar are means over processes; rank 0 alone shows the
    bar and writes checkpoints, which every process reads on resume (``checkpoint_dir`` must be
    on a file system they share). The step and time budgets and early stopping decide alike on
    every process (the time is rank 0's).

    ``on_epoch_end(model, info)`` is called after each epoch's checkpoint with a copy of the model
    holding the weights sampling would use (EMA), in eval mode, and ``info`` = the epoch's history
    row with ``steps`` and ``seconds`` (training time so far): e.g. to write a learning curve. It
    runs with forked random generators and its time is not counted as training time, so it changes
    neither the run nor its time budget.
    """
    config.validate()
    engine = _Fabric(config) if config.distributed() else _Local(config)
    train_batches = engine.shard(train_batches, config.seed, "train_batches", even=True)
    if val_batches is not None:
        val_batches = engine.shard(val_batches, config.seed + 1, "val_batches", even=False)
    steps_per_epoch = _steps_per_epoch(train_batches)
    seed = _rank_seed(config.seed, engine.rank)
    with _private_rng(engine.device, seed):  # the run reseeds with seed + start epoch on resume
        run = _Run(model, loss_fn, config, engine, seed, checkpoint_dir, extra_config, steps_per_epoch, on_epoch_end)
        if resume and run.ckpt is not None and engine.broadcast((run.ckpt / "last" / "config.json").exists()):
            run.resume()
        return run.train(train_batches, val_batches)


class EveryMinutes:
    """A learning-curve callback for ``fit(..., on_epoch_end=EveryMinutes(every, action))``: at the
    first epoch end after each ``every`` minutes of training, ``action(model, info)`` runs once with
    the sampling (EMA) weights, e.g. to save a snapshot or to score the model; ``info`` is fit's
    (epoch, losses, ``steps``, ``seconds``) plus ``minutes`` (of training) and ``mark`` (the last
    multiple of ``every`` passed). Training minutes are fit's clock: summed over resumes, without
    the callback's own time, so evaluating does not shorten the run or change what it computes.

    ``done``: minutes whose marks were handled already (a resumed run that keeps its earlier
    points); their marks do not fire again. An epoch longer than ``every`` fires once, at its end."""

    def __init__(self, every: float, action: Callable[[nn.Module, dict], Any], done: float = 0.0):
        if isinstance(every, bool) or not isinstance(every, numbers.Real) or not every > 0:
            raise ValueError(f"every must be a number of minutes > 0, got {every!r}")
        self.every, self.action = float(every), action
        self.due = (math.floor(done / self.every) + 1) * self.every  # the next mark

    def __call__(self, model: nn.Module, info: dict) -> None:
        minutes = info["seconds"] / 60
        if minutes < self.due:
            return
        mark = math.floor(minutes / self.every) * self.every
        self.due = mark + self.every
        self.action(model, {**info, "minutes": minutes, "mark": mark})


def _steps_per_epoch(train_batches: Iterable) -> Optional[int]:
    """``len(train_batches)``, None for an iterable without one (counted during the first epoch);
    an empty one is an error."""
    try:
        steps_per_epoch: Optional[int] = len(train_batches)  # type: ignore[arg-type]
    except TypeError:
        return None
    if steps_per_epoch == 0:
        raise ValueError("0 training steps would run: train_batches is empty (0 batches per epoch); pass more "
                         "data, a smaller batch size, or drop_last=False")
    return steps_per_epoch


class _Run:
    """One call of :func:`fit`: the model, its optimizer and EMA, the budget clock and the loop
    state that a checkpoint carries, with one method per job of the loop."""

    def __init__(self, model: nn.Module, loss_fn, config: TrainConfig, engine, seed: int, checkpoint_dir,
                 extra_config: Optional[dict], steps_per_epoch: Optional[int],
                 on_epoch_end: Optional[Callable[[nn.Module, dict], None]] = None):
        self.model, self.loss_fn, self.config, self.engine, self.seed = model, loss_fn, config, engine, seed
        self.device = engine.device
        self.on_epoch_end = on_epoch_end
        self.saved_rng: Optional[dict] = None  # generator states read from a checkpoint, put back in train()
        model.to(self.device).train()
        self.opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.forward = engine.setup(model, loss_fn)  # under DDP this broadcasts rank 0's weights
        decay = config.effective_ema_decay()
        self.ema = EMA(model, decay) if decay > 0 else None
        self.ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.writes = self.ckpt is not None and engine.rank == 0
        self.extra_config = extra_config or {}
        self.result, self.start_epoch, self.bad_epochs = TrainResult(world_size=engine.world_size), 0, 0
        self.best_state: Optional[dict] = None
        self.steps_per_epoch = steps_per_epoch
        self.stop: Optional[str] = None

    # -- the loop state in and out of checkpoints
    def resume(self) -> None:
        """Continue from ``last/``: weights, optimizer, EMA, steps, time spent, early-stopping state."""
        last = self.ckpt / "last"
        if not (last / "config.json").exists():  # rank 0 found it: another node does not see rank 0's files
            raise FileNotFoundError(f"process {self.engine.rank} finds no checkpoint in {last}, which process 0 wrote; "
                                    "put checkpoint_dir on a file system that every node shares")
        states, saved = load_checkpoint(last, map_location=self.device, kind="training")
        self.model.load_state_dict(states["model"])
        self.opt.load_state_dict(states["optimizer"])
        if self.ema is not None and "ema" in states:
            self.ema.shadow = {k: v.to(self.device) for k, v in states["ema"].items()}
        self.saved_rng = states.get("rng")  # absent in checkpoints of older versions: reseeded instead
        loop, result = saved["loop"], self.result
        self.start_epoch, self.bad_epochs = loop["epoch"], loop["bad_epochs"]
        result.optimizer_steps, result.best_val, result.history = loop["steps"], loop["best_val"], loop["history"]
        result.seconds = loop.get("seconds", 0.0)  # absent in checkpoints of older versions
        self.steps_per_epoch = self.steps_per_epoch or loop.get("steps_per_epoch")
        if (self.ckpt / "best").exists():
            self.best_state = load_checkpoint(self.ckpt / "best", map_location=self.device, kind="training")[0]["ema"]

    def _save_best(self, epoch: int) -> None:
        save_checkpoint(self.ckpt / "best", {"ema": self.best_state}, {"epoch": epoch + 1, **self.extra_config},
                        kind="training")

    def _save_last(self, epoch: int, now: float) -> None:
        states = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "rng": self._rng_states()}
        if self.ema is not None:
            states["ema"] = self.ema.shadow
        r = self.result
        loop = {"epoch": epoch + 1, "bad_epochs": self.bad_epochs, "steps": r.optimizer_steps, "best_val": r.best_val,
                "history": r.history, "seconds": now, "steps_per_epoch": self.steps_per_epoch,
                "stopped_by": self.stop, "train_config": asdict(self.config), "world_size": r.world_size}
        save_checkpoint(self.ckpt / "last", states, {"loop": loop, **self.extra_config}, kind="training")

    # -- the random generators a resumed run continues with
    def _batch_generator(self) -> Optional[torch.Generator]:
        gen = getattr(self.train_batches, "generator", None)
        return gen if isinstance(gen, torch.Generator) else None

    def _rng_states(self) -> dict[str, torch.Tensor]:
        states = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            states["device"] = torch.cuda.get_rng_state(self.device)
        elif self.device.type == "mps":
            states["device"] = torch.mps.get_rng_state()
        if self._batch_generator() is not None:
            states["batches"] = self._batch_generator().get_state()
        return states

    def _restore_rng(self) -> None:
        saved = self.saved_rng
        torch.set_rng_state(saved["torch"].cpu())
        if "device" in saved and self.device.type == "cuda":
            torch.cuda.set_rng_state(saved["device"].cpu(), self.device)
        elif "device" in saved and self.device.type == "mps":
            torch.mps.set_rng_state(saved["device"].cpu())
        if "batches" in saved and self._batch_generator() is not None:
            self._batch_generator().set_state(saved["batches"].cpu())

    # -- the budget
    def _total_steps(self) -> Optional[int]:
        if self.steps_per_epoch is None:
            return self.config.max_steps
        return min(self.config.max_steps or math.inf, self.config.epochs * self.steps_per_epoch)

    def _elapsed(self) -> float:
        """Seconds trained, over resumes too; with several processes rank 0's, as of the last
        :meth:`_sync`, so that the time budget and the lr schedule agree everywhere."""
        if self.engine.world_size > 1:
            return self.clock
        return self.before + time.perf_counter() - self.t0

    def _sync(self, values: tuple[float, ...] = ()) -> list[float]:
        """Sums of ``values`` over processes, and rank 0's clock into :meth:`_elapsed` (one collective)."""
        if self.engine.world_size == 1:
            return list(values)
        mine = self.before + time.perf_counter() - self.t0 if self.engine.rank == 0 else 0.0
        *sums, self.clock = self.engine.sum([*values, mine])
        return sums

    def _progress(self, step: int) -> float:
        p = step / self.total_steps if self.total_steps else 0.0
        return max(p, self._elapsed() / self.config.max_time) if self.config.max_time else p

    def _spent_before_start(self) -> Optional[str]:
        """A resumed run may have used up its budget already (the same tests as at the saved epoch's end)."""
        if self.config.max_steps and self.result.optimizer_steps >= self.config.max_steps:
            return "max_steps"
        if self.config.max_time and self.before >= self.config.max_time:
            return "max_time"
        return None

    def _spent_after_step(self) -> Optional[str]:
        if self.config.max_steps and self.result.optimizer_steps >= self.config.max_steps:
            return "max_steps"
        if self.config.max_time and self._elapsed() >= self.config.max_time:
            return "max_time"
        return None

    # -- training
    def train(self, train_batches: Iterable, val_batches: Optional[Iterable]) -> TrainResult:
        self.train_batches = train_batches
        _seed(self.device, self.seed + self.start_epoch)
        if self.saved_rng is not None and self.engine.world_size == 1:
            # rank 0 alone writes checkpoints, so its generator states would be wrong for other processes:
            # a data-parallel resume reseeds each process instead
            self._restore_rng()
        self.total_steps = self._total_steps()
        self.t0, self.before = time.perf_counter(), self.result.seconds
        self.clock = self.before
        show = self.config.progress and self.engine.rank == 0
        self.bar = _Progress(self.config, self.total_steps, self.result.optimizer_steps, self.before, show)
        try:
            for epoch in range(self.start_epoch, self.config.epochs):
                if epoch == self.start_epoch:
                    self.stop = self._spent_before_start()
                    if self.stop:
                        break
                if self._epoch(epoch, train_batches, val_batches):
                    break
        finally:
            self.bar.close()
        return self._finish()

    def _epoch(self, epoch: int, train_batches: Iterable, val_batches: Optional[Iterable]) -> bool:
        """Train one pass, validate, checkpoint; True when training stops after it."""
        losses, lr = self._train_pass(epoch, train_batches)
        self._learn_epoch_length(len(losses))
        row = {"epoch": epoch + 1, "train_loss": sum(losses) / len(losses), "lr": lr}
        if val_batches is not None:
            row["val_loss"] = self._validate(epoch, val_batches)
        self.result.history.append(row)
        self._sync()  # the clock after validation, the same on every process
        now = self._elapsed()  # the stop is decided on the time stored in the checkpoint, so a resume takes it too
        self._stop_after_epoch(now)
        if self.writes:
            self._save_last(epoch, now)
        if self.on_epoch_end is not None and self.engine.rank == 0:
            self._call_back(row, now)
        return self.stop is not None

    def _call_back(self, row: dict, now: float) -> None:
        """``on_epoch_end`` on a copy of the sampling weights, with forked generators, off the clock."""
        start = time.perf_counter()
        model = copy.deepcopy(self.model)
        if self.ema is not None:
            model.load_state_dict(self.ema.shadow)
        model.eval()
        with _forked_rng(self.device):
            self.on_epoch_end(model, {**row, "steps": self.result.optimizer_steps, "seconds": now})
        self.t0 += time.perf_counter() - start

    def _train_pass(self, epoch: int, train_batches: Iterable) -> tuple[list[float], float]:
        """One pass over ``train_batches`` (or until the step or time budget ends); the losses and last lr."""
        losses, lr = [], self.config.lr
        for batch in train_batches:
            done = self.result.optimizer_steps
            lr = self.config.lr * _lr_factor(self.config, done, self._progress(done))
            losses.append(self._step(batch, lr))
            self.result.optimizer_steps += 1
            self.bar.update(self.result.optimizer_steps, self._elapsed(), losses[-1])
            self.stop = self._spent_after_step()
            if self.stop:
                break
        if not losses:
            raise ValueError(f"0 training steps would run: train_batches yielded no batch in epoch {epoch + 1}; "
                             "pass a re-iterable with data (a list or a DataLoader), not a one-shot generator")
        return losses, lr

    def _step(self, batch: Any, lr: float) -> float:
        """One optimizer step at learning rate ``lr``: loss, backward (gradients averaged over
        processes), clipping, AdamW, EMA; the loss, averaged over processes."""
        for group in self.opt.param_groups:
            group["lr"] = lr
        with self.engine.autocast():
            loss = self.forward(to_device(batch, self.device))
        value = float(loss.detach())
        if self.engine.world_size > 1:  # one NaN anywhere stops every process, none is left waiting
            value = self._sync((value,))[0] / self.engine.world_size
        if not math.isfinite(value):
            raise FloatingPointError(f"training loss became {value} at step {self.result.optimizer_steps}; "
                                     "lower the learning rate or check the inputs for extreme values")
        self.opt.zero_grad(set_to_none=True)
        self.engine.backward(loss)
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.opt.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return value

    def _learn_epoch_length(self, steps: int) -> None:
        """An iterable without len(): its first complete pass gives the steps per epoch."""
        if self.steps_per_epoch is None and not self.stop:
            self.steps_per_epoch = steps
            self.total_steps = self._total_steps()
            self.bar.set_total_steps(self.total_steps)

    def _validate(self, epoch: int, val_batches: Iterable) -> float:
        """Validation loss of the EMA weights (the mean over processes); a new best is kept (and saved as ``best/``)."""
        eval_model = self.model
        if self.ema is not None:
            eval_model = copy.deepcopy(self.model)
            eval_model.load_state_dict(self.ema.shadow)
        val = _validate(eval_model, self.loss_fn, val_batches, self.engine, self.seed + 1)
        if self.result.best_val is None or val < self.result.best_val:
            self.result.best_val, self.bad_epochs = val, 0
            source = self.ema.shadow if self.ema else self.model.state_dict()
            self.best_state = {k: v.clone() for k, v in source.items()}
            if self.writes:
                self._save_best(epoch)
        else:
            self.bad_epochs += 1
        return val

    def _stop_after_epoch(self, now: float) -> None:
        if not self.stop and self.config.max_time and now >= self.config.max_time:
            self.stop = "max_time"
        if self.config.patience and self.bad_epochs >= self.config.patience:
            self.stop, self.result.stopped_early = self.stop or "early_stopping", True

    def _finish(self) -> TrainResult:
        """Leave the best (or EMA) weights in the model, in eval mode; fill in how the run ended.
        Every process waits here for the others, so rank 0's last checkpoint is complete on return."""
        self.result.stopped_by = self.stop or "epochs"
        self.result.seconds = self._elapsed()
        final = self.best_state if self.best_state is not None else (self.ema.shadow if self.ema is not None else None)
        if final is not None:
            self.model.load_state_dict(final)
        self.model.eval()
        self.engine.barrier()
        return self.result
