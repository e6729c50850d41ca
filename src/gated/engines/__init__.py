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
# for inference (no gradient) and for training (forward+backward), measured on the idle 2-core
# build machine (AMD EPYC Zen 1, AVX2, torch 2.13 with 2 threads) by benchmarks/sweep_engines.py:
# native time / fused time, T=50, I=H/2, forward | forward+backward. Measured after the kernels'
# per-step products moved from SciPy's OpenBLAS to MKL (``blas.py``: 2.5x faster at 16 rows here).
#
#   LSTM H64   B1: 0.80|1.00  B4: 1.11|1.02  B8: 0.98|0.98  B16: 0.92|0.59  B32: 0.90|0.46
#   LSTM H128  B1: 1.06|1.04  B4: 0.92|0.90  B8: 0.81|0.43  B16: 0.82|0.53  B32: 0.87|0.63
#   LSTM H256  B1: 0.90|0.93  B4: 0.68|0.47  B8: 0.75|0.61  B16: 0.78|0.72  B32: 0.83|0.78
#   GRU  H64   B1: 4.38|10.5  B4: 3.58|7.58  B8: 2.84|5.80  B16: 2.18|4.10  B32: 1.68|2.79
#   GRU  H128  B1: 3.33|7.69  B4: 2.40|4.38  B8: 1.78|3.09  B16: 1.39|2.12  B32: 1.14|1.52
#   GRU  H256  B1: 2.09|4.61  B4: 1.55|2.34  B8: 1.15|1.62  B16: 0.98|1.25  B32: 0.95|1.06  B64: 1.05|1.10  B128: 1.13|1.07
#   GRU  H512                              B16: 1.05|1.46  B32: 1.12|1.19  B64: 1.18|1.14  B128: 1.23|1.03
#   RNN  H64   B1: 2.41|5.72  B4: 2.82|5.33  B8: 2.42|3.84  B16: 1.70|3.01  B32: 1.43|2.33
#   RNN  H128  B1: 2.47|5.15  B4: 1.87|3.39  B8: 1.54|2.63  B16: 1.28|1.98  B32: 1.11|1.48
#   RNN  H256  B1: 1.71|3.64  B4: 1.53|2.35  B8: 1.15|1.66  B16: 1.01|1.30  B32: 0.89|1.11  B64: 0.85|0.88
#   RNN  H512                              B16: 0.82|1.03  B32: 0.75|0.94  B64: 0.76|0.79
#
# The GRU forward at H256 B16-B32 is a tie (0.95-1.04 over three sweeps); everywhere else to
# B128 H512 the GRU kernel wins, the larger batches on two threads (``fused_cells._ranges``).
#
# With torch on one thread (``torch.set_num_threads(1)``, as the tour's and results.py's workers run)
# torch's kernels lose their second core and the fused kernel wins further: the GRU and RNN won at
# every size of the same sweep to B64 H512 (RNN 1.08-2.43, GRU 1.11-2.53), so the RNN's bounds are
# then the largest size measured (``Kernels.one_thread_*``); the cells torch lacks beat the
# one-thread reference loop at every size.
#
# torch's LSTM runs oneDNN's fused LSTM, which the numba loop (one BLAS call per step plus
# the gate math) does not beat at any size: on one thread 0.41-0.96 (``--split off``), and split
# over two threads (below; split=auto above) 0.43-1.11. So the LSTM goes to native unless traced.
# The bounds live on each kind's kernels (``Kernels.wins_up_to``, in ``fused_cells.py``).
#
# The fused LSTM can also run each plain layer on two threads (``persistent_lstm.py``: each owns
# half the units and its rows of the weights, one barrier per step). It does so by itself where
# that can pay (``persistent_sync.split_pays``): never when torch has one thread or the machine one
# core, nor while other threads are runnable, because the two must meet at every step: on the
# shared build machine (load 11-15 on 2 cores) it measured 0.55-0.75x the single-threaded kernel.
#
# Where torch's kernels cannot run (recurrent dropout, zoneout, and the cells torch.nn lacks), the
# fused kernel races the reference loop instead, whose per-step products use torch's threads.
# Reference time / fused time, same sweep (``--against reference``, T=50, I=H/2); with
# ``--regularized`` the forward runs zoneout 0.1 in eval and forward+backward recurrent dropout 0.25:
#
#   LSTM reg.     H128  B4: 5.97|4.58  B16: 1.25|1.56  B64: 1.28|1.26   H512  B4: 2.36|2.95  B32: 1.46|1.29  B64: 1.35|1.14
#   GRU  reg.     H128  B4: 6.14|5.69  B16: 2.89|2.56  B64: 1.49|1.25   H512  B4: 1.65|2.40  B32: 1.28|1.25  B64: 1.36|1.17
#   RNN  reg.     H256  B16: 1.69|1.52  B32: 1.29|1.18  B64: 1.13|0.97  H512  B16: 1.07|1.07  B32: 0.92|0.95
#   PeepholeLSTM  H128  B4: 6.48|6.47  B16: 3.06|1.94  B64: 1.81|1.42   H512  B4: 2.20|2.88  B32: 1.45|1.39  B64: 1.30|1.20
#   LayerNormLSTM H128  B4: 3.64|4.54  B16: 2.14|2.33  B64: 1.36|1.30   H512  B4: 1.44|1.95  B32: 1.46|1.27  B64: 1.38|1.13
#   LayerNormGRU  H128  B4: 5.06|5.36  B16: 2.61|2.76  B64: 1.50|1.35   H512  B4: 1.89|2.26  B32: 1.29|1.38  B64: 1.36|1.27
#   MinGRU, MinLSTM: fused wins everywhere (1.2-3.8x, B1-32, H128-256): no loop over W_hh to lose.
#
# (B4-B64 at H128, H256 and H512 were all measured; the table keeps the ends.) Every kind but the
# RNN won at every size, to B64 H512 (``spec.SWEPT``, their bound); the regularized RNN won to
# 8192. Smaller batches and hidden sizes win by more (up to 18x at B1).


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
        bound = spec.kind.kernels.bound(regularized=True)[grad]
        return "fused" if x.size(1) * spec.hidden_size <= bound else "reference"
    if record:
        # Only the reference engine can differentiate through recorded gates; without
        # gradients the fused kernel records them at almost the cost of a forward.
        return "fused" if fused_ok and not grad else "reference"
    native_ok = native.supports(spec, x, record) is None
    if not fused_ok or x.size(1) == 0:
        return "native" if native_ok else "reference"
    if x.size(1) * spec.hidden_size <= spec.kind.kernels.bound(regularized=False)[grad]:
        return "fused"
    # Past the bound the other side wins: torch's kernel, or for a cell torch has none for, the reference loop.
    if native_ok:
        return "native"
    return "reference" if spec.kind.native is None else "fused"
