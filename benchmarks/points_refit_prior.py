"""Rescore a LatentGenerator run with its latent prior refitted from scratch, without retraining
the encoder or the point denoiser (the prior learns from gradient-stopped latents, so it can be
swapped after the fact). Used for the issue-12 chair run, whose prior predicted the noise
(RESULTS.md, point clouds): the same protocol as ``points_modelnet.py``.

    python benchmarks/points_refit_prior.py --run-dir runs/points_latent --classes chair \
        --prior-prediction v --prior-steps 4000 --out runs/points_latent_chair_eval.json
"""
import argparse
import json
import time
from pathlib import Path

import torch

from multidiff.core.checkpoint import load_checkpoint, load_state_strict
from multidiff.core.io import write_json_atomic
from multidiff.core.provenance import Run
from multidiff.nets.vector_denoiser import VectorDenoiser
from multidiff.tasks import points

from points_modelnet import find_data


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-dir", required=True, help="the --run-dir of points_modelnet.py")
    ap.add_argument("--classes", nargs=1, default=["chair"])
    ap.add_argument("--data", default=None)
    ap.add_argument("--prior-prediction", default="v", choices=["eps", "x0", "v"])
    ap.add_argument("--prior-steps", type=int, default=4000)
    ap.add_argument("--sampler", default="ddpm")
    ap.add_argument("--sampler-steps", type=int, default=50)
    ap.add_argument("--emd-points", type=int, default=512)
    ap.add_argument("--protocol", default="luo_hu", choices=["luo_hu", "pointflow", "none"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--render", default=None, help="write a PNG of 8 samples here")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    run = Run()
    root, cls = find_data(args.data), args.classes[0]
    states, cfg = load_checkpoint(Path(args.run_dir) / cls / "generator_ckpt" / "last", kind="training")
    settings = {**points.LatentGenerator.hparams_from_config(cfg), "prior_prediction": args.prior_prediction,
                "prior_max_steps": args.prior_steps}
    gen = points.LatentGenerator(**settings, device="cpu", progress=False)
    load_state_strict(gen.model, states["ema"], "the run's EMA weights")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)  # a fresh prior: the run's was trained for another parametrisation
        gen.model.prior = VectorDenoiser(gen.latent_dim, gen.prior_width, gen.prior_layers)
    gen.clip, t0 = cfg.get("clip"), time.perf_counter()
    gen.fit_prior(root, [cls], "train")
    gen.fitted = True
    res = {"argv": vars(args), "loop": {k: cfg["loop"][k] for k in ("steps", "seconds", "epoch")},
           "prior_refit": {"prediction": args.prior_prediction, "steps": gen.prior_result.optimizer_steps,
                           "seconds": time.perf_counter() - t0,
                           "final_loss": gen.prior_result.history[-1]["train_loss"]}}
    for metrics, key in ((("cd",), "generation_cd"), (("cd", "emd"), "generation")):  # CD first: minutes, not tens
        t0 = time.perf_counter()
        res[key] = points.evaluate(gen, root, [cls], "test", args.sampler_steps, args.sampler,
                                   emd_points=args.emd_points, protocol=args.protocol, metrics=metrics)
        res[key]["eval_s"] = time.perf_counter() - t0
        write_json_atomic(args.out, {**res, **run.provenance()}, indent=1)
        print(key, json.dumps(res[key]), flush=True)
        if key == "generation_cd" and args.render:
            points.render(list(gen.sample(8, sampler_steps=args.sampler_steps, sampler=args.sampler, seed=2)),
                          args.render, cols=4)


if __name__ == "__main__":
    main()
