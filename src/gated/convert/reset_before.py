"""The GRU that applies its reset gate before the recurrent product: Keras's ``GRU(reset_after=False)``.

Cho et al. (2014) wrote the GRU's candidate as ``tanh(W x + U (r ⊙ h))``: the reset
gate filters h, then the matrix reads it. cuDNN, torch.nn and gated's ``GRU`` compute
``tanh(W x + r ⊙ (U h + b))`` instead (Keras's ``reset_after=True``), which lets one
product ``W_hh h`` serve all three rows. The two are different functions of the same
weights, so a Keras model trained with ``reset_after=False`` needs this cell:

    r = σ(W_ir x + b_ir + W_hr h + b_hr)      z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)      h' = (1 - z) ⊙ n + z ⊙ h

Parameters, rows and arguments are ``gated.GRU``'s (rows r, z, n). It runs on the
reference engine (no fused kernels, no torch op), traces, streams and takes recurrent
dropout and zoneout like any gated cell.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import kinds
from ..cells import GRUStep
from ..kinds import CellKind, register
from ..layers import GRU


def reset_before_gru_cell(x_gates: Tensor, hidden: Tensor, w_hh: Tensor, b_hh: Tensor | None, *,
                          recurrent: Tensor | None = None) -> GRUStep:
    """One step; ``x_gates`` is ``W_ih x + b_ih`` (rows r, z, n), ``recurrent`` the h that W_hh reads."""
    fed_back = hidden if recurrent is None else recurrent
    w_r, w_z, w_n = w_hh.chunk(3, dim=0)
    b_r, b_z, b_n = (None, None, None) if b_hh is None else b_hh.chunk(3)
    x_r, x_z, x_n = x_gates.chunk(3, dim=-1)
    # Reset gate: which parts of the past the candidate may see, chosen before the matrix reads them.
    reset = torch.sigmoid(x_r + F.linear(fed_back, w_r, b_r))
    # Update gate: how much of the old hidden state to keep.
    update = torch.sigmoid(x_z + F.linear(fed_back, w_z, b_z))
    # Candidate from the input and the filtered past.
    candidate = torch.tanh(x_n + F.linear(reset * fed_back, w_n, b_n))
    new_hidden = (1 - update) * candidate + update * hidden
    return GRUStep(reset, update, candidate, new_hidden)


def _step(x_gates, state, w, recurrent=None):
    return reset_before_gru_cell(x_gates, *state, w.w_hh, w.b_hh, recurrent=recurrent)


_step.fields = GRUStep._fields

RESET_BEFORE_GRU: CellKind = register(CellKind(
    name="GRU_RESET_BEFORE", family="gru-reset-before",
    rows=kinds.GRU.rows, states=kinds.GRU.states, gates=kinds.GRU.gates, shown=kinds.GRU.shown,
    step=_step,
))


class ResetBeforeGRU(GRU):
    """A GRU whose reset gate filters h before ``W_hn`` reads it (Keras's ``reset_after=False``).

    Drop-in arguments and parameters of ``gated.GRU``; see this module's docstring for the equations.
    """

    cell_kind = RESET_BEFORE_GRU
