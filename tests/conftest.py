import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RGBKIT_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: pass --runslow to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real LAMOST files and catalogs in ../shared/data (skip when absent)."""
    if not (SHARED / "lamost").is_dir():
        pytest.skip(f"real data folder {SHARED} not found (set RGBKIT_SHARED_DATA)")
    return SHARED


@pytest.fixture(scope="session")
def real_fits(shared_data) -> list[Path]:
    files = sorted((shared_data / "lamost").rglob("*.fits*"))
    # The data README says 152; the folder holds 151 (120 DR1, 20 DR5, 1 DR6, 2 DR7, 5 DR9, 3 DR13).
    assert len(files) == 151, len(files)
    return files


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests (timing-free, but steadier on a shared 2-core machine)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
