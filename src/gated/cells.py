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

The cells with ``W_hh`` take an optional keyword ``recurrent``: the hidden state
as ``W_hh`` reads it, by default ``hidden`` itself. Recurrent dropout (Gal and
Ghahramani 2016) hands in ``mask * hidden`` there, so the mask reaches only the
product with ``W_hh``; everything else (the GRU's ``z * h_prev``) reads the
state as it is.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .engines.scan import linear_scan


def _fed_back(hidden: Tensor, recurrent: Tensor | None) -> Tensor:
    """What ``W_hh`` reads: ``recurrent`` when given (the state with recurrent dropout), else the state."""
    return hidden if recurrent is None else recurrent


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
    x_gates: Tensor, hidden: Tensor, w_hh: Tensor, b_hh: Tensor | None, nonlinearity: str = "tanh",
    *, recurrent: Tensor | None = None,
) -> RNNStep:
    """A plain RNN step: combine input and previous hidden state, squash."""
    combined = x_gates + F.linear(_fed_back(hidden, recurrent), w_hh, b_hh)
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
    *,
    recurrent: Tensor | None = None,
) -> LSTMStep:
    """An LSTM step in the guide's seven steps."""
    # 1. Combine the previous hidden state and the current input.
    combined = x_gates + F.linear(_fed_back(hidden, recurrent), w_hh, b_hh)
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


def gru_cell(x_gates: Tensor, hidden: Tensor, w_hh: Tensor, b_hh: Tensor | None, *,
             recurrent: Tensor | None = None) -> GRUStep:
    """A GRU step: no cell state; two gates steer the hidden state itself."""
    # W_hh reads ``recurrent``; the interpolation z * h_prev keeps the state itself.
    return gru_from_shares(x_gates, F.linear(_fed_back(hidden, recurrent), w_hh, b_hh), hidden)


def gru_from_shares(x_gates: Tensor, h_gates: Tensor, hidden: Tensor) -> GRUStep:
    """The GRU's gates from the input's share (``W_ih x + b_ih``) and the hidden state's (``W_hh h + b_hh``)."""
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
    *,
    recurrent: Tensor | None = None,
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
    combined = x_gates + F.linear(_fed_back(hidden, recurrent), w_hh, b_hh)
    i, f, g, o = combined.chunk(4, dim=-1)
    forget = torch.sigmoid(f + w_cf * cell)
    input = torch.sigmoid(i + w_ci * cell)
    candidate = torch.tanh(g)
    new_cell = forget * cell + input * candidate
    output = torch.sigmoid(o + w_co * new_cell)  # the output gate peeks at the new cell state
    new_hidden = output * torch.tanh(new_cell)
    return LSTMStep(input, forget, candidate, output, new_cell, new_hidden)


# Layer normalisation (Ba, Kiros and Hinton 2016): each pre-activation vector is shifted and
# scaled to mean 0 and variance 1 over its own units, then given a learnt gain and bias. Unlike
# batch norm it needs no statistics across the batch or over time, so it fits a recurrence.
LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's and haste's


class LayerNormLSTMStep(NamedTuple):
    input: Tensor
    forget: Tensor
    candidate: Tensor
    output: Tensor
    cell: Tensor
    cell_normalized: Tensor  # LN_c(c): what tanh squashes into h; the carried cell state stays raw
    hidden: Tensor


def _norm(values: Tensor, gain: Tensor, bias: Tensor | None) -> Tensor:
    return F.layer_norm(values, values.shape[-1:], gain, bias, LAYER_NORM_EPS)


def _plus(values: Tensor, bias: Tensor | None) -> Tensor:
    return values if bias is None else values + bias


def layer_norm_input(x: Tensor, w_ih: Tensor, b_ih: Tensor | None, gain: Tensor, bias: Tensor | None) -> Tensor:
    """The input's share of a layer-normalised cell, ``LN_x(W_ih x) + b_ih``, for all steps at once.

    The norm runs over the whole gate vector (every row of ``W_ih``); torch's bias
    ``b_ih`` comes after it, so it moves the gates and is not normalised away.
    """
    return _plus(_norm(F.linear(x, w_ih), gain, bias), b_ih)


def layer_norm_lstm_cell(
    x_gates: Tensor,
    hidden: Tensor,
    cell: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    gain_hh: Tensor,
    bias_hh: Tensor,
    gain_c: Tensor,
    bias_c: Tensor,
    *,
    recurrent: Tensor | None = None,
) -> LayerNormLSTMStep:
    """An LSTM step with layer normalisation (Ba, Kiros and Hinton 2016, section 3.1 and appendix).

    ``x_gates`` is ``LN_x(W_ih x) + b_ih`` (:func:`layer_norm_input`). The input's and the
    hidden state's shares of the gates are normalised apart, each over all four gates at
    once, so neither can drown the other; the cell state is normalised only where h reads it:

        i, f, g, o = LN_x(W_ih x) + LN_h(W_hh h) + b        (b = b_ih + b_hh, after the norms)
        c = σ(f) ⊙ c_prev + σ(i) ⊙ tanh(g)                  (carried as it is, not normalised)
        h = σ(o) ⊙ tanh(LN_c(c))

    Each LN has its own gain (starting at 1) and bias (starting at 0).
    """
    combined = x_gates + _plus(_norm(F.linear(_fed_back(hidden, recurrent), w_hh), gain_hh, bias_hh), b_hh)
    i, f, g, o = combined.chunk(4, dim=-1)
    forget = torch.sigmoid(f)
    input = torch.sigmoid(i)
    candidate = torch.tanh(g)
    new_cell = forget * cell + input * candidate
    output = torch.sigmoid(o)
    # h reads a normalised copy, so its size does not depend on how much the cell has summed up.
    cell_normalized = _norm(new_cell, gain_c, bias_c)
    new_hidden = output * torch.tanh(cell_normalized)
    return LayerNormLSTMStep(input, forget, candidate, output, new_cell, cell_normalized, new_hidden)


def layer_norm_gru_cell(x_gates: Tensor, hidden: Tensor, w_hh: Tensor, b_hh: Tensor | None,
                        gain_hh: Tensor, *, recurrent: Tensor | None = None) -> GRUStep:
    """A GRU step with layer normalisation, as haste defines it (lmnt-com/haste, ``LayerNormGRU``).

    ``x_gates`` is ``LN_x(W_ih x) + b_ih`` (:func:`layer_norm_input`, with no norm bias).
    The input's and the hidden state's shares are normalised apart, each over all three
    gates, with a gain (starting at 1) and no bias of its own: torch's ``b_ih`` and ``b_hh``
    follow the norms. The reset gate then acts on the normalised hidden share of the
    candidate, after the matrix product, as in ``torch.nn.GRU`` (haste's 1406.1078v1 variant):

        r = σ(LN_x(W_ih x)_r + b_ir + LN_h(W_hh h)_r + b_hr)          z likewise
        n = tanh(LN_x(W_ih x)_n + b_in + r ⊙ (LN_h(W_hh h)_n + b_hn))
        h = (1 - z) ⊙ n + z ⊙ h_prev

    haste orders the rows z, r, n; here they keep torch's r, z, n, so torch's weights load.
    """
    h_gates = _plus(_norm(F.linear(_fed_back(hidden, recurrent), w_hh), gain_hh, None), b_hh)
    return gru_from_shares(x_gates, h_gates, hidden)


# -- minimal cells: gates that read the input only -----------------------------------------------
# Feng et al. (2024), "Were RNNs All We Needed?". With no W_hh, every gate and candidate is known
# from x_gates alone, so h_t = a_t ⊙ h_(t-1) + b_t with a, b fixed before the loop: one step
# below (the definition), or the whole sequence at once with a parallel scan (``*_sequence``).


class MinGRUStep(NamedTuple):
    update: Tensor
    candidate: Tensor
    hidden: Tensor


class MinLSTMStep(NamedTuple):
    forget: Tensor
    input: Tensor
    forget_share: Tensor  # f / (f + i): what of the old state is kept
    input_share: Tensor  # i / (f + i): what of the candidate is taken
    candidate: Tensor
    hidden: Tensor


def _min_gru_parts(x_gates: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(update, candidate, a, b) with h = a ⊙ h_prev + b; any leading shape (one step or all)."""
    x_z, x_h = x_gates.chunk(2, dim=-1)
    update = torch.sigmoid(x_z)
    candidate = x_h  # linear, as the paper's main equations (no g: the scan needs no positive values)
    return update, candidate, 1 - update, update * candidate


def _min_lstm_parts(x_gates: Tensor) -> tuple[MinLSTMStep, Tensor, Tensor]:
    """(the step without its hidden, a, b) with h = a ⊙ h_prev + b."""
    x_f, x_i, x_h = x_gates.chunk(3, dim=-1)
    forget, input = torch.sigmoid(x_f), torch.sigmoid(x_i)
    # The paper's normalisation: the two shares add up to 1, so h stays on the candidates' scale
    # however long the sequence (the paper's "time independence").
    total = forget + input
    forget_share, input_share = forget / total, input / total
    values = MinLSTMStep(forget, input, forget_share, input_share, x_h, x_h)
    return values, forget_share, input_share * x_h


def min_gru_cell(x_gates: Tensor, hidden: Tensor) -> MinGRUStep:
    """A minGRU step (Feng et al. 2024): a GRU whose gate and candidate read only the input.

        z = σ(W_z x + b_z)      h̃ = W_h x + b_h      h = (1 - z) ⊙ h_prev + z ⊙ h̃

    Rows of ``x_gates``: (update, candidate). Note that z weighs the new value here, as in
    the paper, where ``gru_cell``'s update gate (torch's) weighs the old one.
    """
    update, candidate, a, b = _min_gru_parts(x_gates)
    return MinGRUStep(update, candidate, a * hidden + b)


def min_lstm_cell(x_gates: Tensor, hidden: Tensor) -> MinLSTMStep:
    """A minLSTM step (Feng et al. 2024): forget and input gates of the input only, shares that add to 1.

        f = σ(W_f x + b_f)   i = σ(W_i x + b_i)   h̃ = W_h x + b_h
        f' = f / (f + i)     i' = i / (f + i)     h = f' ⊙ h_prev + i' ⊙ h̃

    Rows of ``x_gates``: (forget, input, candidate). No cell state: h is the memory.
    """
    values, a, b = _min_lstm_parts(x_gates)
    return values._replace(hidden=a * hidden + b)


def min_gru_sequence(x_gates: Tensor, state: tuple[Tensor, ...], mask: Tensor | None, record: bool):
    """Every step of :func:`min_gru_cell` at once: ``x_gates`` (T, B, 2H), one parallel scan."""
    update, candidate, a, b = _min_gru_parts(x_gates)
    hidden = _scan(a, b, state[0], mask)
    steps = MinGRUStep(update, candidate, hidden)._asdict() if record else None
    return hidden, (hidden[-1],), steps


def min_lstm_sequence(x_gates: Tensor, state: tuple[Tensor, ...], mask: Tensor | None, record: bool):
    """Every step of :func:`min_lstm_cell` at once: ``x_gates`` (T, B, 3H), one parallel scan."""
    values, a, b = _min_lstm_parts(x_gates)
    hidden = _scan(a, b, state[0], mask)
    steps = values._replace(hidden=hidden)._asdict() if record else None
    return hidden, (hidden[-1],), steps


def _scan(a: Tensor, b: Tensor, h0: Tensor, mask: Tensor | None) -> Tensor:
    if mask is not None:  # past its end a sequence keeps its state (a = 1, b = 0), so h[-1] is its last
        a, b = torch.where(mask, a, torch.ones_like(a)), torch.where(mask, b, torch.zeros_like(b))
    return linear_scan(a, b, h0)
