"""What an engine is asked to run: a recurrent stack, frozen at the moment of the call.

A module hands its engine a :class:`StackSpec` (its cell kind, sizes, dropout
and every layer's weights), never itself, so engines do not depend on how a
module stores its parameters, and a cell kind that a module does not know yet
runs the same way. The :class:`CellKind` is the contract between a cell and
the engines: its step function for any engine, and optionally the
:class:`Kernels` of the fused engine and the name of torch's native op. The
kinds gated ships are in ``kinds.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import Tensor

State = tuple[Tensor, ...]  # in the order of the cell kind's ``states``: (h,), or (h, c) for the LSTM


class LayerWeights(NamedTuple):
    """One layer and direction's weights: torch's five (``torch.nn.LSTM``'s order), then any the cell adds."""

    w_ih: Tensor
    w_hh: Tensor | None  # None for a cell whose gates read the input only (``CellKind.recurrent``)
    b_ih: Tensor | None
    b_hh: Tensor | None
    w_hr: Tensor | None  # the LSTM's projection (proj_size > 0)
    extras: Mapping[str, Tensor] = MappingProxyType({})  # a cell kind's own (peepholes, norms), by name

    def torch_weights(self) -> tuple[Tensor | None, ...]:
        """The five that torch's kernels (and the fused ones) take, in their order."""
        return self[:5]

    def tensors(self) -> list[Tensor]:
        """Every weight there is, torch's first."""
        return [w for w in self.torch_weights() if w is not None] + list(self.extras.values())


class Forward(NamedTuple):
    out: Tensor  # (T, B, ·): every step's h
    final: State  # the state after the last real step of each sequence
    saved: tuple[Tensor, ...]  # what backward and a trace need (gate buffers), kind by kind


class Gradients(NamedTuple):
    x: Tensor
    weights: LayerWeights  # gradients of the kernel weights, None where a weight is absent
    start: State


# The largest batch * hidden_size the engine sweeps reached (B64 x H512): a kernel that won everywhere
# up to it is bounded there, not beyond, since nothing larger was measured (``engines/__init__.py``).
SWEPT = 64 * 512


class Kernels:
    """One cell kind's fused implementation: forward and backward over time, and one streaming step.

    Every method takes and returns torch tensors (numpy views of them inside);
    ``w`` is always the output of ``fused.kernel_weights``.

    Kernels that run recurrent dropout and zoneout say so with ``regularizes``; their
    ``forward`` and ``backward`` then take ``masks``: recurrent dropout's (B, P), then
    zoneout's share of the previous value per state in ``states`` order (T, B, ·): the
    drawn 0/1 masks while training, p itself in eval; None for each that is off. The
    fused engine calls them without ``masks`` when there are none, so kernels without
    ``regularizes`` need not take it.
    """

    folds_hidden_bias = True  # W_hh h + b_hh simply adds to the gates, so b_hh joins b_ih
    regularizes = False  # runs recurrent dropout and zoneout (takes ``masks``); else the fused engine refuses them
    # With them, torch's kernels cannot run and the race is against the reference loop: the largest
    # batch * hidden_size at which this kernel beats that, (inference, training); see ``engines/__init__.py``.
    regularized_wins_up_to = (0, 0)
    # With torch on one thread (torch.set_num_threads(1): the tour's and results.py's workers) torch's
    # kernels and the reference loop lose their second core, and the kernel wins further:
    # (inference, training) and (regularised inference, training); None: as above.
    one_thread_wins_up_to: tuple[int, int] | None = None
    one_thread_regularized_wins_up_to: tuple[int, int] | None = None

    def bound(self, regularized: bool) -> tuple[int, int]:
        """The bounds (inference, training) that hold for a call now: the one-thread ones while torch
        has one thread. (The LSTM's two-thread kernel once had bounds of its own; since the per-step
        products moved to MKL, one thread and two beat the reference loop at the same sizes.)"""
        if torch.get_num_threads() == 1:
            alone = self.one_thread_regularized_wins_up_to if regularized else self.one_thread_wins_up_to
            if alone is not None:
                return alone
        return self.regularized_wins_up_to if regularized else self.wins_up_to
    # Largest batch * hidden_size at which this kernel beats torch's own, (inference, training), or
    # for a cell torch has no kernel for, the reference loop; the measurements are in ``engines/__init__.py``.
    wins_up_to = (0, 0)

    def forward(self, x: Tensor, w: LayerWeights, start: State, lens: np.ndarray, save: bool) -> Forward:
        raise NotImplementedError

    def backward(self, x, w: LayerWeights, start: State, out: Tensor, saved, d_out, d_final, lens) -> Gradients:
        raise NotImplementedError

    def recorded(self, kind: CellKind, saved) -> dict[str, Tensor]:
        """What a trace shows besides ``hidden``, from the saved buffers, under the kind's names."""
        return {}

    def stream_step(self, w: LayerWeights, batch: int, dtype):
        """One layer's streaming step: a closure over copies of its weights and scratch buffers.

        It takes the layer's input (B, I) and its state arrays, advances the state in
        place and returns the new h, which is the next layer's input.
        """
        raise NotImplementedError


# (input's share of the gates, state in `states` order, the layer's weights) -> the step's named tuple
StepFunction = Callable[[Tensor, tuple[Tensor, ...], LayerWeights], NamedTuple]
# (a layer's input for all steps (T, B, I), its weights) -> the input's share of the gates, (T, B, rows * H)
Projection = Callable[[Tensor, LayerWeights], Tensor]
# (the input's share of the gates (T, B, rows * H), start state, mask (T, B, 1) or None, record) ->
# (every step's h (T, B, H), the state after each sequence's last real step, {recorded name: (T, B, ·)} or None).
# Past a sequence's end (mask False) the state must stay as it was; outputs there are zeroed by the caller.
SequenceFunction = Callable[[Tensor, tuple[Tensor, ...], "Tensor | None", bool], tuple]


@dataclass(frozen=True)
class Extra:
    """A weight a cell adds to torch's, one per layer and direction (named ``{name}_l0``, like torch's)."""

    name: str
    size: str  # "hidden": one value per unit; "gates": one per row of W_ih
    init: float | None = None  # a constant (1 for a norm's gain, 0 for its bias); None: uniform like the rest


@dataclass(frozen=True)
class CellKind:
    name: str  # torch's name for the mode (``module.mode``): "LSTM", "GRU", "RNN_TANH", "RNN_RELU"
    family: str  # what a user types to choose it: "lstm", "gru", "rnn"
    rows: tuple[str, ...]  # the blocks of weight rows, in order: W_ih has len(rows) * hidden_size rows
    states: tuple[str, ...]  # what is carried from step to step, in hx's order: ("hidden",) or ("hidden", "cell")
    gates: tuple[str, ...]  # the sigmoid gates, each in (0, 1)
    shown: tuple[str, ...]  # what an explanation draws, in the guide's order
    step: StepFunction  # one time step (``cells.py``); its named tuple's fields are what a trace records
    projects: bool = False  # takes proj_size > 0 (the LSTM's W_hr, h = W_hr h)
    extras: tuple[Extra, ...] = ()  # weights beyond torch's five (peepholes, layer norms)
    project: Projection | None = None  # the input's share of the gates; None: W_ih x + b_ih
    kernels: Kernels | None = None  # the fused engine's implementation, if any
    native: str | None = None  # torch's own kernel (``torch._VF.<native>``), if any
    torch_twins: tuple[type, type] | None = None  # torch.nn's (module over time, one-step cell), if any
    recurrent: bool = True  # the gates read h through W_hh (+ b_hh); False: the input only, no W_hh/b_hh
    # The whole sequence at once (a parallel scan), which the reference engine runs instead of its loop
    # over ``step``; ``step`` stays the definition, what streams and tests compare with.
    sequence: SequenceFunction | None = None

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


@dataclass(frozen=True)
class StackSpec:
    kind: CellKind
    hidden_size: int
    layers: tuple[tuple[LayerWeights, ...], ...]  # [layer][direction]: direction 1 reads right to left
    dropout: float  # between layers, while training
    training: bool
    # Recurrent regularisation, which the reference engine and the kernels with ``Kernels.regularizes`` run
    # (see ``regularization``):
    recurrent_dropout: float = 0.0  # of h where W_hh reads it, one mask per sequence, while training
    zoneout: tuple[float, ...] = ()  # per state, in the kind's ``states`` order; () or zeros: none

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_directions(self) -> int:
        return len(self.layers[0])

    @property
    def bias(self) -> bool:
        return self.layers[0][0].b_ih is not None

    @property
    def drops_recurrent(self) -> bool:
        """Does recurrent dropout act on this call? Only while training, as any dropout."""
        return self.training and self.recurrent_dropout > 0

    @property
    def zones_out(self) -> bool:
        """Does zoneout act on this call? In training (random masks) and in eval (their expectation)."""
        return any(self.zoneout)  # probabilities, checked by the module: none is negative

    @property
    def regularization(self) -> str | None:
        """Why an engine without recurrent dropout and zoneout would compute something else; None if not.

        The check that the native engine makes (torch's kernels have neither), and the fused engine for
        a kind whose kernels have neither (``Kernels.regularizes``): where either changes the result,
        ``engine="auto"`` runs another engine and a named one refuses.
        """
        where = ("runs on the reference engine, and on the fused one where the cell's kernels have it "
                 "(LSTM, GRU, RNN); use engine='auto'")
        if self.drops_recurrent:
            return f"recurrent dropout (training: one mask per sequence on the h that W_hh reads) {where}"
        if self.zones_out:
            mode = "training: random masks" if self.training else "eval: the expectation p*prev + (1-p)*new"
            return f"zoneout ({mode}) {where}"
        return None

    def flat_weights(self) -> list[Tensor]:
        """Every weight in torch's order: layer by layer, direction by direction, absent ones left out."""
        return [w for layer in self.layers for direction in layer for w in direction.tensors()]

    def needs_grad(self, x: Tensor, state=()) -> bool:
        """Will autograd want gradients of this call (input, state or any weight)?"""
        if not torch.is_grad_enabled():
            return False
        return x.requires_grad or any(s.requires_grad for s in state) or any(w.requires_grad for w in self.flat_weights())
