"""Issue 27: train a flow-matching decoder (Matcha-TTS' 1-D U-Net, OT-CFM) on a trained voice's frozen
encoder, saving the EMA voice every ``--snapshot-minutes`` of training for the learning curve.

    python benchmarks/tts_flow_decoder.py train --init shipped --max-minutes 95 --out runs/tts_flow
    python benchmarks/tts_flow_decoder.py curve --out runs/tts_flow            # WER + DNSMOS per snapshot

Training runs in one process (the curve is scored afterwards from the snapshots, so scoring costs
no training time). Data: the shared LJ Speech subset, the last 20 clips held out (as tts_ljspeech.py).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path



def provenance() -> dict:
    """The core's provenance block now, with the keys this benchmark's files had (load, machine)."""
    import platform

    from multidiff.core.provenance import Run
    block = Run().provenance()
    return {**block, "load": block["load_before"], "machine": platform.machine()}


def train(args) -> None:
    import torch
    from multidiff.datasets.ljspeech import locate_ljspeech
    from multidiff.core.training import EveryMinutes
    from multidiff.tasks import tts

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    (out / "curve").mkdir(parents=True, exist_ok=True)

    def snapshot(voice, info):  # the EMA voice at the first epoch end past each mark
        voice.trained = {"steps": info["steps"], "seconds": info["seconds"]}
        voice.save(out / "curve" / f"min{round(info['mark']):03d}")

    cfg = replace(tts.CPU_TRAIN_CONFIG, lr=args.lr, warmup_steps=args.warmup, ema_decay=args.ema,
                  max_time=60.0 * args.max_minutes, progress=False, seed=args.seed)
    started = provenance()
    voice = tts.train(locate_ljspeech(args.data), out=out, init=args.init, stage="decoder", batch_size=args.batch_size,
                      net={"decoder": "unet1d", "dec_channels": tuple(args.channels)},
                      diffusion={"objective": "flow", "segment_frames": args.segment_frames},
                      train_config=cfg, holdout=20, on_epoch_end=EveryMinutes(args.snapshot_minutes, snapshot),
                      seed=args.seed)
    (out / "run.json").write_text(json.dumps({"command": " ".join(sys.argv), "trained": voice.trained,
                                              "started": started, "ended": provenance()}, indent=1))


def curve(args) -> None:
    """WER / CER / DNSMOS of every snapshot and of the final voice on the held-out clips (the prior
    once: the encoder is frozen, so its row is the same for every snapshot) -> OUT/curve.jsonl."""
    import torch
    from multidiff.datasets.ljspeech import locate_ljspeech, read_metadata, split_holdout
    from multidiff.metrics.asr import Recognizer
    from multidiff.tasks import tts

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    _, test = split_holdout(read_metadata(locate_ljspeech(args.data)), 20)
    test = test[: args.clips]
    recognizer = Recognizer()
    score = lambda voice, **kw: tts.evaluate(voice, test, temperature=args.temperature, with_f0=False, asr=recognizer,
                                             mos=True, seed=0, **kw).rows
    folders = sorted((out / "curve").glob("min*")) + [out / "final"]
    lines = [{"setting": "prior", **score(tts.load(folders[0]), sampler_steps=(), prior=True)[0], **provenance()}]
    for folder in folders:
        voice = tts.load(folder)
        row = score(voice, sampler_steps=(args.sampler_steps,), prior=False)[0]
        lines.append({"snapshot": folder.name, "training_minutes": voice.trained.get("seconds", 0) / 60,
                      "steps": voice.trained.get("steps"), "temperature": args.temperature, **row, **provenance()})
        print(json.dumps(lines[-1]))
    with open(out / "curve.jsonl", "a") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--init", default="shipped", help="voice whose encoder is kept ('shipped' or a folder)")
    t.add_argument("--out", default="runs/tts_flow")
    t.add_argument("--data", help="LJ Speech-style folder (default: ljspeech_subset on the data path)")
    t.add_argument("--max-minutes", type=float, default=95.0)
    t.add_argument("--snapshot-minutes", type=float, default=20.0)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--segment-frames", type=int, default=128)
    t.add_argument("--channels", type=int, nargs="+", default=[160, 160])
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--warmup", type=int, default=200)
    t.add_argument("--ema", type=float, default=0.998)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("curve")
    c.add_argument("--out", default="runs/tts_flow")
    c.add_argument("--data", help="LJ Speech-style folder (default: ljspeech_subset on the data path)")
    c.add_argument("--sampler-steps", type=int, default=10)
    c.add_argument("--temperature", type=float, default=1.5)
    c.add_argument("--clips", type=int, default=20, help="held-out clips scored (the last 20 of the subset)")
    c.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    {"train": train, "curve": curve}[args.command](args)


if __name__ == "__main__":
    main()
