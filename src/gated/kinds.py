"""One description per kind of cell: everything the rest of gated needs to know about it.

A :class:`CellKind` says what a cell is called, how its gates sit in the
weight rows, what it carries from step to step, how one step is computed (the
functions of ``cells.py``), and which fast implementations it has. Modules,
engines, traces, streams and the explanations read these objects; none of
them asks "is this an LSTM?".

Adding a cell is: its step function in ``cells.py``, one ``CellKind`` here
(``register`` it, so that modules using it can be pickled), and, if it should
be fast, its kernels
in ``engines/fused_cells.py``. Without kernels it runs on the reference engine,
traces, streams and is explained like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

from torch import Tensor

from .cells import GRUStep, LSTMStep, RNNStep, gru_cell, lstm_cell, rnn_cell
from .engines.fused import Kernels
from .engines.fused_cells import GRU_KERNELS, LSTM_KERNELS, RNN_RELU_KERNELS, RNN_TANH_KERNELS
from .engines.spec import LayerWeights

# (input's share of the gates, state in `states` order, the layer's weights) -> the step's named tuple
StepFunction = Callable[[Tensor, tuple[Tensor, ...], LayerWeights], NamedTuple]


@dataclass(frozen=True)
class CellKind:
    name: str  # torch's name for the mode (``module.mode``): "LSTM", "GRU", "RNN_TANH", "RNN_RELU"
    family: str  # what a user types to choose it: "lstm", "gru", "rnn"
    rows: tuple[str, ...]  # the blocks of weight rows, in order: W_ih has len(rows) * hidden_size rows
    states: tuple[str, ...]  # what is carried from step to step, in hx's order: ("hidden",) or ("hidden", "cell")
    gates: tuple[str, ...]  # the sigmoid gates, each in (0, 1)
    shown: tuple[str, ...]  # what an explanation draws, in the guide's order
    step: StepFunction  # one time step (``cells.py``); its named tuple's fields are what a trace records
    kernels: Kernels | None = None  # the fused engine's implementation, if any
    native: str | None = None  # torch's own kernel (``torch._VF.<native>``), if any

    @property
    def recorded(self) -> tuple[str, ...]:
        """What a trace holds for this cell: the fields of its step's named tuple."""
        return self.step.fields

    def next_state(self, values: NamedTuple) -> tuple[Tensor, ...]:
        """The state a step hands to the next, picked from everything the step computed."""
        return tuple(getattr(values, name) for name in self.states)

    def is_gate(self, name: str) -> bool:
        return name in self.gates

    def __repr__(self) -> str:
        return f"CellKind({self.name})"

    def __reduce__(self):
        # A pickled module refers to its kind by name, and gets the same object back.
        if KINDS.get(self.name) is not self:
            raise TypeError(f"cell kind {self.name!r} is not registered: call gated.kinds.register on it to pickle it")
        return (_registered, (self.name,))


KINDS: dict[str, CellKind] = {}


def register(kind: CellKind) -> CellKind:
    """Make ``kind`` known by its name, so that modules using it can be pickled and restored."""
    if KINDS.get(kind.name, kind) is not kind:
        raise ValueError(f"another cell kind is already registered as {kind.name!r}; give this one its own name")
    KINDS[kind.name] = kind
    return kind


def _registered(name: str) -> CellKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"no cell kind is registered as {name!r}: import the module that defines it first") from None


def _step(cell, result: type) -> StepFunction:
    """Give a step function of ``cells.py`` the one signature every engine calls.

    ``result`` is the named tuple the cell returns; its fields are what a trace records.
    """

    def step(x_gates, state, w):
        return cell(x_gates, *state, w)

    step.fields = result._fields
    return step


RNN_TANH = register(CellKind(
    name="RNN_TANH", family="rnn", rows=("hidden",), states=("hidden",), gates=(), shown=("hidden",),
    step=_step(lambda x, h, w: rnn_cell(x, h, w.w_hh, w.b_hh, "tanh"), RNNStep),
    kernels=RNN_TANH_KERNELS, native="rnn_tanh",
))
RNN_RELU = register(CellKind(
    name="RNN_RELU", family="rnn", rows=("hidden",), states=("hidden",), gates=(), shown=("hidden",),
    step=_step(lambda x, h, w: rnn_cell(x, h, w.w_hh, w.b_hh, "relu"), RNNStep),
    kernels=RNN_RELU_KERNELS, native="rnn_relu",
))
LSTM = register(CellKind(
    name="LSTM", family="lstm",
    rows=("input", "forget", "candidate", "output"),  # torch's i, f, g, o
    states=("hidden", "cell"),
    gates=("input", "forget", "output"),
    shown=("forget", "input", "output", "cell"),
    step=_step(lambda x, h, c, w: lstm_cell(x, h, c, w.w_hh, w.b_hh, w.w_hr), LSTMStep),
    kernels=LSTM_KERNELS, native="lstm",
))
GRU = register(CellKind(
    name="GRU", family="gru",
    rows=("reset", "update", "candidate"),  # torch's r, z, n
    states=("hidden",),
    gates=("reset", "update"),
    shown=("reset", "update", "hidden"),
    step=_step(lambda x, h, w: gru_cell(x, h, w.w_hh, w.b_hh), GRUStep),
    kernels=GRU_KERNELS, native="gru",
))
