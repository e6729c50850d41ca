"""Engines run the loop over time; modules decide what to run, engines how.

Every engine is a module with the same two functions, and computes the same
numbers (1e-5 in float32):

* ``supports(spec, x, record) -> str | None``: None when it can run this call,
  else the reason it cannot;
* ``run(spec, x, lengths, state, record) -> EngineOutput``: the whole stack
  over time-major ``x``.

``spec`` is a :class:`~gated.engines.spec.StackSpec`: the cell kind, sizes and
weights, frozen at the call; engines never see the module. The engines:

* ``reference``: a Python loop over the cells of ``cells.py``; runs anything,
  and is the only one whose trace can be differentiated.
* ``fused``: the whole loop in one numba kernel per layer and direction, with
  its own backward (``fused.py``, ``kernels.py``); CPU, float32/float64.
* ``native``: torch's own kernels (what ``torch.nn`` runs); no trace.

Recurrent dropout (while training) and zoneout (also in eval, as its
expectation) run on the reference engine, and on the fused one for the kinds
whose kernels have them (``Kernels.regularizes``: LSTM, GRU, RNN) with the same
masks (``reference.draw_masks``); ``native`` gives ``StackSpec.regularization``
as its reason. So ``auto`` picks ``fused`` there where it beats the reference
loop (small batch * hidden, measured below), else ``reference``.

``engine="auto"`` picks one per call with :func:`choose`. Under torch's program
tools (``torch.compile``, ``torch.export``, ``torch.func``, ``torch.jit.trace``,
fake tensors, dispatch modes) the fused engine steps aside (``tracing.py``), so
auto runs ``native``, or ``reference`` where torch's kernel cannot run (vmap, a
trace). ``torch.jit.script`` compiles torch.nn's twin of a module instead
(``layers.scriptable_twin``).
"""

from __future__ import annotations

from torch import Tensor

from . import fused, native, reference
from .spec import StackSpec

ENGINES = {"reference": reference, "fused": fused, "native": native}
ENGINE_CHOICES = ("auto", *ENGINES)


def check_engine(name: str) -> str:
    if name not in ENGINE_CHOICES:
        choices = ", ".join(repr(c) for c in ENGINE_CHOICES)
        raise ValueError(f"engine must be one of {choices}, got {name!r}")
    return name


def select(name: str, spec: StackSpec, x: Tensor, state=(), record: bool = False, owner: str = "module"):
    """The engine's run function for ``name``; for "auto", the one :func:`choose` picks for this call.

    A named engine that cannot run this call is an error that says why (``owner`` names the module).
    """
    check_engine(name)
    if name == "auto":
        return ENGINES[choose(spec, x, state, record)].run
    reason = ENGINES[name].supports(spec, x, record)
    if reason:
        raise RuntimeError(f"{owner}: engine={name!r} cannot run here: {reason}")
    return ENGINES[name].run


# Where the fused kernel beats torch's own: the largest batch * hidden_size at which it won,
# for inference (no gradient) and for training (forward+backward), measured on the 2-core
# build machine (AVX-512, torch 2.13 with MKL/oneDNN, shared with another job) by
# benchmarks/sweep_engines.py: native time / fused time, T=50, I=H/2, forward | fwd+bwd:
#
#   LSTM H128  B1: 0.72|1.02  B4: 0.70|0.78  B8: 0.60|0.71  B16: 0.43|0.53  B32: 0.46|0.54
#   LSTM H256  B1: 0.73|1.03  B4: 0.22|0.25  B8: 0.27|0.35  B16: 0.37|0.47  B32: 0.45|0.62
#   GRU  H64   B1: 5.11|11.5  B4: 2.84|6.50  B8: 1.87|4.30  B16: 1.11|2.78  B32: 0.81|1.80
#   GRU  H128  B1: 3.24|6.99  B4: 1.72|3.85  B8: 1.28|2.55  B16: 0.91|1.69  B32: 0.64|1.03
#   GRU  H256  B1: 1.78|5.21  B4: 1.15|3.01  B8: 0.48|1.00  B16: 0.52|0.95  B32: 0.56|0.91
#   RNN  H64   B1: 2.74|4.82  B4: 2.99|4.60  B8: 3.11|3.75  B16: 1.80|2.69  B32: 1.39|2.05
#   RNN  H128  B1: 2.47|5.15  B4: 2.65|3.10  B8: 1.97|2.70  B16: 1.56|1.87  B32: 1.28|1.32
#   RNN  H256  B1: 1.51|3.36  B4: 1.45|2.25  B8: 1.26|1.76  B16: 0.71|0.90  B32: 0.84|0.83
#
# torch's LSTM runs oneDNN's fused LSTM, which the numba loop (one BLAS call per step plus
# the gate math) does not beat at any size measured: training at batch 1 ties here and
# measured 0.77 in a `gated bench` run (shape a), so the LSTM goes to native unless traced.
# torch's GRU and RNN kernels are much slower at small sizes. Past the bounds, MKL's
# multithreaded GEMM inside torch's kernel wins.
# The bounds live on each kind's kernels (``Kernels.wins_up_to``, in ``fused_cells.py``).
#
# The fused LSTM can also run each plain layer on two threads (``persistent_lstm.py``: each owns
# half the units and its rows of the weights, one barrier per step). It does so by itself where
# that can pay (``persistent_sync.split_pays``): never when torch has one thread or the machine one
# core, nor while other threads are runnable, because the two must meet at every step: on the
# shared build machine (load 11-15 on 2 cores) it measured 0.55-0.75x the single-threaded kernel.
# It has not been measured on an idle machine yet, so the LSTM's bound stays (0, 0); to set it,
# run ``benchmarks/sweep_engines.py --modules LSTM --split auto`` on one.
#
# With recurrent dropout or zoneout torch's kernels cannot run, so the fused kernel races the
# reference loop instead, whose per-step products use torch's threads (both cores) where the
# kernel's BLAS has one: past a size the loop wins. Reference time / fused time, same machine
# (quiet), T=50, I=H/2; inference: zoneout in eval, training: recurrent dropout, fwd+bwd:
#
#   LSTM  B1 H128: 7.1|6.4  B4 H128: 2.4|2.2  B8 H128: 1.9|-    B8 H256: 0.92|0.88  B32 H256: 0.72|0.65
#   GRU   B1 H128: 10.|8.8  B4 H128: 2.8|2.9  B8 H128: 2.1|-    B8 H256: 1.01|1.10  B16 H256: 0.83|0.88
#   RNN   B1 H128: 6.8|-    B8 H128: 2.9|2.2  B4 H256: -|1.16   B8 H256: 1.36|0.83  B16 H256: 1.11|0.53
#
# At shape a (T100 B1 I64 H128) the fused LSTM trains 9x (zoneout) and 8x (recurrent dropout)
# faster than a scripted loop, where the reference loop is 0.9x. The bounds:
# ``Kernels.regularized_wins_up_to``.


def choose(spec: StackSpec, x: Tensor, state=(), record: bool = False) -> str:
    """The fastest engine that can do what is asked (the measurements are above).

    The fused engine's ``supports`` refuses calls that a torch tool is tracing, so those go to
    ``native``, or to ``reference`` where torch's kernel cannot run either.
    """
    fused_ok = fused.supports(spec, x, record) is None
    grad = spec.needs_grad(x, state)
    if spec.regularization:
        # Native cannot run it: fused where its kernels have it and beat the reference loop (measured above).
        if not fused_ok or x.size(1) == 0 or (record and grad):
            return "reference"
        bound = spec.kind.kernels.regularized_wins_up_to[grad]
        return "fused" if x.size(1) * spec.hidden_size <= bound else "reference"
    if record:
        # Only the reference engine can differentiate through recorded gates; without
        # gradients the fused kernel records them at almost the cost of a forward.
        return "fused" if fused_ok and not grad else "reference"
    native_ok = native.supports(spec, x, record) is None
    if not fused_ok or x.size(1) == 0:
        return "native" if native_ok else "reference"
    bound = spec.kind.kernels.wins_up_to[grad]
    return "fused" if x.size(1) * spec.hidden_size <= bound or not native_ok else "native"
