"""The flow-matching decoder (issue 27): Matcha's 1-D U-Net, OT-CFM, and training in stages."""
from dataclasses import replace

import pytest
import torch

from multidiff.nets.gradtts import GradTTSConfig, GradTTSNet
from multidiff.nets.mel_unet1d import MelUNet1d
from multidiff.tasks import tts
from multidiff.core.schedules import OTFlow, VPSDE
from multidiff.tasks.tts.model import DiffusionConfig


def test_unet1d_ignores_padding_and_zeroes_it():
    torch.manual_seed(0)
    net = MelUNet1d(n_feats=8, channels=(16, 32), n_mid=1, heads=2, groups=4).eval()
    x, mu, t = torch.randn(2, 8, 24), torch.randn(2, 8, 24), torch.rand(2)
    mask = torch.ones(2, 24)
    mask[1, 13:] = 0
    out = net(x, mask, mu, t)
    assert out.shape == (2, 8, 24) and (out[1, :, 13:] == 0).all()
    x2, mu2 = x.clone(), mu.clone()
    x2[1, :, 13:], mu2[1, :, 13:] = 100.0, -50.0  # whatever the padding holds, the valid frames do not see it
    torch.testing.assert_close(net(x2, mask, mu2, t), out)
    # the transformer blocks never attend to padded frames: their output on the valid frames does not
    # depend on how much padding follows (the GroupNorms do see it, as Grad-TTS' and Matcha's do)
    block = net.mids[0][1]
    h, m = torch.randn(1, 32, 12), torch.ones(1, 1, 12)
    m[..., 7:] = 0
    torch.testing.assert_close(block(h, m)[..., :7], block(h[..., :8], m[..., :8])[..., :7])
    with pytest.raises(ValueError, match="not divisible by 2"):
        net(x[..., :23], mask[:, :23], mu[..., :23], t)


def test_configs_round_trip_and_refuse_unknown_kinds():
    cfg = GradTTSConfig(n_vocab=10, decoder="unet1d", dec_channels=(16, 16), dec_mid=1, dec_groups=4)
    again = GradTTSConfig.from_dict(cfg.to_dict())
    assert again == cfg and isinstance(GradTTSNet(again).decoder, MelUNet1d)
    assert GradTTSConfig.from_dict({"n_vocab": 10}).decoder == "unet2d"  # voices saved before issue 27
    with pytest.raises(ValueError, match="decoder must be one of"):
        GradTTSConfig(n_vocab=10, decoder="wavenet")
    with pytest.raises(ValueError, match="objective must be one of"):
        DiffusionConfig(objective="score")
    assert DiffusionConfig().default_sampler == "euler_ode"
    assert DiffusionConfig(objective="flow").default_sampler == "euler"
    assert DiffusionConfig().schedule == VPSDE(0.05, 20.0)  # Grad-TTS'
    assert DiffusionConfig(objective="flow", sigma_min=1e-3).schedule == OTFlow(1e-3)


def test_decoder_stage_keeps_the_encoder_and_trains_a_flow_decoder(trained, short_clips):
    """stage='decoder' from a trained voice: a fresh 1-D flow decoder learns, the encoder and the
    duration predictor stay bit-identical, and the saved voice samples with Euler flow steps."""
    base, folder = trained
    voice = tts.train(short_clips, init=folder / "final", stage="decoder", max_steps=6, epochs=6, batch_size=2,
                      holdout=0, net={"decoder": "unet1d", "dec_channels": (16, 16), "dec_mid": 1, "dec_groups": 4},
                      diffusion={"objective": "flow", "segment_frames": 32}, device="cpu", progress=False,
                      train_config=replace(tts.DEFAULT_TRAIN_CONFIG, ema_decay=0, lr=3e-3))
    for name, p in base.net.encoder.state_dict().items():
        assert torch.equal(voice.net.encoder.state_dict()[name], p)
    for name, p in base.net.duration.state_dict().items():
        assert torch.equal(voice.net.duration.state_dict()[name], p)
    assert isinstance(voice.net.decoder, MelUNet1d) and voice.diffusion.objective == "flow"
    assert len(voice.history) == 6 and all(torch.isfinite(torch.tensor(h["train_loss"])) for h in voice.history)
    with torch.random.fork_rng(devices=[]):  # the decoder train() started from (seed 0), then moved by its steps
        torch.manual_seed(0)
        start = GradTTSNet(voice.net.cfg).decoder.state_dict()
    assert all(not torch.equal(p, start[k]) for k, p in voice.net.decoder.state_dict().items() if k.endswith("weight"))
    mu, mask, _ = voice.prior(["In eighteen thirteen"])
    calls = []
    net_denoise = voice.net.denoise
    voice.net.denoise = lambda *a: calls.append(a[-1]) or net_denoise(*a)
    mel = voice.decode(mu, mask, sampler_steps=4)
    assert len(calls) == 4 and float(calls[0][0]) == 0.0  # Euler flow steps from t = 0: the voice's default
    assert mel.shape == mu.shape and torch.isfinite(mel).all()
    with pytest.raises(ValueError, match="'euler_ode' needs a continuous-time model"):
        voice.decode(mu, mask, sampler_steps=4, sampler="euler_ode")


def test_decoder_stage_needs_a_trained_voice(short_clips):
    with pytest.raises(ValueError, match="give init="):
        tts.train(short_clips, stage="decoder", max_steps=1)
    with pytest.raises(ValueError, match="stage must be 'all' or 'decoder'"):
        tts.train(short_clips, stage="encoder", max_steps=1)
