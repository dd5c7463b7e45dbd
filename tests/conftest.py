import os
from pathlib import Path

import pytest
import torch

# one thread: on a shared 2-core box, two threads per process oversubscribe badly (seen: 60x slower)
torch.set_num_threads(int(os.environ.get("MULTIDIFF_TEST_THREADS", "1")))

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATA = Path(os.environ.get("MULTIDIFF_DATA", SHARED))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"real data folder {DATA} is absent")
    return DATA
