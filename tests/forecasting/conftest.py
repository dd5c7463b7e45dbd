import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # the tiny models here are dominated by thread hand-off on a shared 2-core box
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)
