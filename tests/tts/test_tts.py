import math

import numpy as np
import pytest
import torch

from multidiff.audio.mel import MelConfig
from multidiff.audio.text import TextFrontend
from multidiff.nets.gradtts import GradTTSConfig, GradTTSNet
from multidiff.tasks import tts

from .conftest import TEXT, TINY


def test_tiny_model_overfits_two_real_clips(trained):
    model, out = trained
    losses = [h["train_loss"] for h in model.history]
    assert len(losses) == 30 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0]


def test_loss_has_the_three_grad_tts_terms(short_clips):
    fe = TextFrontend("char")
    batch = tts.collate(tts.prepare(short_clips, fe, MelConfig()))
    before = {k: v.clone() for k, v in batch.items()}
    net = GradTTSNet(GradTTSConfig(n_vocab=fe.n_symbols, **TINY))
    parts = {}
    loss = tts.gradtts_loss(net, batch, tts.DiffusionConfig(segment_frames=32), parts)
    assert set(parts) == {"duration", "prior", "diffusion"}
    assert float(loss.detach()) == pytest.approx(sum(parts.values()), rel=1e-5)
    # the prior loss of an untrained encoder is about the Gaussian NLL of log-mels around 0
    assert parts["prior"] > 0.5 * math.log(2 * math.pi)
    assert 0.5 < parts["diffusion"] < 2  # eps-MSE of an untrained network is near var(eps) = 1
    assert all(torch.equal(batch[k], before[k]) for k in batch)


def test_synthesis_length_follows_the_durations(trained):
    model, _ = trained
    mu_y, y_mask, y_len = model.prior([TEXT])
    ids = torch.tensor([model.frontend.encode(TEXT)])
    _, logw, _ = model.net.encode(ids, torch.tensor([ids.shape[1]]))
    assert int(y_len[0]) == int(torch.ceil(torch.exp(logw)).sum())
    wav, sr = model.synthesize(TEXT, sampler_steps=3)
    assert sr == 22050 and wav.dtype == np.float32 and np.isfinite(wav).all()
    assert len(wav) == int(y_len[0]) * 256
    slow, _ = model.synthesize(TEXT, sampler_steps=2, length_scale=2.0)
    assert len(slow) == 2 * len(wav)


def test_samplers_and_seeds(trained):
    model, _ = trained
    a = model.synthesize_mel(TEXT, sampler_steps=4, seed=1)
    assert a.shape[0] == 80 and torch.isfinite(a).all()
    assert torch.equal(a, model.synthesize_mel(TEXT, sampler_steps=4, seed=1))
    assert not torch.equal(a, model.synthesize_mel(TEXT, sampler_steps=4, seed=2))
    b = model.synthesize_mel(TEXT, sampler_steps=4, sampler="dpm_solver", seed=1)
    assert b.shape == a.shape and torch.isfinite(b).all()
    batch = model.synthesize_mels([TEXT, "The press yard."], sampler_steps=2)
    assert len(batch) == 2 and batch[0].shape == a.shape
    with pytest.raises(ValueError, match="sampler must be"):
        model.synthesize_mel(TEXT, sampler="heun")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        model.synthesize_mel(TEXT, temperature=0)


def test_save_load_round_trip_gives_identical_mels(trained, tmp_path):
    model, out = trained
    model.save(tmp_path / "voice")
    again = tts.load(tmp_path / "voice", device="cpu")
    assert again.frontend.config() == model.frontend.config()
    assert torch.equal(again.synthesize_mel(TEXT, sampler_steps=3, seed=5), model.synthesize_mel(TEXT, sampler_steps=3, seed=5))
    trained_dir = tts.load(out, device="cpu")  # train()'s out folder resolves to out/final
    assert torch.equal(trained_dir.synthesize_mel(TEXT, sampler_steps=2), model.synthesize_mel(TEXT, sampler_steps=2))


def test_a_saved_voice_records_its_schedule_and_a_disagreeing_record_is_refused(trained, tmp_path):
    import json

    from multidiff.core.schedules import VPSDE

    model, _ = trained
    model.save(tmp_path / "voice")
    path = tmp_path / "voice" / "config.json"
    config = json.loads(path.read_text())
    assert config["config"]["schedule"] == model.diffusion.schedule.to_config() == VPSDE(0.05, 20.0).to_config()
    config["config"]["schedule"] = VPSDE(0.1, 20.0).to_config()  # edited by hand: no longer the diffusion settings
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="records the schedule VPSDE"):
        tts.load(tmp_path / "voice", device="cpu")


def test_clear_errors(trained, tmp_path, short_clips):
    model, _ = trained
    with pytest.raises(ValueError, match="text is empty"):
        model.synthesize("")
    with pytest.raises(ValueError, match="no pronounceable characters"):
        model.synthesize("!!! ... ???")
    for bad in (None, 123):  # issue 14: these said "text is empty"
        with pytest.raises(TypeError, match=f"text must be a str, got {type(bad).__name__}"):
            model.synthesize(bad)
    with pytest.raises(ValueError, match="outside the Latin alphabet.*'東'"):
        model.synthesize("東京")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        tts.load(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no metadata.csv"):
        tts.train(tmp_path, max_steps=1)
    with pytest.raises(ValueError, match="size must be"):
        tts.train(short_clips, size="huge", holdout=0)


def test_plugging_another_vocoder(trained):
    model, _ = trained
    calls = []

    def vocoder(mel):
        calls.append(mel.shape)
        return torch.zeros(mel.shape[-1] * 256)

    wav, _ = model.synthesize(TEXT, sampler_steps=2, vocoder=vocoder)
    assert calls and calls[0][0] == 80 and len(wav) == calls[0][-1] * 256


class OracleNet(torch.nn.Module):
    """The ideal eps-predictor when every mel equals its prior mean (y_0 = mel - mu = 0):
    y_t = sqrt(1 - ab) eps, so eps = y_t / sqrt(1 - ab)."""

    n_down = 1

    def __init__(self, alpha_bar_of):
        super().__init__()
        self.alpha_bar_of = alpha_bar_of

    def denoise(self, y_t, y_mask, mu_y, t):
        return y_t / (1 - self.alpha_bar_of(t).to(y_t)).sqrt()[:, None, None]


def _oracle_error(sampler, sampler_steps):
    diffusion = tts.DiffusionConfig()
    model = tts.TTS(OracleNet(diffusion.schedule.alpha_bar_of), TextFrontend("char"), diffusion=diffusion, device="cpu")
    mu = torch.randn(2, 80, 16, generator=torch.Generator().manual_seed(0)) - 5
    mask = torch.ones(2, 16)
    mask[1, 10:] = 0
    mel = model.decode(mu * mask[:, None], mask, sampler_steps=sampler_steps, temperature=1.0, sampler=sampler)
    assert mel[1, :, 10:].abs().max() == 0
    return float((mel - mu * mask[:, None]).abs()[mask[:, None].expand_as(mel) > 0].mean())


def test_decoder_lands_on_mu_with_the_oracle_denoiser():
    """The shifted VP-SDE ends at mu when the data is mu: DPM-Solver++ exactly (its last step is the
    data prediction); Grad-TTS' first-order Euler up to an error that shrinks with the step count."""
    assert _oracle_error("dpm_solver", 10) < 1e-5
    coarse, fine = _oracle_error("euler_ode", 10), _oracle_error("euler_ode", 100)
    assert coarse < 0.2 and fine < 0.5 * coarse


class GaussianOracleNet(OracleNet):
    """The ideal eps-predictor when ``mel - mu`` is N(0, 0.5^2) in every entry (the core's closed-form case)."""

    def denoise(self, y_t, y_mask, mu_y, t):
        ab = self.alpha_bar_of(t).to(y_t)[:, None, None]
        return (1 - ab).sqrt() * y_t / (ab * 0.25 + 1 - ab)


@pytest.mark.parametrize("steps,std", [(4, 0.340), (10, 0.464)])
def test_decoder_takes_grad_tts_steps(steps, std):
    """Issue 14: the decoder runs Grad-TTS' Euler steps (beta(t) h at the step mid-points of a uniform
    grid from 1 to 0); the scheme before gave 0.724 / 0.605 for this spread (target 0.5)."""
    diffusion = tts.DiffusionConfig()
    model = tts.TTS(GaussianOracleNet(diffusion.schedule.alpha_bar_of), TextFrontend("char"), diffusion=diffusion, device="cpu")
    mu = torch.randn(8, 80, 64, generator=torch.Generator().manual_seed(0))
    mel = model.decode(mu, torch.ones(8, 64), sampler_steps=steps, temperature=1.0, sampler="euler_ode")
    assert float((mel - mu).std()) == pytest.approx(std, abs=0.01)
