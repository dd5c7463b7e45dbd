"""Data-parallel training runs for tests/core/test_distributed.py, one script that every process
runs: ``python tests/core/ddp_run.py OUT_DIR``. Fabric's "ddp" launcher starts process 1 by
running this same command line again (as torchrun or srun would start each process), so the
script is run as a subprocess, never inside pytest. Every process writes OUT_DIR/rank<r>.json:
the losses, the items its shard saw, the checkpoints it wrote and the final weights.

The settings (sizes, seeds) are those of ``REFERENCE``, which the test reruns in one process
with the same global batch."""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from torch import nn

import multidiff.core.training as training
from multidiff.core import schedules as S
from multidiff.core.denoiser import add_noise
from multidiff.core.training import Batches, TrainConfig, fit

N_ITEMS, GLOBAL_BATCH = 96, 32
DDP = dict(accelerator="cpu", devices=2, strategy="ddp")
AB = S.alpha_bars(S.linear_betas(100, 1e-4, 0.05)).float()


class TinyDenoiser(nn.Module):  # the model of test_training.py
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 32), nn.SiLU(), nn.Linear(32, 2))

    def forward(self, x, t):
        return self.net(torch.cat([x, t.float().unsqueeze(-1) / 100], -1))


def fixed_noise_loss(model, batch):
    """Diffusion loss with t and eps carried by the batch: no RNG, so one process with batch 2B
    and two with batch B each train the same run, up to the order of float sums."""
    x0, t, eps = batch["x0"], batch["t"], batch["eps"]
    return ((model(add_noise(x0, eps, AB[t]), t) - eps) ** 2).mean()


def items(seed: int = 0, n: int = N_ITEMS) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"x0": torch.randn(n, 2, generator=g) * 0.3 + 1.0, "t": torch.randint(0, 100, (n,), generator=g),
            "eps": torch.randn(n, 2, generator=g), "i": torch.arange(n)}


def train_batches(batch_size: int, shuffle: bool, seen: list | None = None) -> Batches:
    data = items()

    def gather(idx):
        if seen is not None:
            seen.append(idx.tolist())
        return {k: v[idx] for k, v in data.items()}
    return Batches(N_ITEMS, batch_size, gather, shuffle=shuffle, generator=torch.Generator().manual_seed(2))


def val_batches() -> list:
    data = items(seed=5, n=24)
    return [{k: v[i:i + 8] for k, v in data.items()} for i in range(0, 24, 8)]


def config(**kw) -> TrainConfig:
    return TrainConfig(**{**dict(epochs=3, lr=3e-3, ema_decay=0.9, warmup_steps=2, progress=False, seed=3), **kw})


def model() -> TinyDenoiser:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return TinyDenoiser()


def gappy_frame(rows: int = 96) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    values = np.sin(np.arange(rows)[:, None] / 4 + np.arange(3)) + rng.normal(0, 0.1, (rows, 3))
    values[rng.random(values.shape) < 0.15] = np.nan
    return pd.DataFrame(values, columns=["a", "b", "c"])


IMPUTER = dict(window=8, channels=8, layers=1, heads=1, epochs=4, num_train_steps=10, n_samples=2, self_check=0.0,
               progress=False, device="auto", seed=1)


def weights(m) -> dict:
    return {k: v.tolist() for k, v in m.state_dict().items()}


def main(out: Path) -> None:
    saves: list[str] = []
    real_save = training.save_checkpoint

    def counting_save(directory, *args, **kwargs):  # which process writes which checkpoint
        saves.append(Path(directory).name)
        return real_save(directory, *args, **kwargs)
    training.save_checkpoint = counting_save
    world = DDP["devices"]
    report: dict = {}

    # 1. shuffled shards, validation, EMA, clipping, warm-up: the run of one process with 2x the batch
    seen, rng_states = [], []

    def loss(model, batch):
        if not rng_states:  # the noise generator as the loop seeded it for this process
            rng_states.append(hashlib.sha1(torch.get_rng_state().numpy().tobytes()).hexdigest())
        return fixed_noise_loss(model, batch)
    m = model()
    res = fit(m, loss, train_batches(GLOBAL_BATCH // world, True, seen), config(progress=True, **DDP),
              val_batches=val_batches())
    rank = training.global_rank()
    report["shuffled"] = {"history": res.history, "world_size": res.world_size, "weights": weights(m),
                          "first_epoch_items": sorted(i for b in seen[:N_ITEMS // GLOBAL_BATCH] for i in b),
                          "rng_state": rng_states[0]}

    # 2. a checkpointed run of 2 epochs, resumed to 4, and the same 4 epochs in one go (a constant
    # lr: the multistep schedule of a 2-epoch run is another schedule)
    ck = out / "checkpoints"
    constant = dict(lr_schedule="constant", **DDP)
    fit(model(), fixed_noise_loss, train_batches(GLOBAL_BATCH // world, False), config(epochs=2, **constant),
        checkpoint_dir=ck)
    saves_first = list(saves)
    resumed = model()  # fresh weights: only the checkpoint can make it continue
    res_r = fit(resumed, fixed_noise_loss, train_batches(GLOBAL_BATCH // world, False), config(epochs=4, **constant),
                checkpoint_dir=ck, resume=True)
    whole = model()
    res_w = fit(whole, fixed_noise_loss, train_batches(GLOBAL_BATCH // world, False), config(epochs=4, **constant))
    report["resume"] = {"saves_first_run": saves_first, "history_resumed": res_r.history, "steps": res_r.optimizer_steps,
                        "history_whole": res_w.history, "weights_resumed": weights(resumed),
                        "weights_whole": weights(whole), "checkpoint_files": sorted(p.name for p in ck.iterdir())}

    # 3. a tiny Imputer: its train_config carries the options to the loop, its own keywords still win
    from multidiff.tasks.imputation import Imputer
    from multidiff.tasks.imputation.api import DEFAULT_TRAIN_CONFIG

    imp = Imputer(**IMPUTER, batch_size=8 // world, train_config=replace(DEFAULT_TRAIN_CONFIG, **DDP),
                  checkpoint_dir=str(out / "imputer")).fit(gappy_frame())
    filled = imp.transform(gappy_frame())
    report["imputer"] = {"history": imp.train_result_.history, "world_size": imp.train_result_.world_size,
                         "nan_left": int(np.isnan(np.asarray(filled, dtype=float)).sum()),
                         "checkpoint_files": sorted(p.name for p in (out / "imputer").iterdir())}
    report["saves"] = saves
    (out / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
