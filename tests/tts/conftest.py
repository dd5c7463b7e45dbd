import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The small convolutions of these tiny models run faster on one thread than on two busy ones."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def lj_dir(data_dir):
    return data_dir / "ljspeech_subset"


@pytest.fixture(scope="session")
def short_clips(lj_dir):
    """Two of the shortest real clips of the subset (1.5-1.6 s)."""
    from multidiff.datasets.ljspeech import read_metadata

    items = {u.id: u for u in read_metadata(lj_dir)}
    return [items["LJ002-0020"], items["LJ002-0035"]]
