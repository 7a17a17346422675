import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _real_data_root() -> Path | None:
    for cand in (os.environ.get("BIOPLAUS_DATA"), REPO.parent / "shared" / "data"):
        if cand and (Path(cand) / "mnist" / "raw" / "train-images-idx3-ubyte.gz").exists():
            return Path(cand)
    return None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = _real_data_root()
    if root is None:
        pytest.skip("real MNIST files not found (set BIOPLAUS_DATA)")
    return root


@pytest.fixture(scope="session")
def mnist_splits(data_root):
    """MNIST loaded once per session, as the harness sees it (55k/5k/10k)."""
    import torch

    from bioplaus_bench import get_task
    from bioplaus_bench.data import load_splits

    return load_splits(get_task("mnist"), data_root, 5000, torch.device("cpu"))


def pytest_collection_modifyitems(config, items):
    """Fast tests first, the `slow` ones (accuracy on real data, paper smoke studies, SLURM) last, so that the
    first failures show within seconds; `-m "not slow"` leaves them out."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is not None)
