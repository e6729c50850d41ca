"""numba kernels of the fused engine: the loop over time of ``cells.py``, forward and backward.

Read them next to ``cells.py``: the gate names and the order of the equations are
the same. What differs is only how the work is laid out:

* The input's share of the gates, ``xp = W_ih x + b_ih`` (for LSTM and RNN also
  ``+ b_hh``), is computed for all steps before the loop in one matrix product
  (:func:`linear`). Each step does one matrix product ``h @ W_hh^T`` (``np.dot``, i.e. BLAS)
  and then the gate math for every unit in a plain loop that LLVM vectorises.
* numba's scalar ``math.exp``/``math.tanh`` call libm one value at a time and
  block vectorisation, so float32 uses a rational tanh (Eigen's
  ``generic_fast_tanh_float``, a few ulp from the exact value) and
  ``sigmoid(x) = 0.5 + 0.5 * tanh(x / 2)``. float64 (gradcheck) keeps libm.
* Constants are built from the arrays' dtype (``one``), because a Python float
  literal is float64 in numba and would silently turn float32 math into float64.
* Packed input: ``lengths[b]`` steps are real for sequence ``b``; past its end a
  sequence keeps its state, and its outputs, gates and gradients are zero
  (what the reference engine's mask does). Reversed directions are handled by
  the caller, which reverses each sequence within its length.
* Backward is backpropagation through time by hand. It returns the gradient of
  the gates' pre-activations per step; the weight gradients are then one big
  matrix product each over all steps (:func:`linear_backward`, :func:`matmul_tn`).

``save`` is False for inference without trace: the per-step gate buffers are
then a single reused slice (index ``t * save``) instead of a (T, B, ·) history.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

# fastmath only lets LLVM fuse multiply-adds; no reassociation, no assumptions about NaN.
JIT = dict(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})

# Eigen's rational approximation of tanh for float32 (Eigen/src/Core/MathFunctionsImpl.h).
_F = np.float32
_CLAMP = _F(7.90531110763549805)
_TINY = _F(0.0004)
_A1, _A3, _A5, _A7 = _F(4.89352455891786e-03), _F(6.37261928875436e-04), _F(1.48572235717979e-05), _F(5.12229709037114e-08)
_A9, _A11, _A13 = _F(-8.60467152213735e-11), _F(2.00018790482477e-13), _F(-2.76076847742355e-16)
_B0, _B2, _B4, _B6 = _F(4.89352518554385e-03), _F(2.26843463243900e-03), _F(1.18534705686654e-04), _F(1.19825839466702e-06)
_HALF = _F(0.5)


@njit(**JIT)
def _tanh_f32(x):
    y = min(max(x, -_CLAMP), _CLAMP)
    y2 = y * y
    p = y * (_A1 + y2 * (_A3 + y2 * (_A5 + y2 * (_A7 + y2 * (_A9 + y2 * (_A11 + y2 * _A13))))))
    q = _B0 + y2 * (_B2 + y2 * (_B4 + y2 * _B6))
    return x if abs(x) < _TINY else p / q  # a select, not a branch: still vectorises


def tanh(x):
    """tanh for use inside kernels: vectorisable in float32, libm in float64."""
    return math.tanh(x)


def sigmoid(x):
    """The logistic function for use inside kernels, same split as :func:`tanh`."""
    return 1.0 / (1.0 + math.exp(-x))


@overload(tanh, jit_options={"error_model": "numpy"})
def _tanh_impl(x):
    if x == types.float32:
        return lambda x: _tanh_f32(x)
    return lambda x: math.tanh(x)


@overload(sigmoid, jit_options={"error_model": "numpy"})
def _sigmoid_impl(x):
    if x == types.float32:
        return lambda x: _HALF + _HALF * _tanh_f32(_HALF * x)
    return lambda x: 1.0 / (1.0 + math.exp(-x))


# -- LSTM ------------------------------------------------------------------------------------


@njit(**JIT)
def lstm_forward(xp, h0, c0, whh_t, whr_t, lengths, save, out, gates, cells, hfull, h_n, c_n):
    """xp (T,B,4H) with both biases; h0 (B,P); c0 (B,H); whh_t (P,4H); whr_t (H,P) or (0,0).

    Writes out (T,B,P), gates (T|1,B,4H) activated i,f,g,o, cells (T|1,B,H),
    hfull (T|1,B,H) the hidden state before projection (only with projection), h_n, c_n.
    """
    steps, batch, four_h = xp.shape
    hidden = four_h // 4
    project = whr_t.shape[0] > 0
    h = h0.copy()
    c = c0.copy()
    hh = np.empty((batch, four_h), xp.dtype)  # W_hh h for this step
    full = np.empty((batch, hidden), xp.dtype)  # o * tanh(c) before the projection
    projected = np.empty((batch, h.shape[1]), xp.dtype)
    for t in range(steps):
        s = t * save
        np.dot(h, whh_t, hh)
        for b in range(batch):
            if t >= lengths[b]:  # this sequence has ended: keep its state, zero its outputs
                out[t, b, :] = 0
                gates[s, b, :] = 0
                cells[s, b, :] = 0
                continue
            # Short loops over one or two arrays each, so that LLVM vectorises every one.
            pre, c_b, full_b = hh[b], c[b], full[b]
            x_g = xp[t, b]
            for k in range(four_h):  # 1. combine: W_ih x + b + W_hh h
                pre[k] += x_g[k]
            for k in range(2 * hidden):  # 2.-3. input and forget gates
                pre[k] = sigmoid(pre[k])
            for k in range(2 * hidden, 3 * hidden):  # 4. candidate
                pre[k] = tanh(pre[k])
            for k in range(3 * hidden, four_h):  # 6. output gate
                pre[k] = sigmoid(pre[k])
            input, forget = pre[:hidden], pre[hidden : 2 * hidden]
            candidate, output = pre[2 * hidden : 3 * hidden], pre[3 * hidden :]
            for j in range(hidden):  # 5. new cell state
                c_b[j] = forget[j] * c_b[j] + input[j] * candidate[j]
            for j in range(hidden):  # 7. new hidden state
                full_b[j] = output[j] * tanh(c_b[j])
            gates[s, b] = pre
            cells[s, b, :] = c_b
        if project:
            np.dot(full, whr_t, projected)
        for b in range(batch):
            if t < lengths[b]:
                if project:
                    h[b] = projected[b]
                    hfull[s, b] = full[b]
                else:
                    h[b] = full[b]
                out[t, b] = h[b]
        if project:
            for b in range(batch):
                if t >= lengths[b]:
                    hfull[s, b, :] = 0
    h_n[:] = h
    c_n[:] = c


@njit(**JIT)
def lstm_backward(d_out, dh_n, dc_n, gates, cells, c0, whh, whr, lengths, d_gates, d_proj, dh0, dc0):
    """Backpropagation through time for :func:`lstm_forward` (run with save=True).

    d_out (T,B,P); whh (4H,P); whr (P,H) or (0,0). Writes d_gates (T,B,4H): the
    gradient of the gates' pre-activations, which is also d xp; d_proj (T,B,P):
    the gradient reaching each projected h (for W_hr); dh0, dc0.
    """
    steps, batch, four_h = gates.shape
    hidden = four_h // 4
    project = whr.shape[0] > 0
    one = np.ones(1, gates.dtype)[0]
    dh = dh_n.copy()  # gradient reaching h_t from later steps
    dc = dc_n.copy()
    d_full = np.empty((batch, hidden), gates.dtype)
    dh_prev = np.empty_like(dh)
    for t in range(steps - 1, -1, -1):
        c_prev = cells[t - 1] if t > 0 else c0
        for b in range(batch):
            if t < lengths[b]:
                dh[b] += d_out[t, b]
        if project:
            for b in range(batch):
                if t < lengths[b]:
                    d_proj[t, b] = dh[b]
                else:
                    d_proj[t, b] = 0
            np.dot(dh, whr, d_full)
        else:
            d_full[:] = dh
        for b in range(batch):
            dg = d_gates[t, b]
            if t >= lengths[b]:
                dg[:] = 0
                continue
            g_b, dc_b = gates[t, b], dc[b]
            for j in range(hidden):
                input, forget = g_b[j], g_b[hidden + j]
                candidate, output = g_b[2 * hidden + j], g_b[3 * hidden + j]
                squashed = tanh(cells[t, b, j])
                d_output = d_full[b, j] * squashed
                d_cell = dc_b[j] + d_full[b, j] * output * (one - squashed * squashed)
                dg[j] = d_cell * candidate * input * (one - input)
                dg[hidden + j] = d_cell * c_prev[b, j] * forget * (one - forget)
                dg[2 * hidden + j] = d_cell * input * (one - candidate * candidate)
                dg[3 * hidden + j] = d_output * output * (one - output)
                dc_b[j] = d_cell * forget
        np.dot(d_gates[t], whh, dh_prev)
        for b in range(batch):
            if t < lengths[b]:  # an ended sequence passes its gradient on unchanged
                dh[b] = dh_prev[b]
    dh0[:] = dh
    dc0[:] = dc


# -- GRU -------------------------------------------------------------------------------------


@njit(**JIT)
def gru_forward(xp, h0, whh_t, bhh, lengths, save, out, gates, h_n_part, h_n):
    """xp (T,B,3H) with b_ih only; whh_t (H,3H); bhh (3H,) (zeros without bias).

    Writes out (T,B,H), gates (T|1,B,3H) reset, update, candidate, and
    h_n_part (T|1,B,H) = W_hn h + b_hn, which backward needs for the reset gate.
    """
    steps, batch, three_h = xp.shape
    hidden = three_h // 3
    one = np.ones(1, xp.dtype)[0]
    h = h0.copy()
    hh = np.empty((batch, three_h), xp.dtype)
    for t in range(steps):
        s = t * save
        np.dot(h, whh_t, hh)
        for b in range(batch):
            if t >= lengths[b]:
                out[t, b, :] = 0
                gates[s, b, :] = 0
                h_n_part[s, b, :] = 0
                continue
            x_g, h_g, g_b, h_b = xp[t, b], hh[b], gates[s, b], h[b]
            for j in range(hidden):
                # reset: how much of the past the candidate sees; update: how much of it to keep
                reset = sigmoid(x_g[j] + h_g[j] + bhh[j])
                update = sigmoid(x_g[hidden + j] + h_g[hidden + j] + bhh[hidden + j])
                w_hn_h = h_g[2 * hidden + j] + bhh[2 * hidden + j]
                candidate = tanh(x_g[2 * hidden + j] + reset * w_hn_h)
                h_b[j] = (one - update) * candidate + update * h_b[j]
                g_b[j] = reset
                g_b[hidden + j] = update
                g_b[2 * hidden + j] = candidate
                h_n_part[s, b, j] = w_hn_h
            out[t, b] = h_b
    h_n[:] = h


@njit(**JIT)
def gru_backward(d_out, dh_n, gates, h_n_part, out, h0, whh, lengths, d_xg, d_hg, dh0):
    """BPTT for :func:`gru_forward`. Writes d_xg (T,B,3H) = d xp, d_hg (T,B,3H) = d(W_hh h + b_hh), dh0."""
    steps, batch, three_h = gates.shape
    hidden = three_h // 3
    one = np.ones(1, gates.dtype)[0]
    dh = dh_n.copy()
    dh_prev = np.empty_like(dh)
    for t in range(steps - 1, -1, -1):
        h_prev = out[t - 1] if t > 0 else h0
        for b in range(batch):
            dx, dhg = d_xg[t, b], d_hg[t, b]
            if t >= lengths[b]:
                dx[:] = 0
                dhg[:] = 0
                continue
            g_b, dh_b = gates[t, b], dh[b]
            for j in range(hidden):
                reset, update, candidate = g_b[j], g_b[hidden + j], g_b[2 * hidden + j]
                d_h = dh_b[j] + d_out[t, b, j]
                d_update = d_h * (h_prev[b, j] - candidate)
                d_candidate = d_h * (one - update) * (one - candidate * candidate)
                d_reset = d_candidate * h_n_part[t, b, j] * reset * (one - reset)
                d_update = d_update * update * (one - update)
                dx[j] = d_reset
                dx[hidden + j] = d_update
                dx[2 * hidden + j] = d_candidate
                dhg[j] = d_reset
                dhg[hidden + j] = d_update
                dhg[2 * hidden + j] = d_candidate * reset
                dh_b[j] = d_h * update  # the direct path h_prev -> h through the update gate
        np.dot(d_hg[t], whh, dh_prev)
        dh += dh_prev  # zero rows for ended sequences, whose dh passes on unchanged
    dh0[:] = dh


# -- RNN -------------------------------------------------------------------------------------


@njit(**JIT)
def rnn_forward(xp, h0, whh_t, lengths, relu, out, h_n):
    """xp (T,B,H) with both biases; whh_t (H,H). Writes out (T,B,H) and h_n."""
    steps, batch, hidden = xp.shape
    zero = np.zeros(1, xp.dtype)[0]
    h = h0.copy()
    hh = np.empty((batch, hidden), xp.dtype)
    for t in range(steps):
        np.dot(h, whh_t, hh)
        for b in range(batch):
            if t >= lengths[b]:
                out[t, b, :] = 0
                continue
            x_g, h_g, h_b = xp[t, b], hh[b], h[b]
            if relu:
                for j in range(hidden):
                    h_b[j] = max(x_g[j] + h_g[j], zero)
            else:
                for j in range(hidden):
                    h_b[j] = tanh(x_g[j] + h_g[j])
            out[t, b] = h_b
    h_n[:] = h


@njit(**JIT)
def rnn_backward(d_out, dh_n, out, whh, lengths, relu, d_pre, dh0):
    """BPTT for :func:`rnn_forward`. Writes d_pre (T,B,H) = d xp, and dh0."""
    steps, batch, hidden = out.shape
    one = np.ones(1, out.dtype)[0]
    zero = np.zeros(1, out.dtype)[0]
    dh = dh_n.copy()
    dh_prev = np.empty_like(dh)
    for t in range(steps - 1, -1, -1):
        for b in range(batch):
            dp = d_pre[t, b]
            if t >= lengths[b]:
                dp[:] = 0
                continue
            h_b, dh_b, do_b = out[t, b], dh[b], d_out[t, b]
            if relu:
                # torch's relu backward zeroes the gradient where h <= 0, so a NaN unit passes its
                # gradient on (NaN <= 0 is false), where "h > 0" would block it.
                for j in range(hidden):
                    dp[j] = zero if h_b[j] <= zero else dh_b[j] + do_b[j]
            else:
                for j in range(hidden):
                    dp[j] = (dh_b[j] + do_b[j]) * (one - h_b[j] * h_b[j])
        np.dot(d_pre[t], whh, dh_prev)
        for b in range(batch):
            if t < lengths[b]:
                dh[b] = dh_prev[b]
    dh0[:] = dh


# -- one step at a time (streaming) --------------------------------------------------------------


@njit(**JIT)
def lstm_step(x, w_t, bias, whr_t, h, c, xh, pre, full):
    """One LSTM step for streaming, in place on h (B,P) and c (B,H).

    w_t (I+P, 4H) is [W_ih; W_hh]^T, so one product of the combined [x, h]
    (the guide's step 1, literally) gives the gates; bias is b_ih + b_hh.
    """
    batch, inputs = x.shape
    hidden = c.shape[1]
    xh[:, :inputs] = x
    xh[:, inputs:] = h
    np.dot(xh, w_t, pre)
    for b in range(batch):
        p, c_b = pre[b], c[b]
        for k in range(4 * hidden):
            p[k] += bias[k]
        for k in range(2 * hidden):
            p[k] = sigmoid(p[k])
        for k in range(2 * hidden, 3 * hidden):
            p[k] = tanh(p[k])
        for k in range(3 * hidden, 4 * hidden):
            p[k] = sigmoid(p[k])
        for j in range(hidden):
            c_b[j] = p[hidden + j] * c_b[j] + p[j] * p[2 * hidden + j]
        for j in range(hidden):
            full[b, j] = p[3 * hidden + j] * tanh(c_b[j])
    if whr_t.shape[0] > 0:
        np.dot(full, whr_t, h)
    else:
        h[:] = full


@njit(**JIT)
def gru_step(x, wih_t, whh_t, bih, bhh, h, xg, hg):
    """One GRU step for streaming, in place on h (B,H). The GRU needs W_ih x and W_hh h apart."""
    batch, hidden = h.shape
    one = np.ones(1, h.dtype)[0]
    np.dot(x, wih_t, xg)
    np.dot(h, whh_t, hg)
    for b in range(batch):
        x_g, h_g, h_b = xg[b], hg[b], h[b]
        for k in range(3 * hidden):
            x_g[k] += bih[k]
            h_g[k] += bhh[k]
        for k in range(2 * hidden):  # reset and update gates
            x_g[k] = sigmoid(x_g[k] + h_g[k])
        for j in range(hidden):
            candidate = tanh(x_g[2 * hidden + j] + x_g[j] * h_g[2 * hidden + j])
            update = x_g[hidden + j]
            h_b[j] = (one - update) * candidate + update * h_b[j]


@njit(**JIT)
def rnn_step(x, w_t, bias, relu, h, xh, pre):
    """One RNN step for streaming, in place on h (B,H); w_t is [W_ih; W_hh]^T."""
    batch, inputs = x.shape
    hidden = h.shape[1]
    zero = np.zeros(1, h.dtype)[0]
    xh[:, :inputs] = x
    xh[:, inputs:] = h
    np.dot(xh, w_t, pre)
    for b in range(batch):
        p, h_b = pre[b], h[b]
        if relu:
            for j in range(hidden):
                h_b[j] = max(p[j] + bias[j], zero)
        else:
            for j in range(hidden):
                h_b[j] = tanh(p[j] + bias[j])


# -- the products outside the loop -----------------------------------------------------------
# Done here rather than by torch so that a whole fused call stays on one thread: waking
# torch's OpenMP workers after a kernel costs more than these products on small shapes
# (measured: fused.py, _load_single_threaded_blas).


@njit(**JIT)
def linear(x, w, bias, out):
    """out = x @ w^T + bias for x (N, I), w (G, I); bias (G,) or (0,)."""
    np.dot(x, w.T, out)
    if bias.shape[0] > 0:
        for n in range(out.shape[0]):
            out[n] += bias


@njit(**JIT)
def linear_backward(d_out, x, w, d_x, d_w, d_bias):
    """Gradients of :func:`linear`: d_x = d_out @ w, d_w = d_out^T @ x, d_bias = column sums."""
    np.dot(d_out, w, d_x)
    np.dot(d_out.T, x, d_w)
    if d_bias.shape[0] > 0:
        d_bias[:] = 0
        for n in range(d_out.shape[0]):
            d_bias += d_out[n]


@njit(**JIT)
def matmul_tn(a, b, out):
    """out = a^T @ b: a weight gradient summed over all steps and sequences at once."""
    np.dot(a.T, b, out)
