"""Time gated's modules against torch.nn in one run and print the ratios.

The benchmark itself lives in ``gated.bench`` (also ``gated bench`` and
``python -m gated.bench``); this script is kept so ``make bench`` and old
commands still work. Same options: --shapes a,b,c --modules LSTM,GRU,RNN
--engine auto --seconds 1.0 --json; see ``python -m gated.bench --help``.
"""

from __future__ import annotations

import sys

from gated.bench import main

if __name__ == "__main__":
    sys.exit(main())
