import atexit
import os
import shutil
import tempfile
from pathlib import Path

# numba's on-disk cache (librosa's jitted functions) is not safe for processes that fill it at once
# (numba issue 4807: a reader can load a half-written entry and crash the process). Every test process
# (the pytest-xdist controller and each worker, which inherit its environment) takes a cache of its
# own, set here before numba is imported, and removed when it exits.
os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix=f"multidiff-tests-numba-{os.getpid()}-")
atexit.register(shutil.rmtree, os.environ["NUMBA_CACHE_DIR"], ignore_errors=True)

import pytest  # noqa: E402
import torch  # noqa: E402

# one thread: on a shared 2-core box, two threads per process oversubscribe badly (seen: 60x slower)
torch.set_num_threads(int(os.environ.get("MULTIDIFF_TEST_THREADS", "1")))

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATA = Path(os.environ.get("MULTIDIFF_DATA", SHARED))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"real data folder {DATA} is absent")
    return DATA


def run_case(case: dict, ctx=None):
    """Run one row of a bad-input table (``CASES`` in a ``test_bad_inputs.py``; the row format is
    documented in docs/gen_refusals.py): a row with ``raises`` must raise that type with every one
    of ``words`` in its message (case-insensitive); a row with ``check`` must return a value that
    ``check`` accepts. Returns what the call returned, or the exception."""
    if "raises" in case:
        with pytest.raises(case["raises"]) as info:
            case["run"](ctx)
        message = str(info.value).lower()
        missing = [w for w in case["words"] if w.lower() not in message]
        assert not missing, f"{case['id']}: message lacks {missing}: {info.value}"
        return info.value
    result = case["run"](ctx)
    case["check"](result)
    return result


def pytest_generate_tests(metafunc):
    """A test that takes ``bad_input`` runs once per row of its module's ``CASES`` tables (ids
    ``entry/row``): one test per bad-input module, whatever the number of entry points."""
    if "bad_input" in metafunc.fixturenames:
        metafunc.parametrize("bad_input", [pytest.param(case, id=f"{entry.split('(')[0].strip()}/{case['id']}")
                                           for entry, rows in metafunc.module.CASES.items() for case in rows])


@pytest.fixture
def check_case():
    """:func:`run_case` as a fixture, for the parametrised bad-input tables."""
    return run_case
