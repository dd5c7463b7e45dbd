from dataclasses import replace

import pytest
import torch


@pytest.fixture(scope="session")
def lj_dir(data_dir):
    return data_dir / "ljspeech_subset"


@pytest.fixture(scope="session")
def short_clips(lj_dir):
    """Two of the shortest real clips of the subset (1.5-1.6 s)."""
    from multidiff.datasets.ljspeech import read_metadata

    items = {u.id: u for u in read_metadata(lj_dir)}
    return [items["LJ002-0020"], items["LJ002-0035"]]


TINY = dict(enc_channels=32, enc_filter=64, enc_layers=1, dp_filter=32, dec_dim=8, dec_mults=(1, 2), dec_groups=4,
            dec_attn_dim=8)
TEXT = "In eighteen thirteen"


@pytest.fixture(scope="session")
def trained(short_clips, tmp_path_factory):
    """A tiny voice trained for 30 steps on two real clips, also saved to ``out/final``."""
    from multidiff.tasks import tts

    out = tmp_path_factory.mktemp("voice")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = tts.train(short_clips, out=None, max_steps=30, epochs=30, batch_size=2, lr=3e-3, holdout=0, net=TINY,
                          diffusion={"segment_frames": 32}, device="cpu", progress=False, frontend="char",
                          train_config=replace(tts.DEFAULT_TRAIN_CONFIG, ema_decay=0))
    finally:
        torch.set_num_threads(old)
    model.save(out / "final")
    return model, out
