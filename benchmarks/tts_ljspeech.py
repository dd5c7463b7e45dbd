"""Grad-TTS on LJ Speech: train, then WER / CER (offline recogniser), DNSMOS naturalness, MCD-DTW,
log-F0 RMSE and RTF on the held-out clips (the last 20 by default).

Rows: the ceiling (the recorded audio; the recorded mel through Griffin-Lim), the prior mu alone,
and the diffusion decoder at each --sampler-steps for each of --samplers. WER/CER come from
PocketSphinx and jiwer (`pip install "multidiff[bench]"`; see multidiff/metrics/asr.py), DNSMOS
P.835 OVRL / SIG / BAK from speechmos (same extra; multidiff/metrics/naturalness.py; --no-mos skips it).

Training runs through the core loop: OUT/last is a checkpoint after every epoch and --resume
continues an interrupted run bit-identically (the same command with --resume). With
--eval-every-minutes N, each time another N minutes of training have passed (checked at epoch ends;
evaluation time is not training time), a learning-curve point is appended to OUT/curve.jsonl:
WER, CER, DNSMOS and MCD of the decoder at --curve-steps steps and of the prior on the --curve-clips
held-out clips, with the training minutes, steps and losses; a resumed run appends to it. A point
costs 2 x clips Griffin-Lim inversions, recognitions and DNSMOS runs and clips x (prior + decoder)
syntheses: a few CPU-minutes for 20 clips of the cpu preset (each line records its eval_seconds).

    python benchmarks/tts_ljspeech.py --preset cpu --max-minutes 180 --eval-every-minutes 20 --out runs/tts_cpu
    python benchmarks/tts_ljspeech.py --preset cpu --max-minutes 180 --eval-every-minutes 20 --out runs/tts_cpu --resume
    python benchmarks/tts_ljspeech.py --checkpoint runs/tts_cpu/final --out runs/tts_cpu_eval   # evaluate only
    python benchmarks/tts_ljspeech.py --ceiling-only --out runs/tts_ceiling                     # the two ceiling rows
    python benchmarks/tts_ljspeech.py --size tiny --max-steps 150 --eval-clips 4 --threads 1   # CPU smoke

--export-voice DIR writes the trained voice with voice.json (this command, the data, the training
minutes, the scores) and a sample table, as the package ships it (multidiff/tasks/tts/pretrained).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch


# the sample table of docs/tts.md: sentences not in the training data (numbers and money for the frontend)
NEW_TEXTS = ["The quick brown fox jumps over the lazy dog.",
             "She paid $3.50 for 2 tickets on May 21st, 2024.",
             "Diffusion models turn noise into speech, one small step at a time."]
MAX_VOICE_MB = 20.0


def curve(path: Path, every: float, items, recognizer, steps: int, sampler: str, temperature: float, seed: int,
          resume: bool, mos: bool = False):
    """The learning curve: a ``tts.curve_point`` appended to ``path`` (JSON lines) every ``every``
    minutes of training (a ``core.training.EveryMinutes`` callback); a resumed run keeps its points."""
    from multidiff.core.training import EveryMinutes
    from multidiff.tasks import tts

    done = 0.0
    if resume and path.is_file():
        lines = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
        done = lines[-1]["minutes"] if lines else 0.0
    elif path.is_file():
        path.unlink()  # a new run starts a new curve

    def point(voice, info: dict) -> None:
        minutes = info["minutes"]
        pt = tts.curve_point(voice, items, recognizer, steps, sampler, temperature, seed, mos=mos)
        line = {"minutes": round(minutes, 3), "steps": info["steps"], "epoch": info["epoch"],
                "train_loss": info["train_loss"], "val_loss": info.get("val_loss"), **pt,
                "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(json.dumps(line) + "\n")
        heard = (f", DNSMOS OVRL {pt['dnsmos_ovrl']:.2f} (prior {pt['prior_dnsmos_ovrl']:.2f})"
                 if "dnsmos_ovrl" in pt else "")
        print(f"curve: {minutes:.1f} min, step {info['steps']}: WER {pt.get('wer', float('nan')):.3f} "
              f"(prior {pt.get('prior_wer', float('nan')):.3f}), MCD {pt['mcd']:.3f} "
              f"(prior {pt['prior_mcd']:.3f}){heard}; {pt['eval_seconds']:.0f} s", flush=True)

    return EveryMinutes(every, point, done=done)


def samples(model, texts: list[str], out: Path, recognizer, sampler: str, sampler_steps: int, temperature: float,
            seed: int) -> list[dict]:
    """Synthesize ``texts`` to OUT/samples/sample_NN.wav (+ .png); per sentence: WER and end-to-end RTF."""
    from multidiff.audio.files import save_mel_png, write_wav

    rows = []
    for i, text in enumerate(texts, 1):
        t0 = time.perf_counter()
        mels, priors = model.synthesize_mels([text], sampler_steps, temperature, sampler, seed=seed, return_prior=True)
        wav = model.vocode(mels[0])
        spent = time.perf_counter() - t0
        path = write_wav(out / "samples" / f"sample_{i:02d}.wav", wav, model.sample_rate)
        save_mel_png(path.with_suffix(".png"), {"prior mu": priors[0], f"{sampler}-{sampler_steps}": mels[0]}, text[:80])
        row = {"text": text, "file": f"samples/{path.name}", "seconds": len(wav) / model.sample_rate,
               "rtf_end_to_end": spent / (len(wav) / model.sample_rate)}
        if recognizer is not None:
            heard = recognizer.score([text], [wav], model.sample_rate)
            row.update(wer=heard["wer"], heard=heard["hypotheses"][0])
        rows.append(row)
    return rows


def sample_table(rows: list[dict], audio: bool = True) -> str:
    """Markdown: text, WER, what the recogniser heard, end-to-end RTF (and the audio file)."""
    from multidiff.metrics.tables import markdown_table

    keys, names = ["text", "wer", "heard", "rtf_end_to_end", "file"], ["text", "WER", "recogniser heard", "RTF", "audio"]
    if not audio:
        keys, names = keys[:-1], names[:-1]
    cell = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)
    return markdown_table(names, [[r.get(k) for k in keys] for r in rows], [cell] * len(keys), missing="")


def export_voice(model, directory: Path, info: dict) -> Path:
    """The voice as the package ships it: checkpoint + voice.json (+ samples.md from ``info["samples"]``);
    refuses weights over MAX_VOICE_MB. Other files in ``directory`` (the package's README) are kept."""
    from multidiff.core.checkpoint import CONFIG, WEIGHTS
    from multidiff.core.io import write_json_atomic

    ours = (WEIGHTS, CONFIG, "voice.json", "samples.md")
    kept = {p.name: p.read_bytes() for p in directory.glob("*") if p.is_file() and p.name not in ours}
    model.save(directory)  # replaces the folder as a whole (an atomic checkpoint write)
    for name, data in kept.items():
        (directory / name).write_bytes(data)
    mb = (directory / WEIGHTS).stat().st_size / 2 ** 20
    if mb > MAX_VOICE_MB:
        raise SystemExit(f"{directory / WEIGHTS} is {mb:.1f} MB, over the {MAX_VOICE_MB:.0f} MB a shipped voice may take; "
                         "train a smaller --size")
    write_json_atomic(directory / "voice.json", {**info, "weights_mb": round(mb, 2)}, indent=1)
    if info.get("samples"):
        (directory / "samples.md").write_text(
            f"# Samples of the shipped voice\n\n{info.get('command', '')}\n\n"
            f"{sample_table(info['samples'], audio=False)}\n\nRTF: synthesis time (decoder + Griffin-Lim) / audio "
            f"duration on {info.get('device', 'the machine')}; WER: PocketSphinx (multidiff/metrics/asr.py).\n")
    return directory


def _ceiling_model():
    """A TTS whose weights are never used: the ceiling rows need only its mel settings and vocoder."""
    from multidiff.audio.text import TextFrontend
    from multidiff.nets.gradtts import GradTTSConfig, GradTTSNet
    from multidiff.tasks import tts

    fe = TextFrontend("char")
    return tts.TTS(GradTTSNet(GradTTSConfig(n_vocab=fe.n_symbols, **tts.PRESETS["tiny"])), fe, device="cpu")


def main(argv=None) -> int:
    from multidiff.core.samplers import names

    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="LJ Speech-style folder (default: ljspeech_subset on the data path)")
    p.add_argument("--out", default="runs/tts_ljspeech", help="checkpoint + outputs folder")
    p.add_argument("--checkpoint", help="evaluate this trained voice instead of training one")
    p.add_argument("--ceiling-only", action="store_true", help="only the recorded audio and recorded mel + vocoder rows")
    p.add_argument("--resume", action="store_true", help="continue the training run in --out (same flags)")
    p.add_argument("--preset", choices=["cpu"], help="training setting (tasks.tts.TRAINING_PRESETS); flags below win")
    p.add_argument("--size", choices=["gradtts", "small", "cpu", "tiny"], help="default: the preset's, else small")
    p.add_argument("--max-steps", type=int, default=None, help="default: 3000 without --max-minutes")
    p.add_argument("--max-minutes", type=float, default=None, help="training-time budget (summed over resumes)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--warmup-steps", type=int, default=None)
    p.add_argument("--segment-frames", type=int, default=None)
    p.add_argument("--holdout", type=int, default=20)
    p.add_argument("--eval-clips", type=int, default=20)
    p.add_argument("--sampler-steps", type=int, nargs="+", default=[4, 10, 50],
                   help="decoder step counts to evaluate")
    p.add_argument("--samplers", nargs="+", default=None, choices=names("continuous") + names("flow"),
                   help="default: the voice's. VP-SDE voices: euler_ode, euler_sde (Grad-TTS' ODE / SDE Euler steps), "
                        "dpm_solver (DPM-Solver++(2M)), ...; flow voices: euler, midpoint")
    p.add_argument("--temperature", type=float, default=None,
                   help="default: the voice's; with --export-voice, the exported voice's default")
    p.add_argument("--no-f0", action="store_true")
    p.add_argument("--no-asr", action="store_true", help="skip WER/CER (they need pocketsphinx and jiwer)")
    p.add_argument("--no-mos", action="store_true", help="skip DNSMOS naturalness (it needs speechmos, onnxruntime)")
    p.add_argument("--eval-every-minutes", type=float, default=0, help="learning-curve point every N training minutes")
    p.add_argument("--curve", help="learning-curve JSON lines (default: OUT/curve.jsonl)")
    p.add_argument("--curve-clips", type=int, default=20, help="held-out clips per curve point")
    p.add_argument("--curve-steps", type=int, default=10, help="decoder steps of a curve point (first --samplers)")
    p.add_argument("--export-voice", help="write the voice here as the package ships it (+ voice.json, samples)")
    p.add_argument("--training-command", action="append",
                   help="with --checkpoint: a command that trained it, kept in voice.json (repeat: one per stage)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.eval_every_minutes < 0:
        p.error("--eval-every-minutes must be >= 0")

    from multidiff.core.io import write_json_atomic
    from multidiff.core.provenance import Run
    from multidiff.datasets.ljspeech import locate_ljspeech, read_metadata, split_holdout
    from multidiff.tasks import tts

    data = locate_ljspeech(args.data)
    items = read_metadata(data)
    _, test = split_holdout(items, args.holdout)
    out = Path(args.out)
    recognizer = None
    if not args.no_asr:
        from multidiff.metrics.asr import Recognizer
        recognizer = Recognizer()
    if not args.no_mos:  # before hours of training: say at once when the judge is missing
        from multidiff.metrics.naturalness import require_speechmos
        try:
            require_speechmos()
        except ImportError as err:
            p.error(f"{err}; or pass --no-mos")
    run = Run(["benchmarks/tts_ljspeech.py", *argv])
    report = {"command": "python benchmarks/tts_ljspeech.py " + shlex.join(argv), "args": vars(args),
              "data": {"name": data.name, "folder": os.path.relpath(data.resolve(), Path(__file__).resolve().parents[1]), "clips": len(items), "clips_train": len(items) - args.holdout,
                       "holdout": args.holdout, "clips_eval": min(args.eval_clips, len(test))},
              "results": {}}
    evaluate = lambda model, **kw: tts.evaluate(model, test[: args.eval_clips], temperature=args.temperature,
                                                with_f0=not args.no_f0, seed=args.seed, progress=print,
                                                asr=recognizer if recognizer else False, mos=not args.no_mos, **kw)
    if args.ceiling_only:
        res = evaluate(_ceiling_model(), sampler_steps=(), ceiling=True, prior=False)
        report["ceiling"], report["transcripts"] = res.rows, res.transcripts
        report.update(run.provenance())
        print(f"\n{res.table()}")
        write_json_atomic(out / "report.json", report, indent=1)
        return 0

    t0 = time.perf_counter()
    if args.checkpoint:
        model = tts.load(args.checkpoint, device=args.device)
    else:
        settings = tts.preset_settings(args.preset, size=args.size or (None if args.preset else "small"),
                                       batch_size=args.batch_size, segment_frames=args.segment_frames, lr=args.lr,
                                       warmup_steps=args.warmup_steps, max_minutes=args.max_minutes)
        max_steps = args.max_steps if args.max_steps or args.max_minutes else 3000
        points = None
        if args.eval_every_minutes:
            points = curve(Path(args.curve) if args.curve else out / "curve.jsonl", args.eval_every_minutes,
                           test[: args.curve_clips], recognizer if recognizer else False, args.curve_steps,
                           args.samplers[0] if args.samplers else None, args.temperature, args.seed, args.resume,
                           mos=not args.no_mos)
        model = tts.train(items, out=out, max_steps=max_steps, device=args.device, holdout=args.holdout,
                          seed=args.seed, resume=args.resume, on_epoch_end=points, **settings)
        report["settings"] = {**{k: v for k, v in settings.items() if k != "train_config"},
                              "train_config": vars(settings["train_config"])}
    run.device = model.device
    report.update(run.provenance(), wall_seconds=time.perf_counter() - t0,
                  trained=model.trained, training_minutes=model.trained.get("seconds", float("nan")) / 60,
                  parameters=sum(q.numel() for q in model.net.parameters()),
                  net=model.net.cfg.to_dict(), history=model.history)

    from multidiff.audio.files import save_mel_png

    rows, transcripts = [], {}
    args.samplers = args.samplers or [model.diffusion.default_sampler]
    if args.training_command:
        report["training_commands"] = args.training_command
    for i, sampler in enumerate(args.samplers):  # the ceiling and the prior once, then each sampler's decoder rows
        res = evaluate(model, sampler_steps=args.sampler_steps, sampler=sampler, ceiling=i == 0, prior=i == 0)
        if i == 0:
            save_mel_png(out / "mels.png", res.examples, test[0].text[:80])
        rows += res.rows
        transcripts.update(res.transcripts)
    report["results"], report["transcripts"] = rows, transcripts
    print(f"\n{tts.EvalResult(rows=rows).table()}\n")
    if args.export_voice:
        if args.temperature is not None:  # the voice ships with the temperature it was measured at
            from dataclasses import replace
            model.diffusion = replace(model.diffusion, temperature=args.temperature)
        steps = 10 if 10 in args.sampler_steps else args.sampler_steps[0]
        report["samples"] = samples(model, [u.text for u in test[:2]] + NEW_TEXTS, out, recognizer, args.samplers[0],
                                    steps, args.temperature, args.seed)
        (out / "samples.md").write_text(sample_table(report["samples"]) + "\n")
        keep = ("command", "training_commands", "data", "commit", "device", "cpu_count", "threads", "parameters", "training_minutes",
                "trained", "settings", "results", "samples")
        export_voice(model, Path(args.export_voice), {k: report[k] for k in keep if k in report}
                     | {"date": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        print(f"voice exported to {args.export_voice}; sample table in {out / 'samples.md'}")
    write_json_atomic(out / "report.json", report, indent=1)
    print(f"training {report['training_minutes']:.1f} min, {report['parameters']} parameters, "
          f"{len(model.history)} epochs; report in {out / 'report.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
