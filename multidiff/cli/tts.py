"""``multidiff tts train|synthesize|evaluate``: Grad-TTS text to speech (Popov et al. 2021)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_scale_options, rank_zero, scaled

SIZES = ("gradtts", "small", "cpu", "tiny")  # tasks.tts.PRESETS (not imported here: the parser loads no torch)
TRAINING_PRESETS = ("cpu",)                 # tasks.tts.TRAINING_PRESETS


def add_parser(sub) -> None:
    p = sub.add_parser("tts", help="text to speech with a Grad-TTS diffusion decoder",
                       description="Train a Grad-TTS voice on an LJ Speech-style folder, synthesize, evaluate.")
    cmds = p.add_subparsers(dest="tts_command", metavar="COMMAND")
    cmds.required = True

    t = cmds.add_parser("train", help="train on a folder with metadata.csv + wavs/")
    t.add_argument("--data", help="LJ Speech-style folder (default: ljspeech_subset / LJSpeech-1.1 on the data path)")
    t.add_argument("--out", required=True, help="checkpoint folder (out/last is resumable, out/final is the voice)")
    t.add_argument("--preset", choices=TRAINING_PRESETS,
                   help="training setting (network, batch, crop, lr, warm-up, EMA); cpu: for a few CPU cores and "
                        "hours. Flags given below win")
    t.add_argument("--size", choices=SIZES, help="network size preset (default: the --preset's, else gradtts)")
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--max-minutes", type=float, default=None, help="training-time budget (summed over resumes)")
    t.add_argument("--epochs", type=int, default=None, help="default: the --preset's, else 1000")
    t.add_argument("--batch-size", type=int, default=None, help="default: the --preset's, else 16")
    t.add_argument("--lr", type=float, default=None, help="default: the --preset's, else 1e-4 (Grad-TTS)")
    t.add_argument("--warmup-steps", type=int, default=None, help="linear lr warm-up (default: the --preset's, else 0)")
    t.add_argument("--segment-frames", type=int, default=None,
                   help="decoder training crop in frames (default: the --preset's, else 172)")
    t.add_argument("--holdout", type=int, default=20, help="last N utterances held out")
    t.add_argument("--frontend", default="auto", choices=["auto", "phoneme", "char"])
    t.add_argument("--resume", action="store_true")
    t.add_argument("--device", default="auto")
    t.add_argument("--seed", type=int, default=0)
    add_scale_options(t)
    t.set_defaults(func=_train)

    s = cmds.add_parser("synthesize", help="text -> WAV and a mel PNG")
    s.add_argument("--checkpoint", help="a trained voice (default: the voice shipped with multidiff)")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="one sentence")
    src.add_argument("--text-file", help="one sentence per line; decoded as one batch, written as OUT_001.wav ...")
    s.add_argument("-o", "--output", default="out.wav", help="WAV path (with --text-file: the name pattern)")
    s.add_argument("--png", action=argparse.BooleanOptionalAction, default=True,
                   help="write OUT.png with the prior mu and the decoded mel beside the WAV (default; --no-png skips)")
    _decoding_args(s)
    s.set_defaults(func=_synthesize)

    e = cmds.add_parser("evaluate", help="WER/CER, MCD-DTW, log-F0 RMSE and RTF on the held-out clips")
    e.add_argument("--checkpoint", help="a trained voice (default: the voice shipped with multidiff)")
    e.add_argument("--data", help="LJ Speech-style folder (default: the data path)")
    e.add_argument("--holdout", type=int, default=20, help="evaluate on the last N utterances")
    e.add_argument("--clips", type=int, default=None, help="use only the first K of them")
    e.add_argument("--sampler-steps", type=int, nargs="+", default=[4, 10, 50],
                   help="decoder step counts to evaluate (besides the prior alone)")
    e.add_argument("--no-f0", action="store_true", help="skip pYIN F0 (faster)")
    e.add_argument("--no-asr", action="store_true",
                   help="skip word/character error rates (they need the bench extra: pocketsphinx, jiwer)")
    e.add_argument("--mos", action="store_true",
                   help="add DNSMOS P.835 naturalness (OVRL, SIG, BAK; needs speechmos and onnxruntime)")
    e.add_argument("--no-ceiling", action="store_true",
                   help="skip the recorded audio and recorded mel + vocoder rows")
    e.add_argument("--json", help="write the rows as JSON here")
    e.add_argument("--png", help="write a mel PNG of the first clip here")
    _decoding_args(e, sampler_steps=False)
    e.set_defaults(func=_evaluate)


def _decoding_args(p, sampler_steps: bool = True) -> None:
    if sampler_steps:
        p.add_argument("--sampler-steps", type=int, default=10, help="decoder steps")
    from ..core.samplers import names
    p.add_argument("--sampler", default=None, choices=names("continuous") + names("flow"),
                   help="default: the voice's (euler for a flow-matching decoder, euler_ode for a VP-SDE one). "
                        "VP-SDE voices: euler_ode / euler_sde (Grad-TTS' Euler steps), dpm_solver (DPM-Solver++(2M)); "
                        "flow voices: euler, midpoint (two network calls per step)")
    p.add_argument("--temperature", type=float, default=None,
                   help="noise is divided by it; default: the voice's (Grad-TTS: 1.5)")
    p.add_argument("--length-scale", type=float, default=1.0, help=">1 speaks slower")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")


def _train(args) -> int:
    from ..tasks import tts

    settings = tts.preset_settings(args.preset, size=args.size, batch_size=args.batch_size,
                                   segment_frames=args.segment_frames, lr=args.lr, warmup_steps=args.warmup_steps,
                                   epochs=args.epochs, max_minutes=args.max_minutes)
    settings["train_config"] = scaled(settings["train_config"], args) or settings["train_config"]
    model = tts.train(args.data, out=args.out, max_steps=args.max_steps, device=args.device, holdout=args.holdout,
                      frontend=args.frontend, seed=args.seed, resume=args.resume, **settings)
    if not rank_zero():
        return 0
    last = model.history[-1] if model.history else {}
    print(f"trained {sum(p.numel() for p in model.net.parameters())} parameters; last epoch {last}; "
          f"voice saved to {Path(args.out) / 'final'}")
    return 0


def _synthesize(args) -> int:
    from ..audio.files import save_mel_png, write_wav
    from ..tasks import tts

    if args.text is not None:
        texts = [args.text]
    else:  # read before the voice loads: a wrong path fails at once
        if not Path(args.text_file).is_file():
            raise FileNotFoundError(f"--text-file {args.text_file}: no such file (one sentence per line expected)")
        texts = [ln.strip() for ln in Path(args.text_file).read_text(encoding="utf-8").splitlines() if ln.strip()]
        if not texts:
            raise ValueError(f"{args.text_file} holds no sentences (one per line expected)")
    model = tts.load(args.checkpoint, device=args.device)
    mels, priors = model.synthesize_mels(texts, args.sampler_steps, args.temperature, args.sampler, args.length_scale,
                                         args.seed, return_prior=True)
    out = Path(args.output)
    for i, (text, mel, mu) in enumerate(zip(texts, mels, priors)):
        path = out if len(texts) == 1 else out.with_name(f"{out.stem}_{i + 1:03d}{out.suffix or '.wav'}")
        write_wav(path, model.vocode(mel), model.sample_rate)
        written = [path]
        if args.png:
            written.append(save_mel_png(path.with_suffix(".png"),
                                        {"prior mu": mu, f"decoded ({args.sampler_steps} steps)": mel}, text[:80]))
        print(f"{' + '.join(map(str, written))}: {mel.shape[-1] * model.mel.hop_length / model.sample_rate:.2f} s")
    return 0


def _evaluate(args) -> int:
    from ..audio.files import save_mel_png
    from ..datasets.ljspeech import locate_ljspeech, read_metadata, split_holdout
    from ..tasks import tts

    if not args.no_asr:  # fail before the long part, and say how to go without
        try:
            import jiwer  # noqa: F401
            import pocketsphinx  # noqa: F401
        except ImportError:
            raise ImportError('word error rates need pocketsphinx and jiwer: pip install "multidiff[bench]", or pass '
                              '--no-asr') from None
    model = tts.load(args.checkpoint, device=args.device)
    _, test = split_holdout(read_metadata(locate_ljspeech(args.data)), args.holdout)
    test = test[: args.clips] if args.clips else test
    res = tts.evaluate(model, test, args.sampler_steps, args.sampler, args.temperature, with_f0=not args.no_f0,
                       seed=args.seed, progress=print, asr=not args.no_asr, ceiling=not args.no_ceiling, mos=args.mos)
    print(res.table())
    if args.json:
        from ..core.io import write_json_atomic

        write_json_atomic(args.json, res.rows, indent=1)
    if args.png:
        save_mel_png(args.png, res.examples, test[0].text[:80])
    return 0
