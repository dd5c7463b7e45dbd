"""``multidiff points train|sample|complete|evaluate``: point-cloud generation and completion."""
from __future__ import annotations

import argparse
import json

from ..core.samplers import names
from .common import add_scale_options, rank_zero, scaled


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("points", help="point-cloud generation and completion (PVD, Luo & Hu)")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True

    t = sub.add_parser("train", help="train a generator or a completer on ROOT/CLASS/train/*")
    t.add_argument("data", help="folder in the ModelNet layout ROOT/CLASS/{train,test}/*.pcd|ply|off|obj|npy|txt|pts")
    t.add_argument("out", help="checkpoint directory to write")
    t.add_argument("--task", choices=["generate", "complete"], default="generate")
    t.add_argument("--model", choices=list(_MODELS), default="dgcnn",
                   help="dgcnn: a denoiser over whole clouds (Generator, Completer; --channels, --layers); latent: a "
                        "shape code and points drawn one by one given it, linear in points (LatentGenerator, "
                        "LatentCompleter; Luo & Hu 2021)")
    t.add_argument("--classes", nargs="*", default=None, help="class folders (default: all)")
    t.add_argument("--num-points", type=int, default=1024)
    t.add_argument("--channels", type=int, default=None, help="dgcnn: the denoiser's width (default 128)")
    t.add_argument("--layers", type=int, default=None, help="dgcnn: its EdgeConv layers (default 4)")
    t.add_argument("--epochs", type=int, default=None, help="epochs (default: the model's, 100 dgcnn, 300 latent)")
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=None, help="learning rate (default: the model's, 1e-3 dgcnn, 2e-3 latent)")
    t.add_argument("--max-shapes", type=int, default=None)
    t.add_argument("--views", type=int, default=4, help="scans per shape for a completer")
    t.add_argument("--device", default="auto")
    t.add_argument("--seed", type=int, default=0)
    add_scale_options(t)
    t.set_defaults(func=_train)

    for name, helptext in (("sample", "generate clouds"), ("complete", "complete partial scans")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("model", help="checkpoint directory written by `train`")
        if name == "sample":
            s.add_argument("out", help="output folder for NNN.ply/.pcd/.npy files")
            s.add_argument("-n", type=int, default=8, help="number of clouds")
        else:
            s.add_argument("partial", nargs="+", help="partial scan files (.ply/.pcd/.npy/..., e.g. from a depth sensor; "
                                                      "crop the background first)")
            s.add_argument("--out", required=True, help="output folder")
            s.add_argument("--up-axis", default="z", choices=["z", "-z", "y", "-y", "x", "-x"],
                           help="the scans' up direction, turned onto ModelNet's +z (a camera frame with y down: --up-axis=-y)")
        s.add_argument("--sampler-steps", type=int, default=50)
        s.add_argument("--sampler", default="ddpm", choices=names("discrete"))
        s.add_argument("--format", default="ply", choices=["ply", "pcd", "npy"])
        s.add_argument("--png", default=None, help="also render the clouds to this PNG")
        s.add_argument("--device", default="auto")
        s.add_argument("--seed", type=int, default=0)
        s.set_defaults(func=_sample if name == "sample" else _complete)

    e = sub.add_parser("evaluate", help="MMD/COV/1-NNA (Generator) or CD/EMD/F-score (Completer) on a split")
    e.add_argument("model")
    e.add_argument("data")
    e.add_argument("--classes", nargs="*", default=None)
    e.add_argument("--split", default="test")
    e.add_argument("--max-shapes", type=int, default=None)
    e.add_argument("--sampler-steps", type=int, default=50)
    e.add_argument("--sampler", default="ddpm", choices=names("discrete"))
    e.add_argument("--emd-points", type=int, default=None, help="exact EMD on this many points of each cloud (CPU budget)")
    e.add_argument("--protocol", default="luo_hu", choices=["luo_hu", "pointflow", "none"],
                   help="frame of the generation metrics: luo_hu (every cloud in its bounding box, Luo & Hu 2021) "
                        "or pointflow (one dataset-wide frame)")
    e.add_argument("--device", default="auto")
    e.set_defaults(func=_evaluate)


# --model, --task -> the class trained (names, so that the parser imports no torch)
_MODELS = {"dgcnn": {"generate": "Generator", "complete": "Completer"},
           "latent": {"generate": "LatentGenerator", "complete": "LatentCompleter"}}
_GENERATORS = ("points.generator", "points.latent")
_COMPLETERS = ("points.completer", "points.latent_completer")


def _load(path: str, device: str, kinds=(*_GENERATORS, *_COMPLETERS)):
    """The generator or completer saved in ``path``; a checkpoint of another kind (e.g. a Completer
    for ``sample``) is a clear error naming the kind found and the command that fits."""
    from ..core.checkpoint import check_kind
    from ..tasks import points

    kind = check_kind(path, kinds)
    loaders = {"points.generator": points.Generator, "points.latent": points.LatentGenerator,
               "points.completer": points.Completer, "points.latent_completer": points.LatentCompleter}
    return loaders[kind].load(path, device=device)


def _train(args: argparse.Namespace) -> int:
    from ..tasks import points

    cls = getattr(points, _MODELS[args.model][args.task])
    own = {k: getattr(args, k) for k in ("channels", "layers", "lr", "epochs") if getattr(args, k) is not None}
    if args.model == "latent" and {"channels", "layers"} & set(own):
        raise ValueError("--channels and --layers size the dgcnn model; the latent model has Luo & Hu's widths "
                         "(drop them, or pass --model dgcnn)")
    if args.task == "complete":
        own["views"] = args.views
    default = points.DEFAULT_TRAIN_CONFIG if args.model == "dgcnn" else points.DEFAULT_LATENT_TRAIN_CONFIG
    model = cls(num_points=args.num_points, max_steps=args.max_steps, batch_size=args.batch_size,
                device=args.device, seed=args.seed, train_config=scaled(default, args), **own)
    model.fit(args.data, classes=args.classes, max_shapes=args.max_shapes)
    if not rank_zero():
        return 0
    model.save(args.out)
    print(f"saved {cls.__name__} to {args.out} (final loss {model.train_result.history[-1]['train_loss']:.4f})")
    return 0


def _write(clouds, out: str, fmt: str, png) -> None:
    from pathlib import Path

    from ..tasks import points

    for i, c in enumerate(clouds):
        points.save_clouds(c, Path(out) / f"{i:03d}.{fmt}")
    if png:
        points.render(list(clouds), png)
    print(f"wrote {len(clouds)} clouds to {out}")


def _sample(args: argparse.Namespace) -> int:
    model = _load(args.model, args.device, _GENERATORS)
    _write(model.sample(args.n, args.sampler_steps, args.sampler, seed=args.seed), args.out, args.format, args.png)
    return 0


def _complete(args: argparse.Namespace) -> int:
    from ..tasks import points

    partials = [points.load_clouds(p) for p in args.partial]  # before the model loads: a wrong path fails at once
    model = _load(args.model, args.device, _COMPLETERS)
    done = model.complete(partials, args.sampler_steps, args.sampler, seed=args.seed, up_axis=args.up_axis)
    _write(done, args.out, args.format, args.png)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ..tasks import points

    model = _load(args.model, args.device)
    report = points.evaluate(model, args.data, classes=args.classes, split=args.split, sampler_steps=args.sampler_steps,
                             sampler=args.sampler, max_shapes=args.max_shapes, emd_points=args.emd_points,
                             protocol=args.protocol)
    print(json.dumps(report, indent=1))
    return 0
