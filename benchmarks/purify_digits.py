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
        --attacks pgd,pgd-eot --cross-check "" --t-star 0.02,0.05,0.1,0.2 --eps 0.01,0.02,0.05,0.1 \\
        --n-examples 179 --threads 1 --out runs/purify_etth1_sweep   # when does purification help? ~15 min

Cost (CPU time, 1 thread, digits, 10 purification steps): ~7 ms per input and full gradient through
the purifier (one EOT sample of one PGD step), ~2 ms for BPDA, ~2.3 ms per purified prediction. The
defaults spend at most 920 gradients per input on the convergence and at most 320 per attack after it:
<= ~22 min of attacks for 100 inputs, plus ~2-3 min of training.

torchattacks is optional: pip install --no-deps torchattacks (make bench-deps); --cross-check "" skips it.
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

from multidiff.cli.common import add_option
from multidiff.core.checkpoint import write_json_atomic, write_text_atomic
from multidiff.core.samplers import names
from multidiff.datasets.labelled import load_dataset
from multidiff.metrics.robustness import mean_interval
from multidiff.metrics.tables import markdown_table
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
    p.add_argument("--t-star", default="0.1", help="comma-separated purification times t* (a sweep)")
    p.add_argument("--attacks", default="fgsm,pgd,bpda-eot,pgd-eot")
    p.add_argument("--cross-check", default="torchattacks-eotpgd,torchattacks-apgd",
                   help="reference attacks run at the same setting as pgd-eot (\"\" skips; needs torchattacks)")
    p.add_argument("--seeds", default="0")
    p.add_argument("--n-examples", type=int, default=100)
    add_option(p, "--sampler-steps", old=["--n-steps"], type=int, default=10,
               help="purification (sampler) steps (DiffPure: t* x 1000)")
    p.add_argument("--sampler", choices=("sde",) + names("continuous"), default="sde", help="reverse process (DiffPure: sde)")
    p.add_argument("--norm", choices=("linf", "l2"), default="linf")
    p.add_argument("--no-converge", action="store_true", help="fixed --attack-steps and --eot instead of the convergence")
    add_option(p, "--attack-steps", old=["--steps"], type=int, default=10, help="PGD iterations with --no-converge")
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
        den, clf, _ = purify.load_models(a.checkpoint, a.device)
        return den, clf, 0.0
    t0 = time.perf_counter()
    clf = purify.train_classifier(d.x_train, d.y_train, len(d.classes),
                                  replace(purify.DEFAULT_CLASSIFIER_TRAIN_CONFIG, epochs=a.classifier_epochs, device=a.device))
    den = purify.train_denoiser(d.x_train, replace(purify.DEFAULT_DENOISER_TRAIN_CONFIG, epochs=a.epochs, ema_decay=0.995,
                                                   device=a.device), data_range=d.data_range)
    purify.save_models(Path(a.out) / "models", den, clf, {"dataset": a.dataset, "classes": d.classes,
                                                          "description": d.description, "data_range": list(d.data_range)})
    return den, clf, time.perf_counter() - t0


def summarise(per_seed: list) -> dict:
    """Every row's mean over seeds (Student-t interval), the Wilson interval of the first seed and,
    with several draws, the first seed's mean over draws."""
    rows = {}
    for r0 in per_seed[0].rows():
        key = (r0["attack"], r0["target"])
        accs = [next(r["accuracy"] for r in rep.rows() if (r["attack"], r["target"]) == key) for rep in per_seed]
        m, lo, hi = mean_interval(accs)
        rows[f"{key[0]}|{key[1]}"] = {"mean": m, "ci_low": max(0.0, lo), "ci_high": min(1.0, hi), "per_seed": accs,
                                      "wilson_seed0": [r0["ci_low"], r0["ci_high"]],
                                      **({k: r0[k] for k in ("draws_mean", "draws_low", "draws_high", "n_draws")}
                                         if "draws_mean" in r0 else {})}
    return rows


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
    t_stars, eps_list, seeds = floats(a.t_star), floats(a.eps), [int(s) for s in a.seeds.split(",")]
    summary = {"dataset": d.description, "n_examples": n, "train_seconds": train_s, "settings": vars(a),
               "device": str(next(den.parameters()).device), "threads": torch.get_num_threads(),
               "host": platform.processor() or platform.machine(),
               "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "results": {}}
    figure_done = False
    for t_star in t_stars:
        purifier = purify.Purifier(den, t_star=t_star, sampler_steps=a.sampler_steps, sampler=a.sampler,
                                   data_range=d.data_range)
        for eps in eps_list:
            tag = f"eps{eps}" if len(t_stars) == 1 else f"tstar{t_star}_eps{eps}"
            per_seed = []
            for seed in seeds:
                t0 = time.perf_counter()
                rep = purify.evaluate(clf, purifier, data, attacks=attacks + cross, eps=eps, norm=a.norm,
                                      steps=a.attack_steps, eot=a.eot, n_votes=a.n_votes, batch_size=a.batch_size,
                                      seed=seed, device=a.device, converge=converge, n_draws=a.n_draws)
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
                print(f"t* {t_star} eps {eps} seed {seed}: {rep.timings['total']:.0f} s", flush=True)
            first = per_seed[0]
            summary["results"][tag] = {
                "t_star": t_star, "eps": eps, "rows": summarise(per_seed),
                "headline": [rep.headline() for rep in per_seed] if converge is not None else None,
                "cross_check": cross_check(first, cross),
                "attack_settings": first.settings["attacks"], "purifier": first.settings["purifier"],
                "seconds_per_purified_input": first.timings["purify_and_classify_per_input"],
                "seconds": {k: v for k, v in first.timings.items() if k.startswith("attack_") or k in ("convergence", "total")}}
    write_json_atomic(out / "summary.json", summary, indent=1)
    write_text_atomic(out / "summary.md", markdown(summary))
    print(markdown(summary))


def cross_check(rep, cross: list[str]) -> dict | None:
    """multidiff's pgd-eot against each reference attack at the same setting: robust accuracy
    (first draw, and the mean over draws) and whether ours is at least as strong within 2 points."""
    if not cross or "pgd-eot" not in rep.predictions:
        return None
    acc = lambda name: rep.accuracy(name, "defended")
    mean = lambda name: rep.over_draws(name)["draws_mean"] if rep.n_draws > 1 else acc(name)
    return {name: {"reference": acc(name), "multidiff": acc("pgd-eot"), "reference_mean_over_draws": mean(name),
                   "multidiff_mean_over_draws": mean("pgd-eot"),
                   "multidiff_at_least_as_strong_within_2_points": mean("pgd-eot") <= mean(name) + 0.02}
            for name in cross}


def markdown(s: dict) -> str:
    pct = lambda v: f"{100 * v:.1f} %"
    seeds = s["settings"]["seeds"]
    lines = []
    for tag, res in s["results"].items():
        lines += [f"### t* = {res['t_star']}, {s['settings']['norm']} eps = {res['eps']} ({s['n_examples']} test inputs)", ""]
        for h in res["headline"] or []:
            lines += [f"Headline: {h['attack']} at {h['attack_steps']} attack steps x EOT {h['eot']}: {pct(h['accuracy'])} "
                      f"[{pct(h['ci_low'])}, {pct(h['ci_high'])}]"
                      + (f", mean over {h['n_draws']} draws {pct(h['draws_mean'])} ({pct(h['draws_low'])}-"
                         f"{pct(h['draws_high'])})" if "draws_mean" in h else "")
                      + f"; converged: attack steps {h['attack_steps_converged']}, EOT {h['eot_converged']}", ""]
        several = len(seeds.split(",")) > 1
        table: dict = {}
        for key, r in res["rows"].items():
            attack, target = key.split("|")
            cell = (f"{pct(r['mean'])} ({100 * r['ci_low']:.1f}-{100 * r['ci_high']:.1f}) " if several else f"{pct(r['mean'])} ")
            cell += f"[{100 * r['wilson_seed0'][0]:.1f}-{100 * r['wilson_seed0'][1]:.1f}]"
            table.setdefault(attack, {})[target] = cell
            if "draws_mean" in r:
                table[attack]["draws"] = f"{pct(r['draws_mean'])} ({100 * r['draws_low']:.1f}-{100 * r['draws_high']:.1f})"
        draws = any("draws" in c for c in table.values())
        lines += [("Mean over seeds " + seeds + " (Student-t 95 % CI); " if several else "")
                  + "[Wilson 95 % CI of the first seed]" + ("; last column: first seed, mean over purification draws "
                                                            "(Student-t 95 % CI)" if draws else ""), ""]
        lines.append(markdown_table(["attack", "undefended", "defended"] + (["defended, mean over draws"] if draws else []),
                                    [[a, c.get("undefended"), c.get("defended")] + ([c.get("draws", "")] if draws else [])
                                     for a, c in table.items()]))
        if res["cross_check"]:
            lines += ["", "Cross-check (defended, same attack steps and EOT; mean over draws when several):", ""]
            lines.append(markdown_table(["reference attack", "reference", "multidiff pgd-eot", "multidiff at least as strong (2 points)"],
                                        [[k, pct(v["reference_mean_over_draws"]), pct(v["multidiff_mean_over_draws"]),
                                          "yes" if v["multidiff_at_least_as_strong_within_2_points"] else "NO"]
                                         for k, v in res["cross_check"].items()]))
        lines += ["", f"Purifier: {json.dumps(res['purifier'])}; {1000 * res['seconds_per_purified_input']:.1f} ms per "
                      f"purified + classified input; wall time (s, first seed): "
                      + ", ".join(f"{k.removeprefix('attack_')} {v:.0f}" for k, v in res["seconds"].items()), ""]
    if len(s["results"]) > 1:  # a sweep: one line per (t*, eps)
        lines += ["### Sweep (first seed; defended = first draw)", ""]
        rows = []
        for res in s["results"].values():
            r = res["rows"]
            attack = "pgd-eot" if "pgd-eot|defended" in r else next(k.split("|")[0] for k in r if k.split("|")[0] != "clean")
            get = lambda k: pct(r[k]["per_seed"][0]) if k in r else ""
            rows.append([res["t_star"], res["eps"], get("clean|undefended"), get("clean|defended"), get(f"{attack}|undefended"),
                         get(f"{attack}|defended"), get("worst-case|defended")])
        lines.append(markdown_table(["t*", "eps", "clean undefended", "clean defended", f"{attack} undefended",
                                     f"{attack} defended", "worst case defended"], rows))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
