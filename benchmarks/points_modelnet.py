"""ModelNet10 point-cloud generation and completion benchmark (issue 5).

Generation (PVD / Luo & Hu protocol): 1-NNA, MMD and COV with CD and EMD of generated clouds vs the
test split of a class (1-NNA 50 % is ideal; PVD chair 56.26 %, Luo & Hu airplane 64.83 % on
ShapeNet); samples per second per sampler and step count. Completion: CD / EMD / F-score of
PVD-style completion of hidden-point-removal scans of the test split vs a nearest-neighbour
retrieval baseline from the training set.

    python benchmarks/points_modelnet.py --classes chair --gen-steps 2000 --comp-steps 2000   # GPU
    python benchmarks/points_modelnet.py --classes chair --num-points 256 --gen-steps 150 \
        --comp-steps 150 --channels 64 --n-eval 32 --emd-points 128                          # CPU smoke
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from multidiff.cli.common import add_option  # noqa: E402
from multidiff.core.checkpoint import write_json_atomic  # noqa: E402
from multidiff.datasets.fetch import data_roots  # noqa: E402
from multidiff.tasks import points  # noqa: E402


def find_data(path):
    if path:
        return Path(path)
    for root in data_roots():
        if (root / "modelnet10_pcd").is_dir():
            return root / "modelnet10_pcd"
    raise FileNotFoundError("modelnet10_pcd not found; pass --data ROOT (ROOT/CLASS/{train,test}/*.pcd)")


def throughput(gen, samplers, step_counts, n=8):
    rows = []
    for s in samplers:
        for k in step_counts:
            t0 = time.perf_counter()
            gen.sample(n, sampler_steps=k, sampler=s, seed=1)
            rows.append({"sampler": s, "sampler_steps": k, "samples_per_s": n / (time.perf_counter() - t0)})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--classes", nargs="+", default=["chair"])
    ap.add_argument("--num-points", type=int, default=1024)
    ap.add_argument("--channels", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--ema", type=float, default=0.999, help="EMA decay (lower it for short runs)")
    ap.add_argument("--gen-steps", type=int, default=2000, help="optimizer steps for the Generator")
    ap.add_argument("--comp-steps", type=int, default=2000, help="optimizer steps for the Completer")
    ap.add_argument("--train-shapes", type=int, default=None, help="cap on training shapes per class")
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--n-eval", type=int, default=None, help="test shapes per class (default all)")
    add_option(ap, "--sampler-steps", old=["--sample-steps"], type=int, default=50)
    ap.add_argument("--sampler", default="ddpm")
    ap.add_argument("--emd-points", type=int, default=None)
    ap.add_argument("--throughput-steps", type=int, nargs="*", default=[10, 50], help="sampler steps the samples/s table measures")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is fastest on a busy machine)")
    ap.add_argument("--tasks", nargs="+", default=["generate", "complete"], choices=["generate", "complete"])
    ap.add_argument("--out", default="benchmark_points.json")
    ap.add_argument("--render-dir", default=None, help="write PNG renders here")
    ap.add_argument("--save-dir", default=None, help="save the trained models here (safetensors checkpoints)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    root = find_data(args.data)
    common = dict(num_points=args.num_points, channels=args.channels, layers=args.layers, batch_size=args.batch_size,
                  lr=args.lr, ema_decay=args.ema, device=args.device, progress=False, epochs=10 ** 6)
    results = {"settings": vars(args), "device": str(torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu")}
    for cls in args.classes:
        res = results[cls] = {}
        if "generate" in args.tasks:
            gen = run_generation(root, cls, common, args, res)
        if "complete" in args.tasks:
            comp = run_completion(root, cls, common, args, res)
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
    write_json_atomic(args.out, results, indent=1)
    print(json.dumps(results, indent=1))


def run_generation(root, cls, common, args, res):
    t0 = time.perf_counter()
    gen = points.Generator(max_steps=args.gen_steps, **common).fit(root, [cls], max_shapes=args.train_shapes)
    res["gen_train_s"], res["gen_final_loss"] = time.perf_counter() - t0, gen.train_result.history[-1]["train_loss"]
    t0 = time.perf_counter()
    res["generation"] = points.evaluate(gen, root, [cls], "test", args.sampler_steps, args.sampler,
                                        max_shapes=args.n_eval, emd_points=args.emd_points)
    res["gen_eval_s"] = time.perf_counter() - t0
    res["throughput"] = throughput(gen, ["ddpm", "ddim", "dpm_solver"], args.throughput_steps)
    print(cls, "generation", json.dumps(res["generation"]), flush=True)
    return gen


def run_completion(root, cls, common, args, res):
    t0 = time.perf_counter()
    comp = points.Completer(max_steps=args.comp_steps, views=args.views, **common)
    comp.fit(root, [cls], max_shapes=args.train_shapes)
    res["comp_train_s"], res["comp_final_loss"] = time.perf_counter() - t0, comp.train_result.history[-1]["train_loss"]
    library = points.completion_pairs(comp._folder(root, [cls], "train", None), 1, comp.max_known, seed=123)
    t0 = time.perf_counter()
    res["completion"] = points.evaluate(comp, root, [cls], "test", args.sampler_steps, args.sampler,
                                        max_shapes=args.n_eval, emd_points=args.emd_points, baseline=library)
    res["comp_eval_s"] = time.perf_counter() - t0
    print(cls, "completion", json.dumps(res["completion"]), flush=True)
    return comp


def render_completion(comp, root, cls, out: Path, args):
    test = comp._folder(root, [cls], "test", 3)
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
