from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def modelnet(data_dir) -> Path:
    root = data_dir / "modelnet10_pcd"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    return root
