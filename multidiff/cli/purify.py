"""``multidiff purify train|evaluate``: DiffPure purification and its adaptive-attack evaluation."""
from __future__ import annotations

import argparse
import math

from ..core.samplers import names
from .common import add_scale_options, rank_zero, scale_options

DATASETS = ("digits", "etth1")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("purify", help="adversarial purification (DiffPure) and robust evaluation")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True

    t = sub.add_parser("train", help="train the clean diffusion model and the classifier")
    t.add_argument("--dataset", choices=DATASETS, default="digits")
    t.add_argument("--data", default=None, help="folder or file of the data set (default: the shared data search)")
    t.add_argument("--out", default="runs/purify", help="checkpoint folder to write")
    t.add_argument("--epochs", type=int, default=200, help="diffusion-model epochs")
    t.add_argument("--classifier-epochs", type=int, default=30)
    t.add_argument("--width", type=int, default=32, help="U-Net base channels")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    add_scale_options(t)
    t.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="clean and robust accuracy, undefended vs defended; JSON/Markdown report + PNG grid")
    e.add_argument("--checkpoint", default="runs/purify", help="folder written by 'purify train'")
    e.add_argument("--data", default=None)
    e.add_argument("--out", default=None, help="report folder (default: CHECKPOINT/report)")
    e.add_argument("--eps", type=float, default=0.1)
    e.add_argument("--norm", choices=("linf", "l2"), default="linf")
    e.add_argument("--attacks", default="fgsm,pgd,bpda-eot,pgd-eot",
                   help="comma-separated: fgsm,pgd,bpda-eot,pgd-eot,transfer, and the torchattacks cross-check "
                        "torchattacks-eotpgd,torchattacks-apgd (pip install --no-deps torchattacks)")
    e.add_argument("--attack-steps", type=int, default=10, help="PGD iterations (without --converge)")
    e.add_argument("--step-size", type=float, default=0.0, help="0: 2.5 eps / attack steps")
    e.add_argument("--eot", type=int, default=4, help="EOT samples per gradient step (without --converge)")
    e.add_argument("--converge", action="store_true",
                   help="raise pgd-eot's attack steps, then its EOT samples, until the defended robust accuracy "
                        "moves by at most --tol; every attack then runs at the converged setting (convergence.png)")
    e.add_argument("--converge-attack-steps", type=_ints, default=(10, 20, 40, 80), metavar="LIST",
                   help="attack steps tried, in order (default 10,20,40,80)")
    e.add_argument("--converge-eot", type=_ints, default=(4, 8, 16, 32), metavar="LIST",
                   help="EOT samples tried, in order (default 4,8,16,32)")
    e.add_argument("--tol", type=float, default=0.01, help="accuracy change counted as converged (0.01: 1 point)")
    e.add_argument("--max-gradients", type=int, default=None,
                   help="cap on attack steps x EOT summed over the convergence runs (per input)")
    e.add_argument("--t-start", type=float, default=0.1, help="fraction of the diffusion purification starts "
                   "from (DiffPure's t*, default 0.1)")
    e.add_argument("--sampler-steps", type=int, default=None,
                   help="purification (sampler) steps (default t* x 1000)")
    e.add_argument("--sampler", choices=names("continuous"), default="euler_sde",
                   help="reverse process (DiffPure: euler_sde)")
    e.add_argument("--n-votes", type=int, default=1, help="purification runs per prediction (majority vote)")
    e.add_argument("--n-examples", type=int, default=200, help="test inputs evaluated (first N of the test split)")
    e.add_argument("--batch-size", type=int, default=100)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="auto")
    e.set_defaults(func=_evaluate)


def _ints(text: str) -> tuple[int, ...]:
    """``"10,20,40"`` -> ``(10, 20, 40)``."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers such as 10,20,40, got {text!r}")


def _data(name: str, path):
    from ..datasets.labelled import load_dataset
    return load_dataset(name, **({"path": path} if path and name != "digits" else {}))


def _train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..core.validate import check_whole
    from ..tasks import purify

    for flag in ("epochs", "classifier_epochs", "width"):  # before the classifier trains, not after
        check_whole(f"--{flag.replace('_', '-')}", getattr(args, flag))
    d = _data(args.dataset, args.data)
    run = dict(seed=args.seed, device=args.device, progress=True, **scale_options(args))
    model = purify.PurificationModel(
        d.data_range, replace(purify.DEFAULT_DENOISER_TRAIN_CONFIG, epochs=args.epochs, ema_decay=0.995, **run),
        replace(purify.DEFAULT_CLASSIFIER_TRAIN_CONFIG, epochs=args.classifier_epochs, **run),
        denoiser_net={"base": args.width}).fit(d.x_train, d.y_train, len(d.classes))
    clf = model.classifier
    if not rank_zero():
        return 0
    import torch
    with torch.no_grad():
        acc = float((clf(d.x_test.to(next(clf.parameters()).device)).argmax(-1).cpu() == d.y_test).float().mean())
    model.meta.update(dataset=args.dataset, classes=d.classes, description=d.description, clean_test_accuracy=acc)
    model.save(args.out)
    print(f"wrote {args.out}: classifier clean test accuracy {100 * acc:.1f} % on {len(d.y_test)} inputs")
    return 0


def _check_evaluate_args(args: argparse.Namespace, check_whole) -> None:
    """The numbers of ``purify evaluate`` before the checkpoint and the data load (NaN included)."""
    for flag in ("n_examples", "batch_size", "n_votes", "attack_steps", "eot"):
        check_whole(f"--{flag.replace('_', '-')}", getattr(args, flag))
    check_whole("--sampler-steps", args.sampler_steps, none="t* x 1000")
    if not math.isfinite(args.eps) or not args.eps > 0:
        raise ValueError(f"--eps must be a radius > 0 in the data's units (0.1: pixels in [0, 1]), got {args.eps}")
    if not (math.isfinite(args.t_start) and 0 <= args.t_start <= 1):
        raise ValueError(f"--t-start must lie in [0, 1] (a fraction of the diffusion time; DiffPure's t*: 0.1), "
                         f"got {args.t_start}")
    if not (math.isfinite(args.step_size) and args.step_size >= 0):
        raise ValueError(f"--step-size must be >= 0 (0: 2.5 eps / attack steps), got {args.step_size}")
    if not (math.isfinite(args.tol) and args.tol >= 0):
        raise ValueError(f"--tol must be an accuracy change >= 0 (0.01: 1 point), got {args.tol}")


def _evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..core.validate import check_whole
    from ..tasks import purify

    _check_evaluate_args(args, check_whole)
    model = purify.PurificationModel.load(args.checkpoint, args.device)
    den, clf, meta = model.denoiser, model.classifier, model.meta
    d = _data(meta["dataset"], args.data)
    n = min(args.n_examples, len(d.y_test))
    purifier = purify.Purifier(den, t_start=args.t_start, sampler_steps=args.sampler_steps, sampler=args.sampler,
                               data_range=tuple(meta["data_range"]))
    attacks = [a.strip() for a in args.attacks.split(",") if a.strip()]
    converge = (purify.Convergence(attack_steps=args.converge_attack_steps, eot=args.converge_eot, tol=args.tol,
                                   max_gradients=args.max_gradients) if args.converge else None)
    report = purify.evaluate(clf, purifier, (d.x_test[:n], d.y_test[:n]), attacks=attacks, eps=args.eps, norm=args.norm,
                             attack_steps=args.attack_steps, step_size=args.step_size, eot=args.eot, n_votes=args.n_votes,
                             batch_size=args.batch_size, seed=args.seed, device=args.device, converge=converge)
    report.settings["dataset"] = {"name": meta["dataset"], "description": meta.get("description", "")}
    out = Path(args.out or Path(args.checkpoint) / "report")
    js, md = report.save(out)
    png = purify.save_grid(report, out / "grid.png", attacks[-1], meta.get("classes"))
    if converge is not None:
        png = f"{png}, {purify.save_convergence_plot(report, out / 'convergence.png')}"
    print(report.to_markdown())
    print(f"wrote {js}, {md}, {png}")
    return 0
