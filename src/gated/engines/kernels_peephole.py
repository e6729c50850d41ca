"""numba kernels of the peephole LSTM (``cells.peephole_lstm_cell``): forward, backward, one streaming step.

Read them next to ``kernels.lstm_forward`` / ``lstm_backward``: the layout is the same,
and only what the peepholes change differs.

* ``xp = W_ih x + b_ih + b_hh`` for all steps comes in from one product before the loop
  (``fused_cells._project``); each step does one product ``h @ W_hh^T`` and then the
  gate math unit by unit in short loops that LLVM vectorises (float32 through the
  rational tanh / sigmoid of ``kernels.py``, float64 through libm).
* The order of the gate math is the cell's, which is where it leaves the plain LSTM:
  the input and forget gates add ``w_ci * c_prev`` and ``w_cf * c_prev`` before their
  sigmoid, so they read the cell state before it is overwritten in place; the output
  gate adds ``w_co * c`` of the *new* cell state, so it is activated after the cell update.
* Saved for backward (``save``, as in ``kernels.py``): the activated gates (T,B,4H) in
  torch's i, f, g, o order and the cell states (T,B,H); ``c_prev`` of step t is
  ``cells[t-1]`` (or ``c0``), ``tanh(c)`` is recomputed. With ``save`` False both are a
  single reused slice.
* Backward through time adds the peepholes' paths to the plain LSTM's: ``d c_t`` also gets
  ``d o_pre * w_co``, and ``d c_prev`` also ``d i_pre * w_ci + d f_pre * w_cf``. The three
  peephole gradients are sums over steps and sequences of one product each, accumulated
  in the same loop; the matrix gradients are one product over all steps, done by the caller.
* Packed input: ``lengths[b]`` steps are real; past them a sequence keeps its state, its
  outputs, gates and cells are zero, and its gradients pass through unchanged.
* The step kernel streams one step: one product of ``[x, h]`` with ``[W_ih; W_hh]^T``,
  then the same gate math.

The plain LSTM's kernels are left as they are rather than given optional peephole arrays:
the output gate moves after the cell update, so sharing would put a branch or a reordered
loop into the LSTM's hot loop, and the plain LSTM would pay for a feature it does not use.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .blas import matmul
from .kernels import JIT, sigmoid, tanh


@njit(**JIT)
def _gate_math(pre, c_b, h_b, w_ci, w_cf, w_co):
    """One sequence's gates from ``pre`` = every pre-activation but the peepholes' (4H), in place.

    Turns ``pre`` into the activated gates i, f, g, o, ``c_b`` into the new cell state and
    writes the new hidden state to ``h_b``.
    """
    hidden = c_b.shape[0]
    for j in range(hidden):  # input and forget gates peek at c_prev, before it is overwritten
        pre[j] = sigmoid(pre[j] + w_ci[j] * c_b[j])
    for j in range(hidden):
        pre[hidden + j] = sigmoid(pre[hidden + j] + w_cf[j] * c_b[j])
    for k in range(2 * hidden, 3 * hidden):  # candidate
        pre[k] = tanh(pre[k])
    for j in range(hidden):  # new cell state
        c_b[j] = pre[hidden + j] * c_b[j] + pre[j] * pre[2 * hidden + j]
    for j in range(hidden):  # the output gate peeks at the new cell state
        output = sigmoid(pre[3 * hidden + j] + w_co[j] * c_b[j])
        pre[3 * hidden + j] = output
        h_b[j] = output * tanh(c_b[j])


@njit(**JIT)
def unit_backward(input, forget, candidate, output, squashed, d_h, d_c, c_prev, w_ci, w_cf, w_co, one):
    """One unit's step back through the peephole cell (peepholes of 0: the plain LSTM).

    ``d_h``, ``d_c``: the gradients reaching h_t and c_t; ``squashed`` = tanh(c_t). Returns the
    gradients of the four gate pre-activations (i, f, g, o) and the one reaching c_(t-1).
    """
    d_output = d_h * squashed * output * (one - output)
    # c_t reaches the loss through c_(t+1), through h_t and through the output gate's peephole
    d_cell = d_c + d_h * output * (one - squashed * squashed) + d_output * w_co
    d_input = d_cell * candidate * input * (one - input)
    d_forget = d_cell * c_prev * forget * (one - forget)
    d_candidate = d_cell * input * (one - candidate * candidate)
    # c_prev reaches c_t directly and through the input and forget gates' peepholes
    return d_input, d_forget, d_candidate, d_output, d_cell * forget + d_input * w_ci + d_forget * w_cf


@njit(**JIT)
def peephole_lstm_forward(xp, h0, c0, whh_t, w_ci, w_cf, w_co, lengths, save, out, gates, cells, h_n, c_n):
    """xp (T,B,4H) with both biases; h0, c0 (B,H); whh_t (H,4H); w_c* (H,).

    Writes out (T,B,H), gates (T|1,B,4H) activated i, f, g, o, cells (T|1,B,H), h_n, c_n.
    """
    steps, batch, four_h = xp.shape
    h = h0.copy()
    c = c0.copy()
    hh = np.empty((batch, four_h), xp.dtype)  # W_hh h for this step
    for t in range(steps):
        s = t * save
        matmul(h, whh_t, hh)  # h is read here only, so each sequence may overwrite its own below
        for b in range(batch):
            if t >= lengths[b]:  # this sequence has ended: keep its state, zero its outputs
                out[t, b, :] = 0
                gates[s, b, :] = 0
                cells[s, b, :] = 0
                continue
            pre, x_g = hh[b], xp[t, b]
            for k in range(four_h):  # W_ih x + b + W_hh h
                pre[k] += x_g[k]
            _gate_math(pre, c[b], h[b], w_ci, w_cf, w_co)
            gates[s, b] = pre
            cells[s, b] = c[b]
            out[t, b] = h[b]
    h_n[:] = h
    c_n[:] = c


@njit(**JIT)
def peephole_lstm_backward(d_out, dh_n, dc_n, gates, cells, c0, whh, w_ci, w_cf, w_co, lengths,
                           d_gates, dh0, dc0, d_ci, d_cf, d_co):
    """Backpropagation through time for :func:`peephole_lstm_forward` (run with save=True).

    d_out (T,B,H); whh (4H,H). Writes d_gates (T,B,4H), the gradient of the gates'
    pre-activations (also d xp); dh0, dc0; and the peepholes' gradients d_ci, d_cf, d_co (H,).
    """
    steps, batch, four_h = gates.shape
    hidden = four_h // 4
    one = np.ones(1, gates.dtype)[0]
    dh = dh_n.copy()  # gradient reaching h_t from later steps
    dc = dc_n.copy()
    dh_prev = np.empty_like(dh)
    d_ci[:] = 0
    d_cf[:] = 0
    d_co[:] = 0
    for t in range(steps - 1, -1, -1):
        c_prev = cells[t - 1] if t > 0 else c0
        for b in range(batch):
            dg = d_gates[t, b]
            if t >= lengths[b]:
                dg[:] = 0
                continue
            g_b, c_b, cp_b, dc_b, dh_b, do_b = gates[t, b], cells[t, b], c_prev[b], dc[b], dh[b], d_out[t, b]
            for j in range(hidden):
                input, forget = g_b[j], g_b[hidden + j]
                candidate, output = g_b[2 * hidden + j], g_b[3 * hidden + j]
                d_i, d_f, d_g, d_o, dc_b[j] = unit_backward(input, forget, candidate, output, tanh(c_b[j]),
                                                            dh_b[j] + do_b[j], dc_b[j], cp_b[j], w_ci[j], w_cf[j],
                                                            w_co[j], one)
                dg[j], dg[hidden + j], dg[2 * hidden + j], dg[3 * hidden + j] = d_i, d_f, d_g, d_o
                d_ci[j] += d_i * cp_b[j]
                d_cf[j] += d_f * cp_b[j]
                d_co[j] += d_o * c_b[j]
        matmul(d_gates[t], whh, dh_prev)
        for b in range(batch):
            if t < lengths[b]:  # an ended sequence passes its gradient on unchanged
                dh[b] = dh_prev[b]
    dh0[:] = dh
    dc0[:] = dc


@njit(**JIT)
def peephole_lstm_step(x, w_t, bias, w_ci, w_cf, w_co, h, c, xh, pre):
    """One peephole LSTM step for streaming, in place on h and c (B,H).

    w_t (I+H, 4H) is [W_ih; W_hh]^T, so one product of the combined [x, h] gives the
    gates' share of input and hidden state; bias is b_ih + b_hh.
    """
    batch, inputs = x.shape
    xh[:, :inputs] = x
    xh[:, inputs:] = h
    matmul(xh, w_t, pre)
    for b in range(batch):
        p = pre[b]
        for k in range(p.shape[0]):
            p[k] += bias[k]
        _gate_math(p, c[b], h[b], w_ci, w_cf, w_co)
