"""Engines run the loop over time; modules decide what to run, engines how.

Every engine has the same signature as :func:`reference.run` and computes the
same numbers (1e-5 in float32):

* ``reference``: a Python loop over the cells of ``cells.py``; runs anything,
  and is the only one whose trace can be differentiated.
* ``fused``: the whole loop in one numba kernel per layer and direction, with
  its own backward (``fused.py``, ``kernels.py``); CPU, float32/float64.
* ``native``: torch's own kernels (what ``torch.nn`` runs); no trace.

``engine="auto"`` picks one per call with :func:`choose`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import fused, native, reference

ENGINES = {"reference": reference.run, "fused": fused.run, "native": native.run}
ENGINE_CHOICES = ("auto", *ENGINES)


def check_engine(name: str) -> str:
    if name not in ENGINE_CHOICES:
        choices = ", ".join(repr(c) for c in ENGINE_CHOICES)
        raise ValueError(f"engine must be one of {choices}, got {name!r}")
    return name


def select(name: str, module=None, x: Tensor | None = None, state=(), record: bool = False):
    """The run function for ``name``; for "auto", the one :func:`choose` picks for this call."""
    check_engine(name)
    if name == "auto":
        name = "reference" if module is None else choose(module, x, state, record)
    return ENGINES[name]


def needs_grad(module, x: Tensor, state=()) -> bool:
    """Will autograd want gradients of this call (input, state or any parameter)?"""
    if not torch.is_grad_enabled():
        return False
    return x.requires_grad or any(s.requires_grad for s in state) or any(p.requires_grad for p in module.parameters())


# Where the fused kernel beats torch's own, measured on the 2-core build machine (AVX-512,
# torch 2.13 MKL) with benchmarks/sweep_engines.py; see the table in that file's output
# and README-engines.md. The fused engine wins while one step's matrix product is small
# (per-call overhead of torch's kernels dominates); once batch * hidden grows, MKL's
# multithreaded GEMM inside torch's kernel wins. Bounds are on batch * hidden_size.
FUSED_WINS_UP_TO = {"LSTM": 1024, "GRU": 4096, "RNN_TANH": 2048, "RNN_RELU": 2048}


def choose(module, x: Tensor, state=(), record: bool = False) -> str:
    """The fastest engine that can do what is asked (see FUSED_WINS_UP_TO for the measurements)."""
    fused_ok = fused.supports(module, x) is None
    if record:
        # Only the reference engine can differentiate through recorded gates; without
        # gradients the fused kernel records them at almost the cost of a forward.
        if needs_grad(module, x, state) or not fused_ok:
            return "reference"
        return "fused"
    if not fused_ok:
        return "native"
    batch = x.size(1)
    if batch == 0:
        return "native"
    return "fused" if batch * module.hidden_size <= FUSED_WINS_UP_TO[module.mode] else "native"
