"""``python -m gated.engines.warm`` (run by ``make``) compiles every kind the fused engine runs.

    .venv/bin/python -m pytest tests/test_warm.py
"""

from __future__ import annotations

import torch

import gated.kinds
from gated.engines import persistent_sync, warm


def test_every_kind_with_fused_kernels_is_warmed():
    # A kind added later without a line in warm.KINDS would compile on a user's first call again.
    warmed = {cls(*warm.SIZES[:2], **options).kind.name for cls, options in warm.KINDS.values()}
    fused = {name for name, kind in gated.kinds.KINDS.items() if kind.kernels is not None}
    assert fused <= warmed


def test_warm_runs_forward_backward_split_and_stream_of_each(monkeypatch):
    split_calls = []
    original = persistent_sync.run_pair
    monkeypatch.setattr(persistent_sync, "run_pair", lambda k, a: split_calls.append(k.__name__) or original(k, a))
    lines = []
    done = warm.warm(report=lines.append)
    assert done == list(warm.KINDS) and len(lines) == len(warm.KINDS)
    # the LSTM-shaped kinds also ran on two threads, forward and backward (a stream in eval may add forwards)
    assert split_calls.count("lstm_backward_part") == len(warm.SPLITS)
    assert split_calls.count("lstm_forward_part") >= len(warm.SPLITS)
    assert persistent_sync.FORCE is None  # left as it was
    assert torch.is_grad_enabled()
