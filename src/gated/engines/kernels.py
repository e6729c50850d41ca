"""numba kernels of the fused engine: the loop over time of ``cells.py``, forward and backward.

Read them next to ``cells.py``: the gate names and the order of the equations are
the same. What differs is only how the work is laid out:

* The input's share of the gates, ``xp = W_ih x + b_ih`` (for LSTM and RNN also
  ``+ b_hh``), is computed for all steps before the loop in one matrix product
  (:func:`linear`). Each step does one matrix product ``h @ W_hh^T`` (``blas.matmul``: MKL)
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

Recurrent regularisation (the reference engine's ``draw_masks`` draws the masks;
the kernels only apply them) comes in as extra arrays, size 0 when off, like
"no bias": ``rmask`` (B, P), recurrent dropout's, which the step's product reads
as ``(rmask * h) @ W_hh^T`` and backward multiplies into the gradient reaching
h_(t-1) (``d W_hh`` then uses ``rmask * h_prev``, see ``fused_cells.py``); and
zoneout's ``zone_h`` (T, B, P), ``zone_c`` (T, B, H), the share of the previous
value each unit keeps at each step (0 or 1 in training, p in eval), mixed in
after the step: ``s_t = z s_(t-1) + (1 - z) s_new``. Backward splits the
gradient reaching s_t into ``z ds`` (straight to s_(t-1)) and ``(1 - z) ds``
(into the step), and reads the unzoned new values where the step's derivative
needs them (the LSTM's c_new, the RNN's h_new), saved apart only when zoning.
Each is behind a flag set once per call, outside the loops over units.
"""

from __future__ import annotations

import math

import numpy as np
from numba import carray, njit, types
from numba.extending import intrinsic, overload

from .blas import matmul

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


# -- copies without numba's slice assignment ---------------------------------------------------
# numba 0.68 compiles, for every array-to-array assignment (``a[:] = b``, ``a += b``), a shape-checking
# error message out of its string functions: 3-4 s of the first call's compile (measured), for an error
# these kernels never raise. Plain loops over elements compile in a fraction of that and run as fast.


@njit(**JIT)
def _copy(dst, src):
    """dst[:] = src for 1-D arrays of one length."""
    for i in range(dst.shape[0]):
        dst[i] = src[i]


@njit(**JIT)
def _add(dst, src):
    """dst += src for 1-D arrays of one length."""
    for i in range(dst.shape[0]):
        dst[i] += src[i]


@njit(**JIT)
def _copy_rows(dst, src):
    """dst[:] = src for 2-D arrays of one shape."""
    for r in range(dst.shape[0]):
        _copy(dst[r], src[r])


@njit(**JIT)
def _add_rows(dst, src):
    """dst += src for 2-D arrays of one shape."""
    for r in range(dst.shape[0]):
        _add(dst[r], src[r])


# -- LSTM ------------------------------------------------------------------------------------


@njit(**JIT)
def lstm_forward(xp, h0, c0, whh_t, whr_t, rmask, zone_h, zone_c, lengths, save, out, gates, cells, cells_new,
                 hfull, h_n, c_n):
    """xp (T,B,4H) with both biases; h0 (B,P); c0 (B,H); whh_t (P,4H); whr_t (H,P) or (0,0);
    rmask (B,P), zone_h (T,B,P), zone_c (T,B,H) or size 0 (see the module's docstring).

    Writes out (T,B,P), gates (T|1,B,4H) activated i,f,g,o, cells (T|1,B,H) the cell state
    (zoned), cells_new (T|1,B,H) the cell state before zoneout (only with zone_c; else untouched),
    hfull (T|1,B,H) the hidden state before projection (only with projection), h_n, c_n.
    """
    steps, batch, four_h = xp.shape
    hidden = four_h // 4
    project = whr_t.shape[0] > 0
    drop, zone_hidden, zone_cell = rmask.shape[0] > 0, zone_h.shape[0] > 0, zone_c.shape[0] > 0
    one = np.ones(1, xp.dtype)[0]
    h = h0.copy()
    c = c0.copy()
    hh = np.empty((batch, four_h), xp.dtype)  # W_hh h for this step
    full = np.empty((batch, hidden), xp.dtype)  # o * tanh(c) before the projection
    projected = np.empty((batch, h.shape[1]), xp.dtype)
    dropped = np.empty_like(h)  # rmask * h, what W_hh reads under recurrent dropout
    c_prev = np.empty_like(c)  # c_(t-1), which zoneout mixes back in
    for t in range(steps):
        s = t * save
        if drop:
            _masked(h, rmask, dropped)
            matmul(dropped, whh_t, hh)
        else:
            matmul(h, whh_t, hh)
        if zone_cell:
            _copy_rows(c_prev, c)
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
            _copy(gates[s, b], pre)
            _copy(cells[s, b], c_b)
        if zone_cell:  # h_new read the unzoned c_new (kept for backward); the state carried on is zoned
            for b in range(batch):
                if t < lengths[b]:
                    _copy(cells_new[s, b], c[b])
                    _zone(zone_c[t, b], c_prev[b], c[b], one)
                    _copy(cells[s, b], c[b])
        if project:
            matmul(full, whr_t, projected)
        if zone_hidden:  # into the new h, while h still holds h_(t-1); hfull stays unzoned
            _zone_rows(zone_h[t], h, projected if project else full, lengths, t, one)
        for b in range(batch):
            if t < lengths[b]:
                if project:
                    _copy(h[b], projected[b])
                    _copy(hfull[s, b], full[b])
                else:
                    _copy(h[b], full[b])
                _copy(out[t, b], h[b])
        if project:
            for b in range(batch):
                if t >= lengths[b]:
                    hfull[s, b, :] = 0
    _copy_rows(h_n, h)
    _copy_rows(c_n, c)


@njit(**JIT)
def lstm_backward(d_out, dh_n, dc_n, gates, cells, cells_new, c0, whh, whr, rmask, zone_h, zone_c, lengths,
                  d_gates, d_proj, dh0, dc0):
    """Backpropagation through time for :func:`lstm_forward` (run with save=True).

    d_out (T,B,P); whh (4H,P); whr (P,H) or (0,0); the masks as forward had them.
    Writes d_gates (T,B,4H): the gradient of the gates' pre-activations, which is
    also d xp; d_proj (T,B,P): the gradient reaching each new projected h (for W_hr); dh0, dc0.
    """
    steps, batch, four_h = gates.shape
    hidden = four_h // 4
    project = whr.shape[0] > 0
    drop, zone_hidden, zone_cell = rmask.shape[0] > 0, zone_h.shape[0] > 0, zone_c.shape[0] > 0
    squashed_cells = cells_new if zone_cell else cells  # the c_new that h_new's tanh read
    one = np.ones(1, gates.dtype)[0]
    dh = dh_n.copy()  # gradient reaching h_t from later steps
    dc = dc_n.copy()
    d_full = np.empty((batch, hidden), gates.dtype)
    dh_prev = np.empty_like(dh)
    dh_kept, dc_kept = np.empty_like(dh), np.empty_like(dc)  # zoneout's shares straight to step t - 1
    for t in range(steps - 1, -1, -1):
        c_prev = cells[t - 1] if t > 0 else c0
        for b in range(batch):
            if t < lengths[b]:
                _add(dh[b], d_out[t, b])
        if zone_hidden or zone_cell:
            for b in range(batch):
                if t < lengths[b]:
                    if zone_hidden:
                        _split(zone_h[t, b], dh[b], dh_kept[b], one)
                    if zone_cell:
                        _split(zone_c[t, b], dc[b], dc_kept[b], one)
        if project:
            for b in range(batch):
                if t < lengths[b]:
                    _copy(d_proj[t, b], dh[b])
                else:
                    d_proj[t, b] = 0
            matmul(dh, whr, d_full)
        else:
            _copy_rows(d_full, dh)
        for b in range(batch):
            dg = d_gates[t, b]
            if t >= lengths[b]:
                dg[:] = 0
                continue
            g_b, dc_b = gates[t, b], dc[b]
            for j in range(hidden):
                input, forget = g_b[j], g_b[hidden + j]
                candidate, output = g_b[2 * hidden + j], g_b[3 * hidden + j]
                squashed = tanh(squashed_cells[t, b, j])
                d_output = d_full[b, j] * squashed
                d_cell = dc_b[j] + d_full[b, j] * output * (one - squashed * squashed)
                dg[j] = d_cell * candidate * input * (one - input)
                dg[hidden + j] = d_cell * c_prev[b, j] * forget * (one - forget)
                dg[2 * hidden + j] = d_cell * input * (one - candidate * candidate)
                dg[3 * hidden + j] = d_output * output * (one - output)
                dc_b[j] = d_cell * forget
        if zone_cell:
            for b in range(batch):
                if t < lengths[b]:
                    _add(dc[b], dc_kept[b])
        matmul(d_gates[t], whh, dh_prev)
        if drop or zone_hidden:
            _pass_back(dh_prev, rmask, dh_kept, lengths, t, drop, zone_hidden, dh)
        else:
            for b in range(batch):
                if t < lengths[b]:  # an ended sequence passes its gradient on unchanged
                    _copy(dh[b], dh_prev[b])
    _copy_rows(dh0, dh)
    _copy_rows(dc0, dc)


# -- GRU -------------------------------------------------------------------------------------


@njit(**JIT)
def gru_forward(xp, h0, whh_t, bhh, rmask, zone_h, lengths, save, out, gates, h_n_part, h_n, first, last):
    """xp (T,B,3H) with b_ih only; whh_t (H,3H); bhh (3H,) (zeros without bias); rmask (B,H), zone_h (T,B,H)
    or size 0. W_hh reads rmask * h; the interpolation z * h_prev reads h itself.

    Writes out (T,B,H), gates (T|1,B,3H) reset, update, candidate, and
    h_n_part (T|1,B,H) = W_hn h + b_hn, which backward needs for the reset gate. Only
    sequences first .. last - 1: each sequence's recurrence is its own, so two threads can run
    two ranges at once (``fused_cells._ranges``).
    """
    steps, _, three_h = xp.shape
    hidden = three_h // 3
    one = np.ones(1, xp.dtype)[0]
    drop, zone_hidden = rmask.shape[0] > 0, zone_h.shape[0] > 0
    h = h0[first:last].copy()
    hh = np.empty((last - first, three_h), xp.dtype)
    dropped = np.empty_like(h)
    for t in range(steps):
        s = t * save
        if drop:
            _masked(h, rmask[first:last], dropped)
            matmul(dropped, whh_t, hh)
        else:
            matmul(h, whh_t, hh)
        for i in range(last - first):
            b = first + i
            if t >= lengths[b]:
                out[t, b, :] = 0
                gates[s, b, :] = 0
                h_n_part[s, b, :] = 0
                continue
            x_g, h_g, g_b, h_b = xp[t, b], hh[i], gates[s, b], h[i]
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
            _copy(out[t, b], h_b)
        if zone_hidden:
            previous = out[t - 1] if t > 0 else h0
            _zone_outputs(zone_h[t, first:last], previous[first:last], h, out[t, first:last], lengths[first:last], t,
                          one)
    _copy_rows(h_n[first:last], h)


@njit(**JIT)
def gru_backward(d_out, dh_n, gates, h_n_part, out, h0, whh, rmask, zone_h, lengths, d_xg, d_hg, dh0, first,
                 last):
    """BPTT for :func:`gru_forward`. Writes d_xg (T,B,3H) = d xp, d_hg (T,B,3H) = d(W_hh h + b_hh), dh0;
    sequences first .. last - 1 only, as forward."""
    steps, _, three_h = gates.shape
    hidden = three_h // 3
    one = np.ones(1, gates.dtype)[0]
    drop, zone_hidden = rmask.shape[0] > 0, zone_h.shape[0] > 0
    dh = dh_n[first:last].copy()
    dh_prev = np.empty_like(dh)
    dh_kept = np.empty_like(dh)
    d_step = np.zeros_like(d_out) if zone_hidden else d_out  # zoneout folds d_out into dh first
    for t in range(steps - 1, -1, -1):
        h_prev = out[t - 1] if t > 0 else h0
        if zone_hidden:
            _split_outputs(zone_h[t, first:last], d_out[t, first:last], dh, dh_kept, lengths[first:last], t, one)
        for i in range(last - first):
            b = first + i
            dx, dhg = d_xg[t, b], d_hg[t, b]
            if t >= lengths[b]:
                dx[:] = 0
                dhg[:] = 0
                continue
            g_b, dh_b = gates[t, b], dh[i]
            for j in range(hidden):
                reset, update, candidate = g_b[j], g_b[hidden + j], g_b[2 * hidden + j]
                d_h = dh_b[j] + d_step[t, b, j]
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
        matmul(d_hg[t, first:last], whh, dh_prev)
        if drop or zone_hidden:
            _pass_back(dh_prev, rmask[first:last], dh_kept, lengths[first:last], t, drop, zone_hidden, dh_prev)
        _add_rows(dh, dh_prev)  # zero rows for ended sequences, whose dh passes on unchanged
    _copy_rows(dh0[first:last], dh)


# -- RNN -------------------------------------------------------------------------------------


@njit(**JIT)
def rnn_forward(xp, h0, whh_t, rmask, zone_h, lengths, relu, out, fresh, h_n):
    """xp (T,B,H) with both biases; whh_t (H,H); rmask (B,H), zone_h (T,B,H) or size 0.

    Writes out (T,B,H), fresh (T,B,H) the new h before zoneout (only with zone_h; else untouched), h_n.
    """
    steps, batch, hidden = xp.shape
    zero = np.zeros(1, xp.dtype)[0]
    one = np.ones(1, xp.dtype)[0]
    drop, zone_hidden = rmask.shape[0] > 0, zone_h.shape[0] > 0
    h = h0.copy()
    hh = np.empty((batch, hidden), xp.dtype)
    dropped = np.empty_like(h)
    for t in range(steps):
        if drop:
            _masked(h, rmask, dropped)
            matmul(dropped, whh_t, hh)
        else:
            matmul(h, whh_t, hh)
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
            _copy(out[t, b], h_b)
        if zone_hidden:
            _copy_rows(fresh[t], out[t])
            _zone_outputs(zone_h[t], out[t - 1] if t > 0 else h0, h, out[t], lengths, t, one)
    _copy_rows(h_n, h)


@njit(**JIT)
def rnn_backward(d_out, dh_n, out, fresh, whh, rmask, zone_h, lengths, relu, d_pre, dh0):
    """BPTT for :func:`rnn_forward`. Writes d_pre (T,B,H) = d xp, and dh0."""
    steps, batch, hidden = out.shape
    one = np.ones(1, out.dtype)[0]
    zero = np.zeros(1, out.dtype)[0]
    drop, zone_hidden = rmask.shape[0] > 0, zone_h.shape[0] > 0
    squashed = fresh if zone_hidden else out  # the h that tanh or relu produced
    d_step = np.zeros_like(d_out) if zone_hidden else d_out  # zoneout folds d_out into dh first
    dh = dh_n.copy()
    dh_prev = np.empty_like(dh)
    dh_kept = np.empty_like(dh)
    for t in range(steps - 1, -1, -1):
        if zone_hidden:
            _split_outputs(zone_h[t], d_out[t], dh, dh_kept, lengths, t, one)
        for b in range(batch):
            dp = d_pre[t, b]
            if t >= lengths[b]:
                dp[:] = 0
                continue
            h_b, dh_b, do_b = squashed[t, b], dh[b], d_step[t, b]
            if relu:
                # torch's relu backward zeroes the gradient where h <= 0, so a NaN unit passes its
                # gradient on (NaN <= 0 is false), where "h > 0" would block it.
                for j in range(hidden):
                    dp[j] = zero if h_b[j] <= zero else dh_b[j] + do_b[j]
            else:
                for j in range(hidden):
                    dp[j] = (dh_b[j] + do_b[j]) * (one - h_b[j] * h_b[j])
        matmul(d_pre[t], whh, dh_prev)
        if drop or zone_hidden:
            _pass_back(dh_prev, rmask, dh_kept, lengths, t, drop, zone_hidden, dh)
        else:
            for b in range(batch):
                if t < lengths[b]:
                    _copy(dh[b], dh_prev[b])
    _copy_rows(dh0, dh)


# -- recurrent regularisation's pieces -------------------------------------------------------


@njit(**JIT)
def _masked(h, rmask, dropped):
    """dropped = rmask * h: the hidden state as W_hh reads it under recurrent dropout."""
    for b in range(h.shape[0]):
        h_b, m_b, d_b = h[b], rmask[b], dropped[b]
        for j in range(h.shape[1]):
            d_b[j] = m_b[j] * h_b[j]


@njit(**JIT)
def _zone(z, prev, new, one):
    """Zoneout of one sequence's state, in place on ``new``: new = z * prev + (1 - z) * new."""
    for j in range(new.shape[0]):
        new[j] = z[j] * prev[j] + (one - z[j]) * new[j]


@njit(**JIT)
def _split(z, d, kept, one):
    """Backward of :func:`_zone`: of the gradient ``d`` reaching s_t, ``kept`` = z * d goes straight to
    s_(t-1), and ``d`` keeps (1 - z) * d for the step that computed s_new."""
    for j in range(d.shape[0]):
        kept[j] = z[j] * d[j]
        d[j] = (one - z[j]) * d[j]


@njit(**JIT)
def _zone_rows(z, prev, new, lengths, t, one):
    """:func:`_zone` of each running sequence's row of ``new`` (B, ·), in place. A call of its own: written
    inline in :func:`lstm_forward`, even skipped, it measured 1-2% off the plain kernel's time."""
    for b in range(new.shape[0]):
        if t < lengths[b]:
            _zone(z[b], prev[b], new[b], one)


@njit(**JIT)
def _zone_outputs(z, prev, h, out_t, lengths, t, one):
    """Zoneout of a step that wrote its new h into ``h`` and ``out_t``: both become z * prev + (1 - z) * h
    for each running sequence (``prev``: h_(t-1), (B, H))."""
    for b in range(h.shape[0]):
        if t < lengths[b]:
            _zone(z[b], prev[b], h[b], one)
            _copy(out_t[b], h[b])


@njit(**JIT)
def _split_outputs(z, d_out_t, dh, dh_kept, lengths, t, one):
    """Backward of :func:`_zone_outputs` for each running sequence: dh (from later steps) plus d_out_t
    is split into dh_kept = z * (...) for h_(t-1) and dh = (1 - z) * (...) for the step."""
    for b in range(dh.shape[0]):
        if t < lengths[b]:
            _add(dh[b], d_out_t[b])
            _split(z[b], dh[b], dh_kept[b], one)


@njit(**JIT)
def _pass_back(dh_prev, rmask, dh_kept, lengths, t, drop, zone, dh):
    """dh = rmask * dh_prev (+ zoneout's kept share) for each running sequence: the gradient reaching
    h_(t-1), through W_hh's product with rmask * h_(t-1) and through zoneout. ``dh`` may be ``dh_prev``."""
    for b in range(dh.shape[0]):
        if t >= lengths[b]:  # an ended sequence passes its gradient on unchanged
            continue
        d_b, p_b = dh[b], dh_prev[b]
        if drop:
            m_b = rmask[b]
            for j in range(d_b.shape[0]):
                d_b[j] = m_b[j] * p_b[j]
        else:
            _copy(d_b, p_b)
        if zone:
            _add(d_b, dh_kept[b])


# -- one step at a time (streaming) --------------------------------------------------------------
# A stream's step is a few microseconds of work, so what it costs to get there counts: each kernel
# takes its input and output as addresses (torch's ``data_ptr()``: no numpy array made per step),
# folds the bias into the product (a last row of the weights, read against a constant 1), and
# gets its scratch space as one array, so that numba's dispatcher has few arguments to type.


@intrinsic
def _pointer(typingctx, address, like):
    """The integer ``address`` as a pointer to elements of ``like``'s dtype (for ``numba.carray``)."""
    pointer_type = types.CPointer(like.dtype)
    sig = pointer_type(address, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(pointer_type))

    return sig, codegen


@njit(**JIT)
def _stack_input(x_addr, h, xh, inputs):
    """xh = [x, h, 1] per row: the step's input (read at ``x_addr``), its previous h, the bias's 1."""
    batch, size = h.shape
    x = carray(_pointer(x_addr, h), (batch, inputs))
    one = np.ones(1, h.dtype)[0]
    for b in range(batch):
        _copy(xh[b, :inputs], x[b])
        _copy(xh[b, inputs : inputs + size], h[b])
        xh[b, inputs + size] = one


@njit(**JIT)
def _write_output(out_addr, h):
    """Copy the new h to ``out_addr`` (the stream's output tensor); 0: not the top layer, no output."""
    if out_addr != 0:
        _copy_rows(carray(_pointer(out_addr, h), h.shape), h)


@njit(**JIT)
def lstm_stream(x_addr, out_addr, w_t, whr_t, h, c, scratch):
    """One LSTM step for streaming, in place on h (B,P) and c (B,H).

    w_t (I+P+1, 4H) is [W_ih; W_hh; b]^T with b = b_ih + b_hh, so one product of the combined
    [x, h, 1] (the guide's step 1, literally) gives the gates. scratch: at least B (I+P+1 + 5H).
    """
    batch, size = h.shape
    hidden = c.shape[1]
    width = w_t.shape[0]
    xh = scratch[: batch * width].reshape(batch, width)
    pre = scratch[batch * width : batch * (width + 4 * hidden)].reshape(batch, 4 * hidden)
    full = scratch[batch * (width + 4 * hidden) : batch * (width + 5 * hidden)].reshape(batch, hidden)
    _stack_input(x_addr, h, xh, width - size - 1)
    matmul(xh, w_t, pre)
    for b in range(batch):
        p, c_b = pre[b], c[b]
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
        matmul(full, whr_t, h)
    else:
        _copy_rows(h, full)
    _write_output(out_addr, h)


@njit(**JIT)
def gru_stream(x_addr, out_addr, wih_t, whh_t, h, scratch):
    """One GRU step for streaming, in place on h (B,H). The GRU needs W_ih x and W_hh h apart:
    wih_t (I+1, 3H) = [W_ih; b_ih]^T, whh_t (H+1, 3H) = [W_hh; b_hh]^T. scratch: at least B (I+1 + 7H+1)."""
    batch, hidden = h.shape
    inputs = wih_t.shape[0] - 1
    one = np.ones(1, h.dtype)[0]
    xs = scratch[: batch * (inputs + 1)].reshape(batch, inputs + 1)
    start = batch * (inputs + 1)
    hs = scratch[start : start + batch * (hidden + 1)].reshape(batch, hidden + 1)
    start += batch * (hidden + 1)
    xg = scratch[start : start + batch * 3 * hidden].reshape(batch, 3 * hidden)
    hg = scratch[start + batch * 3 * hidden : start + batch * 6 * hidden].reshape(batch, 3 * hidden)
    x = carray(_pointer(x_addr, h), (batch, inputs))
    for b in range(batch):
        _copy(xs[b, :inputs], x[b])
        xs[b, inputs] = one
        _copy(hs[b, :hidden], h[b])
        hs[b, hidden] = one
    matmul(xs, wih_t, xg)
    matmul(hs, whh_t, hg)
    for b in range(batch):
        x_g, h_g, h_b = xg[b], hg[b], h[b]
        for k in range(2 * hidden):  # reset and update gates
            x_g[k] = sigmoid(x_g[k] + h_g[k])
        for j in range(hidden):
            candidate = tanh(x_g[2 * hidden + j] + x_g[j] * h_g[2 * hidden + j])
            update = x_g[hidden + j]
            h_b[j] = (one - update) * candidate + update * h_b[j]
    _write_output(out_addr, h)


@njit(**JIT)
def rnn_stream(x_addr, out_addr, w_t, relu, h, scratch):
    """One RNN step for streaming, in place on h (B,H); w_t (I+H+1, H) is [W_ih; W_hh; b]^T.
    scratch: at least B (I+H+1 + H)."""
    batch, hidden = h.shape
    width = w_t.shape[0]
    zero = np.zeros(1, h.dtype)[0]
    xh = scratch[: batch * width].reshape(batch, width)
    pre = scratch[batch * width : batch * (width + hidden)].reshape(batch, hidden)
    _stack_input(x_addr, h, xh, width - hidden - 1)
    matmul(xh, w_t, pre)
    for b in range(batch):
        p, h_b = pre[b], h[b]
        if relu:
            for j in range(hidden):
                h_b[j] = max(p[j], zero)
        else:
            for j in range(hidden):
                h_b[j] = tanh(p[j])
    _write_output(out_addr, h)


# -- the products outside the loop -----------------------------------------------------------
# Done here rather than by torch so that a whole fused call stays on one thread: waking
# torch's OpenMP workers after a kernel costs more than these products on small shapes
# (measured: fused.py, _load_single_threaded_blas).


@njit(**JIT)
def linear(x, w, bias, out):
    """out = x @ w^T + bias for x (N, I), w (G, I); bias (G,) or (0,)."""
    matmul(x, w.T, out)
    if bias.shape[0] > 0:
        for n in range(out.shape[0]):
            _add(out[n], bias)


@njit(**JIT)
def linear_backward(d_out, x, w, d_x, d_w, d_bias):
    """Gradients of :func:`linear`: d_x = d_out @ w, d_w = d_out^T @ x, d_bias = column sums."""
    matmul(d_out, w, d_x)
    matmul(d_out.T, x, d_w)
    if d_bias.shape[0] > 0:
        d_bias[:] = 0
        for n in range(d_out.shape[0]):
            _add(d_bias, d_out[n])


@njit(**JIT)
def matmul_tn(a, b, out):
    """out = a^T @ b: a weight gradient summed over all steps and sequences at once."""
    matmul(a.T, b, out)
