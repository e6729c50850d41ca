"""One time step of each recurrent cell, written the way the guide explains it.

Every function here takes the input's share of the gates, ``x_gates``, already
computed as ``W_ih @ x + b_ih``. That is the first half of "combine the
previous hidden state with the input"; the engines compute it for all time
steps in one matrix product before the loop, since it does not depend on the
hidden state. The second half, ``W_hh @ h + b_hh``, has to wait for the
previous step, so it happens inside the cell.

Gate rows follow ``torch.nn`` so that weights load unchanged:
LSTM rows are (input, forget, candidate, output); GRU rows are
(reset, update, candidate).

Each cell returns a named tuple: the new state plus every gate it opened, under
the guide's names, so nothing the cell computed is hidden from the reader.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


class RNNStep(NamedTuple):
    hidden: Tensor


class LSTMStep(NamedTuple):
    input: Tensor
    forget: Tensor
    candidate: Tensor
    output: Tensor
    cell: Tensor
    hidden: Tensor


class GRUStep(NamedTuple):
    reset: Tensor
    update: Tensor
    candidate: Tensor
    hidden: Tensor


def rnn_cell(
    x_gates: Tensor, hidden: Tensor, w_hh: Tensor, b_hh: Tensor | None, nonlinearity: str = "tanh"
) -> RNNStep:
    """A plain RNN step: combine input and previous hidden state, squash."""
    combined = x_gates + F.linear(hidden, w_hh, b_hh)
    # tanh keeps values in (-1, 1) so they cannot grow without bound from step to step.
    squash = torch.tanh if nonlinearity == "tanh" else torch.relu
    return RNNStep(hidden=squash(combined))


def lstm_cell(
    x_gates: Tensor,
    hidden: Tensor,
    cell: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    w_hr: Tensor | None = None,
) -> LSTMStep:
    """An LSTM step in the guide's seven steps."""
    # 1. Combine the previous hidden state and the current input.
    combined = x_gates + F.linear(hidden, w_hh, b_hh)
    i, f, g, o = combined.chunk(4, dim=-1)
    # 2. Forget gate: near 0 drops a value of the cell state, near 1 keeps it.
    forget = torch.sigmoid(f)
    # 3. Input gate: which of the candidate values are worth adding.
    input = torch.sigmoid(i)
    # 4. Candidate: new values that could join the cell state, squashed to (-1, 1).
    candidate = torch.tanh(g)
    # 5. New cell state: keep what the forget gate lets through, add what the input gate admits.
    new_cell = forget * cell + input * candidate
    # 6. Output gate: which parts of the cell state the hidden state shows.
    output = torch.sigmoid(o)
    # 7. New hidden state: the squashed cell state, filtered by the output gate.
    new_hidden = output * torch.tanh(new_cell)
    if w_hr is not None:
        # LSTM with projections (proj_size > 0): a smaller hidden state, h = W_hr h.
        new_hidden = F.linear(new_hidden, w_hr)
    return LSTMStep(input, forget, candidate, output, new_cell, new_hidden)


def gru_cell(x_gates: Tensor, hidden: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> GRUStep:
    """A GRU step: no cell state; two gates steer the hidden state itself."""
    h_gates = F.linear(hidden, w_hh, b_hh)
    x_r, x_z, x_n = x_gates.chunk(3, dim=-1)
    h_r, h_z, h_n = h_gates.chunk(3, dim=-1)
    # Reset gate: how much of the past the candidate may look at.
    reset = torch.sigmoid(x_r + h_r)
    # Update gate: how much of the old hidden state to keep (it forgets and adds in one).
    update = torch.sigmoid(x_z + h_z)
    # Candidate, built from the input and the reset-filtered past.
    candidate = torch.tanh(x_n + reset * h_n)
    new_hidden = (1 - update) * candidate + update * hidden
    return GRUStep(reset, update, candidate, new_hidden)


def peephole_lstm_cell(
    x_gates: Tensor,
    hidden: Tensor,
    cell: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    w_ci: Tensor,
    w_cf: Tensor,
    w_co: Tensor,
) -> LSTMStep:
    """An LSTM step whose gates also look at the cell state (Gers, Schraudolph and Schmidhuber 2002).

    The guide's seven steps, with one change: the input and forget gates see the
    previous cell state, and the output gate the new one, each through one
    weight per unit ("peepholes", ``w_ci``, ``w_cf``, ``w_co``), so a gate can
    act on what the memory holds rather than only on what the hidden state shows:

        i = σ(W_i x + U_i h + w_ci ⊙ c_prev + b_i)     f = σ(W_f x + U_f h + w_cf ⊙ c_prev + b_f)
        g = tanh(W_g x + U_g h + b_g)                  c = f ⊙ c_prev + i ⊙ g
        o = σ(W_o x + U_o h + w_co ⊙ c + b_o)          h = o ⊙ tanh(c)
    """
    combined = x_gates + F.linear(hidden, w_hh, b_hh)
    i, f, g, o = combined.chunk(4, dim=-1)
    forget = torch.sigmoid(f + w_cf * cell)
    input = torch.sigmoid(i + w_ci * cell)
    candidate = torch.tanh(g)
    new_cell = forget * cell + input * candidate
    output = torch.sigmoid(o + w_co * new_cell)  # the output gate peeks at the new cell state
    new_hidden = output * torch.tanh(new_cell)
    return LSTMStep(input, forget, candidate, output, new_cell, new_hidden)
