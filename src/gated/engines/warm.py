"""Compile the fused engine's kernels ahead of time, into numba's cache on disk.

numba compiles a kernel the first time it runs, which costs seconds per cell kind
(10-20 s of CPU for the LSTM's forward and backward on the 2-core build machine), and
keeps the result in its cache (``cache=True``), from which later processes load it in
well under a second. ``make`` runs this module once after installing, so that the
first fused call of a fresh checkout loads its kernels instead of compiling them:

    python -m gated.engines.warm            # float32, every kind the fused engine runs

It runs each kind once forward and backward on a tiny float32 batch (the LSTM also on
two threads, with and without recurrent dropout and zoneout) and one streaming step.
Other dtypes and shapes of arguments compile on first use as before.
"""

from __future__ import annotations

import sys
import time

import torch

import gated

SIZES = (4, 40, 3)  # input size, hidden size (at least the split's 32), batch


KINDS = {  # name: (class, options); the LSTM-shaped ones without projection also run split
    "LSTM": (gated.LSTM, {}),
    "LSTM, regularised": (gated.LSTM, {"recurrent_dropout": 0.1, "zoneout": (0.1, 0.1)}),
    "LSTM, projection": (gated.LSTM, {"proj_size": 8}),
    "GRU": (gated.GRU, {}),
    "GRU, regularised": (gated.GRU, {"recurrent_dropout": 0.1, "zoneout": 0.1}),
    "RNN": (gated.RNN, {}),
    "RNN, relu": (gated.RNN, {"nonlinearity": "relu"}),
    "PeepholeLSTM": (gated.PeepholeLSTM, {}),
    "LayerNormLSTM": (gated.LayerNormLSTM, {}),
    "LayerNormGRU": (gated.LayerNormGRU, {}),
    "MinGRU": (gated.MinGRU, {}),
    "MinLSTM": (gated.MinLSTM, {}),
}
SPLITS = ("LSTM", "LSTM, regularised", "PeepholeLSTM")


def warm(report=print) -> list[str]:
    """Run every kind's kernels once; returns the kinds it ran. ``report`` gets a line per kind."""
    from . import fused, persistent_sync

    reason = fused.available()
    if reason:
        report(f"nothing to compile: {reason}")
        return []
    inputs, hidden, batch = SIZES
    done = []
    for name, (cls, options) in KINDS.items():
        start = time.process_time()
        module = cls(inputs, hidden, engine="fused", **options).train()
        for split in (False, True) if name in SPLITS else (False,):
            persistent_sync.FORCE = split
            try:
                out, _ = module(torch.randn(3, batch, inputs))
                out.sum().backward()
            finally:
                persistent_sync.FORCE = None
        module.eval()
        with torch.no_grad():
            module.stream().step(torch.randn(batch, inputs))
        done.append(name)
        report(f"{name}: {time.process_time() - start:.1f} s")
    return done


def main() -> int:
    start = time.perf_counter()
    warm(lambda line: print(f"  {line}", flush=True))
    print(f"gated: fused kernels compiled into numba's cache in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
