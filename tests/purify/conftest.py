import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    # the tiny models here are latency-bound; one thread avoids oversubscription on shared CPUs
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
