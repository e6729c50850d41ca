"""Drop-in replacements for ``torch.nn.RNNCell``, ``LSTMCell`` and ``GRUCell``: one time step.

Each has the parameters, shapes and initialisation of its ``torch.nn``
namesake and computes the step its cell kind describes (``kinds.py``), with
the functions of ``cells.py``.
``cell.trace(input, hx)`` returns that step's named tuple, so every gate of
the step can be read by name.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import checks, kinds
from .engines.spec import CellKind, LayerWeights
from .layers import _check_forget_bias, _set_forget_bias, scriptable_twin


class RecurrentCellBase(nn.Module):
    """Parameters and input checks shared by the three cells; the kind of cell says the rest."""

    kind: CellKind

    @property
    def num_chunks(self) -> int:
        """Blocks of weight rows: 4 for the LSTM (i, f, g, o), 3 for the GRU, 1 for the RNN."""
        return len(self.kind.rows)

    @property
    def num_states(self) -> int:
        """How many state tensors hx holds: h, or (h, c) for the LSTM."""
        return len(self.kind.states)

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        checks.check_cell_sizes(input_size, hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        # Like torch.nn's cells: any truthy or falsy value, kept as given (repr shows it).
        self.bias = bias
        factory = {"device": device, "dtype": dtype}
        rows = self.num_chunks * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(rows, **factory))
            self.bias_hh = nn.Parameter(torch.empty(rows, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def forward(self, input: Tensor, hx=None):
        state = self.kind.next_state(self.trace(input, hx))
        return state[0] if len(state) == 1 else state

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles in place of this cell: its torch.nn twin, same parameters."""
        return scriptable_twin(self)

    def trace(self, input: Tensor, hx=None):
        """One step, every gate by name: the cell's named tuple from ``cells.py``."""
        x, states, batched = self._prepare(input, hx)
        weights = LayerWeights(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, None)
        step = self.kind.step(F.linear(x, self.weight_ih, self.bias_ih), states, weights)
        return step if batched else type(step)(*(v.squeeze(0) for v in step))

    def _prepare(self, input, hx) -> tuple[Tensor, tuple[Tensor, ...], bool]:
        name = type(self).__name__
        input = checks.check_tensor("input", input, name)
        if input.dim() not in (1, 2):
            raise ValueError(
                f"{name}: Expected input to be 1D (input_size) or 2D (batch, input_size), got {input.dim()}D instead"
            )
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        if hx is None:
            zeros = x.new_zeros(x.size(0), self.hidden_size)
            states = (zeros,) * self.num_states
        else:
            states = self._split_hx(hx)
            if not batched:
                for i, s in enumerate(states):
                    if s.dim() != 1:
                        raise RuntimeError(f"{name}: For unbatched 1-D input, hx[{i}] should also be 1-D but got {s.dim()}-D")
                states = tuple(s.unsqueeze(0) for s in states)
        self._check_shapes(name, x, states)
        return x, states, batched

    def _split_hx(self, hx) -> tuple[Tensor, ...]:
        name = type(self).__name__
        if self.num_states == 1:
            hx = (checks.check_tensor("hx", hx, name),)
        elif not isinstance(hx, (tuple, list)) or len(hx) != self.num_states:
            raise TypeError(f"{name}: hx must be a tuple (h, c) of hidden and cell state, got {type(hx).__name__}")
        for i, h in enumerate(hx):
            checks.check_tensor(f"hx[{i}]", h, name)
            if h.dim() not in (1, 2):
                # torch.nn's words: "hidden" for the one state of RNNCell and GRUCell, "hx[i]" for LSTMCell's.
                what = "hidden" if self.num_states == 1 else f"hx[{i}]"
                raise ValueError(f"{name}: Expected {what} to be 1D or 2D, got {h.dim()}D instead")
        return tuple(hx)

    def _check_shapes(self, name: str, x: Tensor, states: tuple[Tensor, ...]) -> None:
        checks.check_dtype(name, "input", x, self.weight_ih, error=RuntimeError)
        if x.size(1) != self.input_size:
            raise RuntimeError(f"{name}: input has inconsistent input_size: got {x.size(1)} expected {self.input_size}")
        for i, s in enumerate(states):
            if s.size(0) != x.size(0):
                raise RuntimeError(f"{name}: Input batch size {x.size(0)} doesn't match hidden{i} batch size {s.size(0)}")
            if s.size(1) != self.hidden_size:
                raise RuntimeError(
                    f"{name}: hidden{i} has inconsistent hidden_size: got {s.size(1)}, expected {self.hidden_size}"
                )
            checks.check_dtype(name, f"hx[{i}]", s, self.weight_ih, error=RuntimeError)


class RNNCell(RecurrentCellBase):
    """One step of an Elman RNN; drop-in for ``torch.nn.RNNCell``."""

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh", device=None, dtype=None
    ) -> None:
        self.nonlinearity = checks.check_nonlinearity(nonlinearity)
        self.kind = kinds.RNN_TANH if nonlinearity == "tanh" else kinds.RNN_RELU
        super().__init__(input_size, hidden_size, bias, device, dtype)


class LSTMCell(RecurrentCellBase):
    """One LSTM step; drop-in for ``torch.nn.LSTMCell``, with the optional ``forget_bias`` of ``gated.LSTM``."""

    kind = kinds.LSTM

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None, *, forget_bias=None
    ) -> None:
        self.forget_bias = _check_forget_bias(forget_bias, bias)
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.forget_bias is not None:
            _set_forget_bias(self.bias_ih, self.bias_hh, self.hidden_size, self.forget_bias)


class GRUCell(RecurrentCellBase):
    """One GRU step; drop-in for ``torch.nn.GRUCell``."""

    kind = kinds.GRU
