import librosa
import numpy as np
import pytest
import torch

from multidiff.audio.mel import LOG_CLAMP, MelConfig, mel_spectrogram
from multidiff.audio.vocoder import GriffinLim, mel_to_linear
from multidiff.datasets.ljspeech import load_audio


@pytest.fixture(scope="module")
def wav(short_clips):
    return load_audio(short_clips[0].path)


def test_mel_matches_librosa(wav):
    ours = mel_spectrogram(torch.from_numpy(wav))
    padded = np.pad(wav, (384, 384), mode="reflect")
    ref = librosa.feature.melspectrogram(y=padded, sr=22050, n_fft=1024, hop_length=256, win_length=1024,
                                         center=False, power=1.0, n_mels=80, fmin=0, fmax=8000)
    ref = np.log(np.clip(ref, LOG_CLAMP, None))
    assert ours.shape == (80, len(wav) // 256) == ref.shape
    assert np.abs(ours.numpy() - ref).max() < 0.05
    batch = mel_spectrogram(torch.from_numpy(np.stack([wav, wav])))
    assert torch.allclose(batch[1], ours, atol=1e-5)


def test_mel_errors_and_config_checks():
    with pytest.raises(ValueError, match="too short"):
        mel_spectrogram(torch.zeros(100))
    with pytest.raises(ValueError, match="shape"):
        mel_spectrogram(torch.zeros(1, 1, 4000))
    with pytest.raises(ValueError, match="fmax"):
        MelConfig(fmax=12000)


def test_mel_inversion_and_griffin_lim(wav):
    mel = mel_spectrogram(torch.from_numpy(wav))
    before = mel.clone()
    lin = mel_to_linear(mel)
    assert lin.shape == (513, mel.shape[1]) and (lin >= 0).all()
    refit = torch.log(torch.clamp(torch.from_numpy(librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80, fmax=8000)) @ lin, min=LOG_CLAMP))
    assert (refit - mel).abs().mean() < 0.1  # the non-negative inverse reproduces the mel

    def mel_error(n_iter):
        out = GriffinLim(n_iter=n_iter)(mel)
        assert out.shape == (mel.shape[1] * 256,) and torch.isfinite(out).all()
        return (mel_spectrogram(out) - mel).abs().mean()

    assert mel_error(32) < 0.75 * mel_error(1)  # the phase iterations make the signal consistent
    assert torch.equal(mel, before)
    with pytest.raises(ValueError, match="log-mel of shape"):
        GriffinLim()(torch.zeros(40, 10))
