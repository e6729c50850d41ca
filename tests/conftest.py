import sys
from pathlib import Path

# Let tests import the shared oracle helpers (tests/oracle.py).
sys.path.insert(0, str(Path(__file__).parent))
