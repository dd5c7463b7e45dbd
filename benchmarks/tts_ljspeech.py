"""Grad-TTS on LJ Speech: train, then MCD-DTW / log-F0 RMSE / RTF on the held-out clips.

Reference to beat: the prior mu alone (no diffusion). Grad-TTS (Popov et al. 2021) reports RTF 0.033
end to end for 10 steps on a 2080 Ti (HiFi-GAN vocoder); the issue's GPU target is decoder RTF <= 0.01
at 10 steps on an H100 and diffusion MCD below prior MCD after <= 20 GPU minutes of training.

    python benchmarks/tts_ljspeech.py --size small --max-steps 3000 --batch-size 16   # GPU
    python benchmarks/tts_ljspeech.py --size tiny --max-steps 150 --eval-clips 4 --threads 1   # CPU smoke
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from multidiff.cli.common import add_option


def vocoder_ceiling(model, items, with_f0: bool) -> dict:
    """MCD / log-F0 RMSE of ground-truth mels through the model's vocoder: the best any decoder can reach."""
    from multidiff.audio.mel import mel_spectrogram
    from multidiff.datasets.ljspeech import load_audio
    from multidiff.metrics.audio import speech_metrics

    scores = []
    for u in items:
        ref = load_audio(u.path, model.sample_rate)
        syn = model.vocode(mel_spectrogram(torch.from_numpy(ref), model.mel))
        scores.append(speech_metrics(ref, syn, model.sample_rate, with_f0=with_f0))
    return {k: sum(s[k] for s in scores) / len(scores) for k in scores[0]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="LJ Speech-style folder (default: ljspeech_subset on the data path)")
    p.add_argument("--out", default="runs/tts_ljspeech", help="checkpoint + outputs folder")
    p.add_argument("--checkpoint", help="evaluate this trained voice instead of training one")
    p.add_argument("--resume", action="store_true", help="continue the training run in --out up to --max-steps")
    p.add_argument("--size", default="small", choices=["gradtts", "small", "tiny"])
    p.add_argument("--max-steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--segment-frames", type=int, default=172)
    p.add_argument("--holdout", type=int, default=20)
    p.add_argument("--eval-clips", type=int, default=20)
    add_option(p, "--sampler-steps", old=["--eval-steps"], type=int, nargs="+", default=[4, 10, 50],
               help="decoder step counts to evaluate")
    p.add_argument("--samplers", nargs="+", default=["euler_ode", "dpm_solver"])
    p.add_argument("--temperature", type=float, default=1.5)
    p.add_argument("--no-f0", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from multidiff.audio.files import save_mel_png
    from multidiff.core.checkpoint import write_json_atomic
    from multidiff.datasets.ljspeech import locate_ljspeech, read_metadata, split_holdout
    from multidiff.tasks import tts

    items = read_metadata(locate_ljspeech(args.data))
    _, test = split_holdout(items, args.holdout)
    out = Path(args.out)
    t0 = time.perf_counter()
    if args.checkpoint:
        model, train_s = tts.load(args.checkpoint, device=args.device), None
    else:
        model = tts.train(items, out=out, max_steps=args.max_steps, device=args.device, batch_size=args.batch_size,
                          lr=args.lr, holdout=args.holdout, size=args.size, seed=args.seed, resume=args.resume,
                          diffusion={"segment_frames": args.segment_frames})
        train_s = time.perf_counter() - t0
    report = {"device": torch.cuda.get_device_name() if model.device.type == "cuda" else platform.processor() or "cpu",
              "threads": torch.get_num_threads(), "train_seconds": train_s, "args": vars(args),
              "parameters": sum(q.numel() for q in model.net.parameters()), "clips_train": len(items) - args.holdout,
              "history": model.history, "results": {}}
    report["vocoder_ceiling"] = vocoder_ceiling(model, test[: args.eval_clips], not args.no_f0)
    print(f"ground-truth mel + vocoder: {report['vocoder_ceiling']}")
    for sampler in args.samplers:
        res = tts.evaluate(model, test[: args.eval_clips], args.sampler_steps, sampler, args.temperature,
                           with_f0=not args.no_f0, seed=args.seed, progress=print)
        if sampler == args.samplers[0]:
            save_mel_png(out / "mels.png", res.examples, test[0].text[:80])
        report["results"][sampler] = res.rows
        print(f"\n{sampler}\n{res.table()}\n")
    write_json_atomic(out / "report.json", report, indent=1)
    print(f"train {train_s} s, {report['parameters']} parameters, {len(model.history)} epochs; "
          f"report in {out / 'report.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
