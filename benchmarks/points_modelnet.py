"""ModelNet10 point-cloud generation and completion benchmark (issues 5 and 12).

Generation, on Luo & Hu's published protocol (CVPR 2021, ``test_gen.py --normalize shape_bbox``:
every generated and every reference cloud in its own bounding-box frame; ``--protocol pointflow``
for PointFlow's single dataset-wide frame): MMD-CD, COV-CD, 1-NNA-CD and 1-NNA-EMD (exact EMD on a
seeded ``--emd-points`` subset) of generated clouds vs the test split of each class; 1-NNA 50 % is
ideal (PVD chair 56.26 %, Luo & Hu airplane 64.83 %, both on ShapeNet). Two reference rows
calibrate the table: real training shapes vs the test shapes (what a perfect generator scores)
and Gaussian noise (~100 %). Completion: CD / EMD / F-score of PVD-style completion of
hidden-point-removal scans of the test split vs a nearest-neighbour retrieval baseline.

The copy of ModelNet10 in shared/data holds 1024 points per shape: a 2048-point model trains on
each point twice and is scored on 1024-point subsets of its samples (the report says so).

Training is resumable and can run in the background: with ``--run-dir`` each model checkpoints
after every epoch and the same command continues where it stopped. ``--curve-every-minutes N``
scores the generator every N minutes of training (its EMA weights, a latent model's prior refitted;
1-NNA-CD, MMD-CD, COV-CD) with a ``core.training.EveryMinutes`` callback, off the training clock,
and appends a line to ``RUN_DIR/CLASS/curve.jsonl`` (a resumed run keeps its earlier points).

    # the issue-12 run (one class; ~3 h of training, then the evaluation)
    nohup nice python benchmarks/points_modelnet.py --classes chair --model latent --train-minutes 180 \\
        --curve-every-minutes 30 --run-dir runs/points_chair --tasks generate --out chair.json &
    # a CPU smoke run (minutes)
    python benchmarks/points_modelnet.py --classes chair --num-points 256 --gen-steps 20 --comp-steps 20 \\
        --channels 32 --n-eval 16 --emd-points 64 --sampler-steps 5 --throughput-steps
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from multidiff.core.device import resolve_device  # noqa: E402
from multidiff.core.io import write_json_atomic  # noqa: E402
from multidiff.core.provenance import Run  # noqa: E402
from multidiff.core.training import EveryMinutes  # noqa: E402
from multidiff.datasets.fetch import data_roots  # noqa: E402
from multidiff.tasks import points  # noqa: E402
from multidiff.tasks.points.evaluate import reference_rows  # noqa: E402

MODELS = ("dgcnn", "latent")  # dgcnn: points.Generator (EdgeConv denoiser); latent: Luo & Hu's shape-latent model
                              # (points.LatentGenerator)


def find_data(path):
    if path:
        return Path(path)
    for root in data_roots():
        if (root / "modelnet10_pcd").is_dir():
            return root / "modelnet10_pcd"
    raise FileNotFoundError("modelnet10_pcd not found; pass --data ROOT (ROOT/CLASS/{train,test}/*.pcd)")


def generator_class(name: str):
    """The generation model ``--model`` names."""
    if name == "dgcnn":
        return points.Generator
    if name == "latent":
        return points.LatentGenerator
    raise ValueError(f"--model must be one of {', '.join(MODELS)}, got {name!r}")


def throughput(gen, samplers, step_counts, n=8):
    rows = []
    for s in samplers:
        for k in step_counts:
            t0 = time.perf_counter()
            gen.sample(n, sampler_steps=k, sampler=s, seed=1)
            rows.append({"sampler": s, "sampler_steps": k, "samples_per_s": n / (time.perf_counter() - t0)})
    return rows


def parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--classes", nargs="+", default=["chair"])
    ap.add_argument("--model", default="dgcnn", choices=MODELS, help="the generation model")
    ap.add_argument("--completion-model", default="dgcnn", choices=MODELS,
                    help="the completion model (dgcnn: points.Completer; latent: points.LatentCompleter)")
    ap.add_argument("--num-points", type=int, default=2048)
    ap.add_argument("--channels", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=None, help="learning rate (default: the model's, 1e-3 dgcnn and "
                    "Completer, 2e-3 latent)")
    ap.add_argument("--ema", type=float, default=None, help="EMA decay (default: the model's, 0.999 dgcnn and "
                    "Completer, 0.995 latent; lower it for short runs)")
    ap.add_argument("--gen-steps", type=int, default=2000, help="optimizer steps for the Generator")
    ap.add_argument("--comp-steps", type=int, default=2000, help="optimizer steps for the Completer")
    ap.add_argument("--train-minutes", type=float, default=None,
                    help="training time per model (minutes, summed over resumes); replaces --gen-steps/--comp-steps")
    ap.add_argument("--train-shapes", type=int, default=None, help="cap on training shapes per class")
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--n-eval", type=int, default=None, help="test shapes per class (default all: 100 chairs, 100 tables)")
    ap.add_argument("--sampler-steps", type=int, default=50)
    ap.add_argument("--sampler", default="ddpm")
    ap.add_argument("--protocol", default="luo_hu", choices=["luo_hu", "pointflow", "none"])
    ap.add_argument("--emd-points", type=int, default=512,
                    help="exact EMD on this many points of each cloud (cost ~N^2.5: 0.1 s a pair at 512 on one core)")
    ap.add_argument("--no-reference-rows", action="store_true", help="skip the train-vs-test and noise rows")
    ap.add_argument("--curve-every-minutes", type=float, default=None,
                    help="score the generator every N minutes of training (also written to "
                    "RUN_DIR/CLASS/curve.jsonl with --run-dir)")
    ap.add_argument("--curve-sampler", default=None, help="sampler of the curve (default: --sampler)")
    ap.add_argument("--curve-sampler-steps", type=int, default=None, help="its steps (default: --sampler-steps)")
    ap.add_argument("--throughput-steps", type=int, nargs="*", default=[10, 50], help="sampler steps the samples/s table measures")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy machine)")
    ap.add_argument("--tasks", nargs="+", default=["generate", "complete"], choices=["generate", "complete"])
    ap.add_argument("--run-dir", default=None, help="checkpoints (resumable training), the curve and cached reference rows")
    ap.add_argument("--out", default="benchmark_points.json")
    ap.add_argument("--render-dir", default=None, help="write PNG renders here")
    ap.add_argument("--save-dir", default=None, help="save the trained models here (safetensors checkpoints)")
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    run_info = Run(device=resolve_device(args.device))
    root = find_data(args.data)
    common = dict(num_points=args.num_points, channels=args.channels, layers=args.layers, batch_size=args.batch_size,
                  device=args.device, progress=False, epochs=10 ** 6, **_lr_ema(args))
    results = {"settings": vars(args)}
    if "generate" in args.tasks:
        generator_class(args.model)  # an unavailable model fails before anything runs
    for cls in args.classes:
        res = results[cls] = {}
        run = Path(args.run_dir) / cls if args.run_dir else None
        if "generate" in args.tasks:
            gen = run_generation(root, cls, common, args, res, run)
            if not args.no_reference_rows:  # after training, so the curve starts with it; cached in the run dir
                res["reference_rows"] = cached_reference_rows(root, cls, args, run)
                print(cls, "reference rows", json.dumps(res["reference_rows"]), flush=True)
        if "complete" in args.tasks:
            comp = run_completion(root, cls, common, args, res, run)
        if args.save_dir:
            for name, model in (("generator", gen if "generate" in args.tasks else None),
                                ("completer", comp if "complete" in args.tasks else None)):
                if model is not None:
                    model.save(Path(args.save_dir) / f"{cls}_{name}")
        if args.render_dir and "generate" in args.tasks:
            points.render(list(gen.sample(8, sampler_steps=args.sampler_steps, sampler=args.sampler, seed=2)),
                          Path(args.render_dir) / f"points_{cls}_generated.png", cols=4)
        if args.render_dir and "complete" in args.tasks:
            render_completion(comp, root, cls, Path(args.render_dir), args)
        results.update(run_info.provenance())
        write_json_atomic(args.out, results, indent=1)
    print(json.dumps(results, indent=1))


def _lr_ema(args) -> dict:
    """``lr`` / ``ema_decay`` when given on the command line (else each model keeps its own)."""
    return {k: v for k, v in (("lr", args.lr), ("ema_decay", args.ema)) if v is not None}


def _budget(args, steps, default=None):
    """Training budget keywords: a time budget (steps only cap it) or a step count. ``default``: the
    model's default TrainConfig (points.DEFAULT_TRAIN_CONFIG unless given)."""
    if args.train_minutes:
        from dataclasses import replace

        return {"train_config": replace(default or points.DEFAULT_TRAIN_CONFIG, max_time=60 * args.train_minutes,
                                        max_steps=None, epochs=10 ** 6, progress=False, **_lr_ema(args))}
    return {"max_steps": steps}


def generator_kwargs(args, common) -> dict:
    """The generator's settings: ``common`` for dgcnn; for the latent model the ones it shares
    (it has no channels, layers) and its own training defaults (Luo & Hu's lr, no weight decay)."""
    if args.model != "latent":
        return {**common, **_budget(args, args.gen_steps)}
    own = {k: common[k] for k in ("num_points", "batch_size", "device", "progress", "epochs")}
    return {**own, **_lr_ema(args), **_budget(args, args.gen_steps, points.DEFAULT_LATENT_TRAIN_CONFIG)}


def cached_reference_rows(root, cls, args, run):
    """The train-vs-test and noise rows, kept in ``RUN_DIR/CLASS/reference_rows.json`` for these
    settings (they depend on the data and the protocol, not on the model)."""
    key = {"num_points": args.num_points, "n_eval": args.n_eval, "protocol": args.protocol,
           "emd_points": args.emd_points, "metrics": ["cd", "emd"]}
    path = run / "reference_rows.json" if run else None
    if path and path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            return saved["rows"]
    t0 = time.perf_counter()
    rows = reference_rows(root, [cls], args.num_points, args.n_eval, ("cd", "emd"), args.emd_points, args.protocol)
    rows["eval_s"] = time.perf_counter() - t0
    if path:
        write_json_atomic(path, {"key": key, "rows": rows}, indent=1)
    return rows


def run_generation(root, cls, common, args, res, run):
    gen_cls = generator_class(args.model)
    ckpt = run / "generator_ckpt" if run else None
    curve, rows = learning_curve(args, root, cls, run) if args.curve_every_minutes else (None, None)
    t0 = time.perf_counter()
    gen = gen_cls(checkpoint_dir=ckpt, **generator_kwargs(args, common))
    gen.fit(root, [cls], max_shapes=args.train_shapes, resume=ckpt is not None, on_epoch_end=curve)
    res["gen_train_s"], res["gen_final_loss"] = time.perf_counter() - t0, gen.train_result.history[-1]["train_loss"]
    res["gen_train_result"] = {"steps": gen.train_result.optimizer_steps, "seconds": gen.train_result.seconds,
                               "stopped_by": gen.train_result.stopped_by}
    res["gen_diagnostics"] = latent_diagnostics(gen, root, cls)
    t0 = time.perf_counter()
    res["generation"] = points.evaluate(gen, root, [cls], "test", args.sampler_steps, args.sampler,
                                        max_shapes=args.n_eval, emd_points=args.emd_points, protocol=args.protocol)
    res["gen_eval_s"] = time.perf_counter() - t0
    if rows is not None:
        res["curve"] = rows
    if args.throughput_steps:
        res["throughput"] = throughput(gen, ["ddpm", "ddim", "dpm_solver"], args.throughput_steps)
    print(cls, "generation", json.dumps(res["generation"]), flush=True)
    return gen


def latent_diagnostics(gen, root, cls, n: int = 256) -> dict:
    """The latent model's loss terms and posterior shape on ``n`` training clouds (its sampling
    weights; empty for the DGCNN generator): does the points' loss fall, is the posterior collapsed?"""
    if not isinstance(gen, points.LatentGenerator):
        return {}
    x = gen.read_clouds(root, [cls], "train", n).points
    return {f"diag_{k}": v for k, v in gen.model.diagnose(x, gen.train_points, gen.encoder_points).items()}


def learning_curve(args, root, cls, run) -> tuple[EveryMinutes, list]:
    """The learning curve: an ``on_epoch_end`` callback that scores the generator every
    ``--curve-every-minutes`` minutes of training (1-NNA-CD, MMD-CD, COV-CD; a latent model's prior
    refitted first, as ``fit`` ends) and its rows, also appended to ``RUN_DIR/CLASS/curve.jsonl``. A
    run that resumes from its checkpoint keeps its earlier points; a new run starts a new curve."""
    path = run / "curve.jsonl" if run else None
    rows = []
    if path is not None and path.is_file():
        if (run / "generator_ckpt" / "last" / "config.json").is_file():
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        else:
            path.unlink()
    sampler, steps = args.curve_sampler or args.sampler, args.curve_sampler_steps or args.sampler_steps
    cache: dict = {}

    def point(snapshot, info: dict) -> None:
        if isinstance(snapshot, points.LatentGenerator):
            snapshot.fit_prior(root, [cls], "train", args.train_shapes)
        t0 = time.perf_counter()
        rep = points.evaluate(snapshot, root, [cls], "test", steps, sampler, max_shapes=args.n_eval,
                              metrics=("cd",), protocol=args.protocol, ref_cache=cache)
        row = {"mark_minutes": round(info["mark"], 6), "train_minutes": info["minutes"], "steps": info["steps"],
               "epoch": info["epoch"], "train_loss": info["train_loss"],
               **{k: rep[k] for k in ("1-NNA-CD", "MMD-CD", "COV-CD", "eval_points", "n_gen", "n_ref")},
               "sampler": sampler, "sampler_steps": steps, "eval_s": time.perf_counter() - t0,
               **latent_diagnostics(snapshot, root, cls)}
        rows.append(row)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as f:
                f.write(json.dumps(row) + "\n")
        print("curve", json.dumps(row), flush=True)

    done = max((r["mark_minutes"] for r in rows), default=0.0)
    return EveryMinutes(args.curve_every_minutes, point, done=done), rows


def run_completion(root, cls, common, args, res, run):
    t0 = time.perf_counter()
    ckpt = run / ("latent_completer_ckpt" if args.completion_model == "latent" else "completer_ckpt") if run else None
    if args.completion_model == "latent":
        own = {k: common[k] for k in ("num_points", "batch_size", "device", "progress", "epochs")}
        comp = points.LatentCompleter(views=args.views, checkpoint_dir=ckpt, **own, **_lr_ema(args),
                                      **_budget(args, args.comp_steps, points.DEFAULT_LATENT_TRAIN_CONFIG))
    else:
        comp = points.Completer(views=args.views, checkpoint_dir=ckpt, **common, **_budget(args, args.comp_steps))
    comp.fit(root, [cls], max_shapes=args.train_shapes, resume=ckpt is not None)
    res["comp_train_s"], res["comp_final_loss"] = time.perf_counter() - t0, comp.train_result.history[-1]["train_loss"]
    # the retrieval library: the very pairs the completer trained on (every training shape, --views scans)
    library = points.completion_pairs(comp.read_clouds(root, [cls], "train", args.train_shapes), args.views,
                                      comp.max_known, seed=comp.seed)
    t0 = time.perf_counter()
    res["completion"] = points.evaluate(comp, root, [cls], "test", args.sampler_steps, args.sampler,
                                        max_shapes=args.n_eval, emd_points=args.emd_points, baseline=library)
    res["comp_eval_s"] = time.perf_counter() - t0
    print(cls, "completion", json.dumps(res["completion"]), flush=True)
    return comp


def render_completion(comp, root, cls, out: Path, args):
    test = comp.read_clouds(root, [cls], "test", 3)
    pairs = points.completion_pairs(test, 1, comp.max_known, seed=0)
    truth = pairs["frame"].invert(pairs["x0"])
    partials = [t[: int(k.sum())] for t, k in zip(truth, pairs["known"])]
    done = comp.complete(partials, sampler_steps=args.sampler_steps, sampler=args.sampler)
    clouds, titles = [], []
    for p, c, t in zip(partials, done, truth):
        clouds += [p, c, t]
        titles += ["partial", "completed", "ground truth"]
    points.render(clouds, out / f"points_{cls}_completion.png", titles=titles, cols=3)


if __name__ == "__main__":
    main()
