"""Benchmark: DiffPure on sklearn's 8x8 digits (or ETTh1 season windows), undefended vs defended,
with a converged full-gradient PGD-EOT (Lee & Kim, ICCV 2023), a torchattacks cross-check and an
honest worst case.

Trains (or loads, with --checkpoint) the clean VP-SDE U-Net and the CNN classifier. For each t* and
eps: raises PGD-EOT's attack steps (10, 20, 40, 80), then its EOT samples (4, 8, 16, 32), until
the defended robust accuracy moves by at most --tol (1 point) (purify.Convergence); runs FGSM, PGD, BPDA-EOT and the
torchattacks EOTPGD / APGD-EOT cross-check at the converged setting; classifies every adversarial
input under --n-draws shared purification draws (every attack sees the same draw of input i, so the
worst case is a per-input minimum; the mean over draws has a Student-t interval). Writes per-seed
reports, the convergence curve (PNG) and a summary (JSON and Markdown), atomically.

    python benchmarks/purify_digits.py --threads 1 --out runs/purify_bench \\
        --figure docs/img/purify_convergence.png          # <= ~25 min CPU on 1 thread, training included
    python benchmarks/purify_digits.py --dataset etth1 --epochs 150 --classifier-epochs 100 --no-converge \\
        --attacks pgd,pgd-eot --cross-check "" --t-start 0.02,0.05,0.1,0.2 --eps 0.01,0.02,0.05,0.1 \\
        --n-examples 179 --threads 1 --out runs/purify_etth1_sweep   # when does purification help? ~15 min

Cost (CPU time, 1 thread, digits, 10 purification steps): ~7 ms per input and full gradient through
the purifier (one EOT sample of one PGD step), ~2 ms for BPDA, ~2.3 ms per purified prediction. The
defaults spend at most 920 gradients per input on the convergence and at most 320 per attack after it:
<= ~22 min of attacks for 100 inputs, plus ~2-3 min of training.

torchattacks is optional: pip install --no-deps torchattacks (make bench-deps); --cross-check "" skips it.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch

from multidiff.core.io import write_json_atomic, write_text_atomic
from multidiff.core.provenance import Run
from multidiff.core.samplers import names
from multidiff.datasets.labelled import load_dataset
from multidiff.tasks import purify


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/purify_bench")
    p.add_argument("--checkpoint", default=None, help="reuse models written by 'multidiff purify train' or this script")
    p.add_argument("--dataset", default="digits", choices=("digits", "etth1"))
    p.add_argument("--epochs", type=int, default=100, help="diffusion-model epochs when training")
    p.add_argument("--classifier-epochs", type=int, default=30, help="classifier epochs when training")
    p.add_argument("--eps", default="0.1", help="comma-separated Linf (or L2) radii in input units")
    p.add_argument("--t-start", default="0.1", help="comma-separated purification start times t* (a sweep)")
    p.add_argument("--attacks", default="fgsm,pgd,bpda-eot,pgd-eot")
    p.add_argument("--cross-check", default="torchattacks-eotpgd,torchattacks-apgd",
                   help="reference attacks run at the same setting as pgd-eot (\"\" skips; needs torchattacks)")
    p.add_argument("--seeds", default="0")
    p.add_argument("--n-examples", type=int, default=100)
    p.add_argument("--sampler-steps", type=int, default=10,
                   help="purification (sampler) steps (DiffPure: t* x 1000)")
    p.add_argument("--sampler", choices=names("continuous"), default="euler_sde",
                   help="reverse process (DiffPure: euler_sde)")
    p.add_argument("--norm", choices=("linf", "l2"), default="linf")
    p.add_argument("--no-converge", action="store_true", help="fixed --attack-steps and --eot instead of the convergence")
    p.add_argument("--attack-steps", type=int, default=10, help="PGD iterations with --no-converge")
    p.add_argument("--eot", type=int, default=4, help="EOT samples with --no-converge")
    p.add_argument("--converge-attack-steps", type=ints, default=(10, 20, 40, 80))
    p.add_argument("--converge-eot", type=ints, default=(4, 8, 16, 32))
    p.add_argument("--tol", type=float, default=0.01, help="convergence tolerance (0.01: 1 point)")
    p.add_argument("--max-gradients", type=int, default=1000,
                   help="cap on attack steps x EOT summed over the convergence runs, per input (0: none). With the "
                        "default schedules the runs then spend at most 920 and every attack after them at most 320")
    p.add_argument("--n-draws", type=int, default=20, help="shared purification draws every adversarial input is "
                                                           "classified under (cheap: no new attacks)")
    p.add_argument("--n-votes", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave torch's default)")
    p.add_argument("--device", default="auto")
    p.add_argument("--figure", default=None, help="also write the first convergence curve here (docs/img/...)")
    p.add_argument("--cpu-small", action="store_true",
                   help="the earlier small preset: fixed PGD 5 steps, EOT 2, seeds 0,1, one draw, no cross-check")
    if p.parse_known_args()[0].cpu_small:  # smaller defaults; options given explicitly still win
        p.set_defaults(no_converge=True, attack_steps=5, eot=2, seeds="0,1", n_draws=1, cross_check="", eps="0.1,0.2")
    return p.parse_args()


def models(a, d):
    if a.checkpoint:
        model = purify.PurificationModel.load(a.checkpoint, a.device)
        return model.denoiser, model.classifier, 0.0
    t0 = time.perf_counter()
    model = purify.PurificationModel(
        d.data_range, replace(purify.DEFAULT_DENOISER_TRAIN_CONFIG, epochs=a.epochs, ema_decay=0.995, device=a.device),
        replace(purify.DEFAULT_CLASSIFIER_TRAIN_CONFIG, epochs=a.classifier_epochs, device=a.device),
        meta={"dataset": a.dataset, "classes": d.classes, "description": d.description}).fit(d.x_train, d.y_train,
                                                                                              len(d.classes))
    model.save(Path(a.out) / "models")
    return model.denoiser, model.classifier, time.perf_counter() - t0


def main() -> None:
    a = parse()
    if a.threads:
        torch.set_num_threads(a.threads)
    out = Path(a.out)
    d = load_dataset(a.dataset)
    den, clf, train_s = models(a, d)
    n = min(a.n_examples, len(d.y_test))
    data = (d.x_test[:n], d.y_test[:n])
    attacks = [x for x in a.attacks.split(",") if x]
    cross = [x for x in a.cross_check.split(",") if x]
    converge = None if a.no_converge else purify.Convergence(
        attack_steps=a.converge_attack_steps, eot=a.converge_eot, tol=a.tol, max_gradients=a.max_gradients or None)
    t_starts, eps_list, seeds = floats(a.t_start), floats(a.eps), [int(s) for s in a.seeds.split(",")]
    summary = {"dataset": d.description, "n_examples": n, "train_seconds": train_s, "settings": vars(a),
               "results": {}}
    run = Run(device=next(den.parameters()).device)
    figure_done = False
    for t_start in t_starts:
        purifier = purify.Purifier(den, t_start=t_start, sampler_steps=a.sampler_steps, sampler=a.sampler,
                                   data_range=d.data_range)
        for eps in eps_list:
            tag = f"eps{eps}" if len(t_starts) == 1 else f"tstart{t_start}_eps{eps}"
            per_seed = []
            for seed in seeds:
                t0 = time.perf_counter()
                rep = purify.evaluate(clf, purifier, data, attacks=attacks + cross, eps=eps, norm=a.norm,
                                      attack_steps=a.attack_steps, eot=a.eot, n_votes=a.n_votes,
                                      batch_size=a.batch_size, seed=seed, device=a.device, converge=converge,
                                      n_draws=a.n_draws)
                rep.timings["total"] = time.perf_counter() - t0
                rep.save(out / tag, stem=f"seed{seed}")
                if seed == seeds[0]:
                    purify.save_grid(rep, out / tag / "grid.png", "pgd-eot" if "pgd-eot" in rep.predictions
                                     else attacks[-1], d.classes)
                    if converge is not None:
                        purify.save_convergence_plot(rep, out / tag / "convergence.png")
                        if a.figure and not figure_done:
                            purify.save_convergence_plot(rep, a.figure)
                            figure_done = True
                per_seed.append(rep)
                print(f"t* {t_start} eps {eps} seed {seed}: {rep.timings['total']:.0f} s", flush=True)
            summary["results"][tag] = {"t_start": t_start, "eps": eps, **purify.seed_summary(per_seed, cross)}
    summary.update(run.provenance())
    write_json_atomic(out / "summary.json", summary, indent=1)
    write_text_atomic(out / "summary.md", purify.summary_markdown(summary))
    print(purify.summary_markdown(summary))


if __name__ == "__main__":
    main()
