from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def modelnet(data_dir) -> Path:
    root = data_dir / "modelnet10_pcd"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    return root


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread for these tiny models: on a shared 2-core machine a second thread spins
    against the other processes and makes each step several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
