from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def shared_data() -> Path:
    """The read-only real-data samples in ../shared/data (skip when absent)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real-data samples not found at {SHARED_DATA} (the ../shared/data folder is absent)")
    return SHARED_DATA


@pytest.fixture
def samples(monkeypatch) -> Path:
    """The samples the shipped real-data configs read (``data/samples/``, relative to the project
    root, made by ``python data/fetch_samples.py``): runs the test from the project root; skips
    when they are absent."""
    folder = ROOT / "data" / "samples"
    if not folder.is_dir():
        pytest.skip(f"the tracking samples are not in {folder} (python data/fetch_samples.py fetches them, "
                    "or --from ../shared/data links a local copy)")
    monkeypatch.chdir(ROOT)
    return folder
