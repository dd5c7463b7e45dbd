import numpy as np
import pytest
import soundfile as sf

from multidiff.datasets.ljspeech import load_audio, read_metadata, split_holdout


def test_reads_the_real_subset(lj_dir):
    items = read_metadata(lj_dir)
    assert len(items) == 300 and items[0].id == "LJ001-0001" and items[-1].path.suffix == ".flac"
    assert items[1].text == "in being comparatively modern."
    train, test = split_holdout(items, 20)
    assert len(train) == 280 and test[0] is items[280] and test[-1] is items[-1]
    wav = load_audio(items[1].path)
    assert wav.dtype == np.float32 and wav.ndim == 1 and abs(len(wav) / 22050 - 1.9) < 0.05


def test_resamples_and_downmixes_with_a_warning(tmp_path, short_clips):
    wav = load_audio(short_clips[0].path)
    (tmp_path / "wavs").mkdir()
    stereo = np.stack([wav, 0.5 * wav], 1)[::2]  # 11025 Hz, two channels
    sf.write(tmp_path / "wavs" / "X-1.wav", stereo, 11025)
    (tmp_path / "metadata.csv").write_text("X-1|Hello there.|Hello there.\n")
    (item,) = read_metadata(tmp_path)
    with pytest.warns(UserWarning, match="resampling 11025 Hz to 22050 Hz"):
        out = load_audio(item.path)
    assert out.ndim == 1 and abs(len(out) - 2 * len(stereo)) <= 2
    assert np.corrcoef(out[1000:3000:2], 0.75 * wav[1000:3000:2])[0, 1] > 0.9


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metadata.csv"):
        read_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("LJ-1|text|text\n")
    with pytest.raises(FileNotFoundError, match="no audio for LJ-1"):
        read_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("just a line without separators\n")
    with pytest.raises(ValueError, match="expected 'id|raw text|normalized text'"):
        read_metadata(tmp_path)
    with pytest.raises(ValueError, match="holdout"):
        split_holdout([1, 2], 2)
