import sys
from pathlib import Path

import pytest
import torch

# Let tests import the shared oracle helpers (tests/oracle.py).
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _seeded():
    # Every test draws the same random numbers on every run: a failure reproduces.
    torch.manual_seed(0)
