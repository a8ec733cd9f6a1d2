"""Shared test settings: one torch thread (faster on 2 shared cores), paths
to the real public data in ../shared/data (or $MMPRM_SHARED_DATA)."""

import os
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # loopback.py
SHARED_DATA = Path(os.environ.get("MMPRM_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data; absent, its tests skip on a developer's machine but fail in CI,
    where the shared folder is laid beside the clone, so a lost path cannot pass unseen."""
    if not SHARED_DATA.is_dir():
        message = f"real data folder {SHARED_DATA} is absent (set MMPRM_SHARED_DATA to its path)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_DATA
