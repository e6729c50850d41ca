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
# native time / fused time, T=50, I=H/2, forward | forward+backward. (Earlier sweeps timed
# torch on one thread, because torch's benchmark.Timer defaults to one; these do not.)
#
#   LSTM H64   B1: 0.86|0.89  B4: 0.63|0.71  B8: 0.70|0.71  B16: 0.73|0.43  B32: 0.78|0.40
#   LSTM H128  B1: 0.93|0.88  B4: 0.47|0.53  B8: 0.58|0.37  B16: 0.69|0.46  B32: 0.87|0.49
#   LSTM H256  B1: 0.83|0.89  B4: 0.50|0.34  B8: 0.53|0.50  B16: 0.66|0.63  B32: 0.80|0.74
#   GRU  H64   B1: 4.12|10.5  B4: 2.37|5.40  B8: 2.03|4.39  B16: 1.70|3.35  B32: 1.33|2.18
#   GRU  H128  B1: 3.17|6.95  B4: 1.26|2.45  B8: 1.13|2.08  B16: 1.02|1.50  B32: 0.84|1.20
#   GRU  H256  B1: 2.05|4.59  B4: 0.76|1.27  B8: 0.69|0.98  B16: 0.72|0.98  B32: 0.71|0.85
#   RNN  H64   B1: 2.15|4.98  B4: 2.08|4.30  B8: 1.76|3.20  B16: 1.49|2.60  B32: 1.29|2.22
#   RNN  H128  B1: 2.16|4.50  B4: 1.17|2.24  B8: 1.08|1.94  B16: 0.98|1.54  B32: 0.96|1.29
#   RNN  H256  B1: 1.63|3.45  B4: 0.80|1.26  B8: 0.70|1.10  B16: 0.71|0.98  B32: 0.74|0.87
#
# (GRU and RNN measured after the fused kernels' products over all steps moved to torch's threads
# on a free machine, ``fused_cells._linear``; the LSTM rows before.)
#
# With torch on one thread (``torch.set_num_threads(1)``, as the tour's and results.py's workers run)
# torch's kernels lose their second core and the fused kernel wins further. The earlier sweeps,
# whose timer ran torch on one thread, measured exactly that case: GRU up to 1024 | 2048, RNN
# 2048 | 2048, and against the reference loop the cells torch lacks at every size
# (``Kernels.one_thread_*``). The tour trained its 17 models in 289 s with the two-thread bounds
# in its one-thread workers, against 243 s with these.
#
# torch's LSTM runs oneDNN's fused LSTM, which the numba loop (one BLAS call per step plus
# the gate math) does not beat at any size, also with the LSTM split over two threads (below;
# split=auto in the sweep above), so the LSTM goes to native unless traced. torch's GRU and
# RNN kernels are much slower at small sizes; past the bounds, torch's multithreaded GEMM wins.
# The bounds live on each kind's kernels (``Kernels.wins_up_to``, in ``fused_cells.py``).
#
# The fused LSTM can also run each plain layer on two threads (``persistent_lstm.py``: each owns
# half the units and its rows of the weights, one barrier per step). It does so by itself where
# that can pay (``persistent_sync.split_pays``): never when torch has one thread or the machine one
# core, nor while other threads are runnable, because the two must meet at every step: on the
# shared build machine (load 11-15 on 2 cores) it measured 0.55-0.75x the single-threaded kernel.
# Idle, it runs 1.6-1.7x the single-threaded kernel at T100 B32 H256, and still 0.4-0.9x oneDNN.
#
# Where torch's kernels cannot run (recurrent dropout, zoneout, and the cells torch.nn lacks), the
# fused kernel races the reference loop instead, whose per-step products use torch's threads
# (both cores) where the kernel's BLAS has one: past a size the loop wins. Reference time / fused
# time, same sweep (``--against reference``, T=50, I=H/2); with ``--regularized`` the forward
# runs zoneout 0.1 in eval and forward+backward recurrent dropout 0.25:
#
#   LSTM reg.     H128  B8: 2.07|1.73  B16: 1.63|1.33  B32: 1.26|0.98   H256  B4: 1.15|1.18  B8: 0.97|0.90
#   GRU  reg.     H128  B16: 1.58|1.62  B32: 1.13|1.14                  H256  B4: 1.23|1.36  B8: 0.97|1.11  B16: 0.84|0.85
#   RNN  reg.     H128  B32: 1.88|1.34                                  H256  B16: 1.17|1.05  B32: 1.10|0.80
#   PeepholeLSTM  H128  B16: 1.45|1.64  B32: 1.17|1.16                  H256  B4: 1.02|1.39  B8: 0.89|1.08  B16: 0.82|0.86
#   LayerNormLSTM H128  B16: 1.70|1.60  B32: 1.29|1.07                  H256  B4: 1.13|1.35  B8: 0.97|1.13  B16: 0.88|0.87
#   LayerNormGRU  H128  B32: 1.41|1.38                                  H256  B16: 1.01|0.99  B32: 0.91|0.85
#   MinGRU, MinLSTM: fused wins everywhere (1.2-3.8x, B1-32, H128-256): no loop over W_hh to lose.
#
# Smaller batches and hidden sizes win by more (up to 18x at B1). The bounds: ``Kernels.regularized_wins_up_to``
# for the regularized, ``Kernels.wins_up_to`` of the cells torch lacks.
#
# The LSTM's two-thread kernel runs recurrent dropout and zoneout too; where it splits
# (``split_pays``), fused beat the reference loop at every size of the sweep (``--split on``):
#
#   LSTM reg. split  H128  B8: 1.12|1.56  B32: 1.14|1.02   H256  B4: 1.08|1.44  B8: 1.03|1.24  B32: 1.10|1.13
#   PeepholeLSTM     H128  B8: 2.89|1.93  B32: 1.93|1.15   H256  B4: 1.77|1.65  B8: 1.55|1.42  B32: 1.30|1.14
#
# so their bounds are then the largest size measured (``Kernels.bound``, ``split_*`` bounds). (At H128
# B8-B32 the regularized split read slower than one thread, 1.12 against 2.10 at B8, in one sweep.)


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
        bound = spec.kind.kernels.bound(spec.hidden_size, regularized=True)[grad]
        return "fused" if x.size(1) * spec.hidden_size <= bound else "reference"
    if record:
        # Only the reference engine can differentiate through recorded gates; without
        # gradients the fused kernel records them at almost the cost of a forward.
        return "fused" if fused_ok and not grad else "reference"
    native_ok = native.supports(spec, x, record) is None
    if not fused_ok or x.size(1) == 0:
        return "native" if native_ok else "reference"
    if x.size(1) * spec.hidden_size <= spec.kind.kernels.bound(spec.hidden_size, regularized=False)[grad]:
        return "fused"
    # Past the bound the other side wins: torch's kernel, or for a cell torch has none for, the reference loop.
    if native_ok:
        return "native"
    return "reference" if spec.kind.native is None else "fused"
