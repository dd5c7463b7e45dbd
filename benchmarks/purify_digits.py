"""Benchmark: DiffPure on sklearn's 8x8 digits, undefended vs defended, under FGSM, PGD, BPDA-EOT
and full-gradient PGD-EOT (Lee & Kim, ICCV 2023), Linf eps 0.1 and 0.2 on [0, 1] pixels.

Trains (or loads, with --checkpoint) the clean VP-SDE U-Net and the CNN classifier, evaluates every
attack for each seed (attack + purification randomness), and writes per-seed reports plus a
summary (mean and Student-t 95 % interval over seeds, Wilson interval within each seed) as JSON and
Markdown, atomically. Target (issue 6): undefended ~0 % under PGD; defended >= 50 % under
full-gradient PGD-EOT at eps 0.1 with clean >= 90 %.

    python benchmarks/purify_digits.py --out runs/purify_bench            # GPU-sized defaults
    python benchmarks/purify_digits.py --cpu-small --out runs/purify_bench  # minutes on a CPU
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import torch

from multidiff.core.checkpoint import write_json_atomic, write_text_atomic
from multidiff.core.samplers import names
from multidiff.datasets.labelled import load_dataset
from multidiff.metrics.robustness import mean_interval
from multidiff.metrics.tables import markdown_table
from multidiff.cli.common import add_option
from multidiff.tasks import purify


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/purify_bench")
    p.add_argument("--checkpoint", default=None, help="reuse models written by 'multidiff purify train'")
    p.add_argument("--dataset", default="digits", choices=("digits", "etth1"))
    p.add_argument("--epochs", type=int, default=400, help="diffusion-model epochs when training")
    p.add_argument("--eps", default="0.1,0.2")
    p.add_argument("--attacks", default="fgsm,pgd,bpda-eot,pgd-eot")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--n-examples", type=int, default=450)
    p.add_argument("--t-star", type=float, default=0.1)
    add_option(p, "--sampler-steps", old=["--n-steps"], type=int, default=100,
               help="purification (sampler) steps (DiffPure: t* x 1000)")
    p.add_argument("--sampler", choices=("sde",) + names("continuous"), default="sde", help="reverse process (DiffPure: sde)")
    p.add_argument("--norm", choices=("linf", "l2"), default="linf")
    add_option(p, "--attack-steps", old=["--steps"], type=int, default=50, help="PGD iterations")
    p.add_argument("--eot", type=int, default=10)
    p.add_argument("--n-votes", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=150)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave torch's default)")
    p.add_argument("--device", default="auto")
    p.add_argument("--cpu-small", action="store_true",
                   help="CPU budget: 100 epochs, 100 inputs, 10 purification steps, PGD 5 steps, EOT 2, seeds 0,1")
    if p.parse_known_args()[0].cpu_small:  # smaller defaults; options given explicitly still win
        p.set_defaults(epochs=100, n_examples=100, sampler_steps=10, attack_steps=5, eot=2, seeds="0,1")
    return p.parse_args()


def models(a, d):
    if a.checkpoint:
        den, clf, _ = purify.load_models(a.checkpoint, a.device)
        return den, clf, 0.0
    t0 = time.perf_counter()
    clf = purify.train_classifier(d.x_train, d.y_train, len(d.classes),
                                  replace(purify.DEFAULT_CLASSIFIER_TRAIN_CONFIG, epochs=30, device=a.device))
    den = purify.train_denoiser(d.x_train, replace(purify.DEFAULT_DENOISER_TRAIN_CONFIG, epochs=a.epochs, ema_decay=0.995,
                                                   device=a.device), data_range=d.data_range)
    purify.save_models(Path(a.out) / "models", den, clf, {"dataset": a.dataset, "classes": d.classes,
                                                          "description": d.description, "data_range": list(d.data_range)})
    return den, clf, time.perf_counter() - t0


def main() -> None:
    a = parse()
    if a.threads:
        torch.set_num_threads(a.threads)
    out = Path(a.out)
    d = load_dataset(a.dataset)
    den, clf, train_s = models(a, d)
    n = min(a.n_examples, len(d.y_test))
    data = (d.x_test[:n], d.y_test[:n])
    attacks = a.attacks.split(",")
    purifier = purify.Purifier(den, t_star=a.t_star, sampler_steps=a.sampler_steps, sampler=a.sampler, data_range=d.data_range)
    summary = {"dataset": d.description, "n_examples": n, "train_seconds": train_s, "settings": vars(a),
               "device": str(next(den.parameters()).device), "host": platform.processor() or platform.machine(),
               "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "results": {}}
    for eps in map(float, a.eps.split(",")):
        per_seed = []
        for seed in map(int, a.seeds.split(",")):
            t0 = time.perf_counter()
            rep = purify.evaluate(clf, purifier, data, attacks=attacks, eps=eps, norm=a.norm, steps=a.attack_steps, eot=a.eot,
                                  n_votes=a.n_votes, batch_size=a.batch_size, seed=seed, device=a.device)
            rep.timings["total"] = time.perf_counter() - t0
            rep.save(out / f"eps{eps}", stem=f"seed{seed}")
            if seed == int(a.seeds.split(",")[0]):
                purify.save_grid(rep, out / f"eps{eps}" / "grid.png", attacks[-1], d.classes)
            per_seed.append(rep)
            print(f"eps {eps} seed {seed}: {rep.timings['total']:.0f} s", flush=True)
        rows = {}
        for r0 in per_seed[0].rows():
            key = (r0["attack"], r0["target"])
            accs = [next(r["accuracy"] for r in rep.rows() if (r["attack"], r["target"]) == key) for rep in per_seed]
            m, lo, hi = mean_interval(accs)
            lo, hi = max(0.0, lo), min(1.0, hi)  # an accuracy interval, clipped to [0, 1]
            rows[f"{key[0]}|{key[1]}"] = {"mean": m, "ci_low": lo, "ci_high": hi, "per_seed": accs,
                                          "wilson_seed0": [r0["ci_low"], r0["ci_high"]]}
        summary["results"][str(eps)] = {"rows": rows, "attack_settings": per_seed[0].settings["attacks"],
                                        "purifier": per_seed[0].settings["purifier"],
                                        "seconds_per_purified_input": per_seed[0].timings["purify_and_classify_per_input"],
                                        "attack_seconds": {k: v for k, v in per_seed[0].timings.items() if k.startswith("attack_")}}
    write_json_atomic(out / "summary.json", summary, indent=1)
    write_text_atomic(out / "summary.md", markdown(summary))
    print(markdown(summary))


def markdown(s: dict) -> str:
    lines = []
    for eps, res in s["results"].items():
        lines += [f"{s['settings']['norm']} eps = {eps} ({s['n_examples']} test inputs; mean over seeds {s['settings']['seeds']} "
                  f"with Student-t 95 % CI; Wilson 95 % CI of seed {s['settings']['seeds'].split(',')[0]} in brackets)", ""]
        table: dict = {}
        for key, r in res["rows"].items():
            attack, target = key.split("|")
            table.setdefault(attack, {})[target] = (f"{100 * r['mean']:.1f} % ({100 * r['ci_low']:.1f}-{100 * r['ci_high']:.1f}) "
                                                    f"[{100 * r['wilson_seed0'][0]:.1f}-{100 * r['wilson_seed0'][1]:.1f}]")
        lines.append(markdown_table(["attack", "undefended", "defended"],
                                    [[a, c.get("undefended"), c.get("defended")] for a, c in table.items()]))
        lines += ["", f"Purifier: {json.dumps(res['purifier'])}; {1000 * res['seconds_per_purified_input']:.1f} ms per "
                      f"purified + classified input; attack wall time (s, seed 0): "
                      + ", ".join(f"{k[7:]} {v:.0f}" for k, v in res["attack_seconds"].items()), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
