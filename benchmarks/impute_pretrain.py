"""Pretrain the column-agnostic imputation network on the corpus (issue 31) and snapshot it.

    python benchmarks/impute_pretrain.py --minutes 120 --out runs/impute_pretrain
    python benchmarks/impute_pretrain.py --minutes 60 --init multidiff/tasks/imputation/pretrained  # continue

Corpus: :mod:`multidiff.tasks.imputation.corpus` (KernelSynth series with shared factors, plus
ETTh1/ETTm1 before 2018-04-03, exchange rates but their last 2000 rows, Jena weather, US ILI and
PhysioNet 2012 set-a; no PM2.5). Training goes through the core loop (AdamW, cosine lr over the
time budget, EMA, checkpoints every pass in OUT/train so a killed run resumes with --resume).
Every ``--snapshot-minutes`` of training the EMA network is written to OUT/min<M>/ (the learning
curve's points); the last one also to OUT/final/. Copy OUT/final into
multidiff/tasks/imputation/pretrained/ to ship it (with its README).
"""
import argparse
import json
from pathlib import Path

import torch

from multidiff.core.provenance import Run, load_average
from multidiff.core.training import EveryMinutes, TrainConfig, fit
from multidiff.tasks.imputation.column_model import ColumnAgnosticModel, load_network, save_network
from multidiff.tasks.imputation.corpus import HELD_OUT, CorpusBatches, load_real_series


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=120.0, help="training wall minutes")
    p.add_argument("--out", default="runs/impute_pretrain")
    p.add_argument("--init", default=None, help="a saved network to continue from (e.g. the shipped one)")
    p.add_argument("--resume", action="store_true", help="continue OUT/train after an interruption")
    p.add_argument("--snapshot-minutes", type=float, default=30.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batches-per-pass", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help="the shared data folder (default: MULTIDIFF_DATA or ../shared/data)")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    run = Run().provenance()
    about = {**{k: run[k] for k in ("command", "commit", "date", "device", "load_before")},
             "corpus_held_out": list(HELD_OUT), "minutes": a.minutes, "init": a.init}
    if a.init:
        model, before = load_network(a.init, widen=True)
        about["minutes_before"] = float(before.get("minutes_total", before.get("minutes", 0.0)))
        model.train()
    else:
        model = ColumnAgnosticModel()
        about["minutes_before"] = 0.0
    real = load_real_series(a.data)
    batches = CorpusBatches(real, batches_per_pass=a.batches_per_pass, generator=torch.Generator().manual_seed(a.seed))
    config = TrainConfig(epochs=10 ** 6, lr=a.lr, weight_decay=1e-4, lr_schedule="cosine", warmup_steps=300,
                         ema_decay=0.999, grad_clip=1.0, max_time=a.minutes * 60, seed=a.seed, progress=False)
    log = open(out / "log.jsonl", "a")

    def snapshot(m, info):  # the first pass that ends past a mark; the last mark is OUT/final
        if info["mark"] < a.minutes - 1e-9:
            save_network(m, out / f"min{int(round(info['mark']))}",
                         {**about, "minutes": info["minutes"], "steps": info["steps"],
                          "minutes_total": about["minutes_before"] + info["minutes"]})
    snapshots = EveryMinutes(a.snapshot_minutes, snapshot)

    def on_epoch_end(m, info):
        row = {"steps": info["steps"], "minutes": round(info["seconds"] / 60, 2), "loss": info.get("train_loss"),
               "load": load_average()[0]}
        log.write(json.dumps(row) + "\n")
        log.flush()
        snapshots(m, info)

    if not a.init and not a.resume:
        save_network(model, out / "min0", {**about, "minutes": 0, "steps": 0, "minutes_total": 0.0})
    result = fit(model, lambda m, b: m.loss(b), batches, config, checkpoint_dir=out / "train", resume=a.resume,
                 on_epoch_end=on_epoch_end)
    final = {**about, "minutes": result.seconds / 60, "steps": result.optimizer_steps,
             "minutes_total": about["minutes_before"] + result.seconds / 60, "stopped_by": result.stopped_by}
    save_network(model.eval(), out / "final", final)
    print(json.dumps(final, indent=1))


if __name__ == "__main__":
    main()
