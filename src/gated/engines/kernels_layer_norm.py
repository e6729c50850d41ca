"""numba kernels of the layer-normalised LSTM and GRU: the loops of ``cells.py``'s
``layer_norm_lstm_cell`` and ``layer_norm_gru_cell``, forward and backward.

The layout is ``kernels.py``'s (read that first), with the norms added:

* Before the loop, the input's share for all steps: ``a = x W_ih^T`` in one
  matrix product (``kernels.linear``), then :func:`norm_rows` normalises every
  row of ``a`` over the whole gate vector, in place, and writes
  ``xp = a_hat * gain_ih + shift``. Everything that is a constant add after
  the norms joins ``shift`` once: for the LSTM ``b_ih + b_hh`` (folded by
  ``fused.kernel_weights``) and both norms' biases, for the GRU ``b_ih`` only,
  since its ``b_hn`` sits inside ``reset * (...)`` and stays in the loop.
* Each step: one BLAS product ``h W_hh^T``, then per sequence the norm of that
  row (:func:`_moments`, two passes: mean, then variance, as exact as torch's
  Welford in practice), then the gate math in short loops that LLVM vectorises.
  The LSTM also normalises the new cell state, over the hidden units, before
  the tanh that makes h; the cell state it carries stays raw.
* Saved per step for backward and traces: the activated gates, the normalised
  hidden share ``W_hh h`` (``hnorm``), its ``1/std``, and for the LSTM the raw
  cell, its mean and ``1/std`` and the normalised cell with gain and bias
  (what a trace shows as ``cell_normalized``). Normalised values are saved,
  so backward does not redo any matrix product to find them.
* Backward through time by hand, with the norm's backward
  ``d a = rstd * (g - mean(g) - a_hat * mean(g * a_hat))``, ``g = d y * gain``,
  per row. It writes the gradient of each step's gates (that of ``xp``) and of
  each step's ``W_hh h``; where a gradient exists only inside the loop (LN_c's
  gain and bias, the GRU's hidden gain and ``b_hh``) it is summed there. All
  else comes after the loop, over all steps at once: the input-share norm's
  backward and column sums (:func:`norm_rows_backward`, which also gives the
  LSTM's hidden gain, whose output gradient is that of ``xp``), then one
  product per weight (``kernels.linear_backward``, ``kernels.matmul_tn``).
* The reductions of a norm (:func:`_moments`, :func:`_norm_backward_row`) allow
  reassociation, so that LLVM vectorises the sums; everything else keeps
  ``kernels.py``'s flags. float32 uses ``kernels.py``'s rational tanh and
  sigmoid, and constants are made in the arrays' dtype (``one``, ``eps``).
* Packed input as in ``kernels.py``: past ``lengths[b]`` a sequence keeps its
  state, its outputs, saved values and gradients are zero.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .blas import matmul
from .kernels import JIT, sigmoid, tanh

# The sums of a norm may be reordered (vectorised with several accumulators): a few ulp of
# difference from a sequential sum, far below what the norm's output shows.
REDUCE = dict(JIT, fastmath={"contract", "reassoc"})


@njit(**REDUCE)
def _moments(v, inv_n, eps, one):
    """(mean, 1 / sqrt(biased variance + eps)) of a row, in two passes."""
    total = inv_n - inv_n  # a zero of the arrays' dtype (a literal 0.0 would be float64)
    for k in range(v.shape[0]):
        total += v[k]
    mean = total * inv_n
    spread = inv_n - inv_n
    for k in range(v.shape[0]):
        d = v[k] - mean
        spread += d * d
    return mean, one / math.sqrt(spread * inv_n + eps)


@njit(**REDUCE)
def _norm_backward_row(g, a_hat, rstd, inv_n, d_a):
    """d_a = rstd * (g - mean(g) - a_hat * mean(g * a_hat)), g = d(normalised) * gain."""
    mean_g = inv_n - inv_n
    mean_ga = inv_n - inv_n
    for k in range(g.shape[0]):
        mean_g += g[k]
        mean_ga += g[k] * a_hat[k]
    mean_g *= inv_n
    mean_ga *= inv_n
    for k in range(g.shape[0]):
        d_a[k] = rstd * (g[k] - mean_g - a_hat[k] * mean_ga)


# -- the input's share, all steps at once ----------------------------------------------------


@njit(**JIT)
def norm_rows(a, gain, shift, eps, rstd, xp):
    """Every row of a (N, G) normalised in place (a becomes a_hat); xp = a_hat * gain + shift; rstd (N,)."""
    size = a.shape[1]
    inv_n = np.full(1, 1.0 / size, a.dtype)[0]
    one = np.ones(1, a.dtype)[0]
    for n in range(a.shape[0]):
        row, out = a[n], xp[n]
        mean, r = _moments(row, inv_n, eps, one)
        for k in range(size):
            row[k] = (row[k] - mean) * r
        for k in range(size):
            out[k] = row[k] * gain[k] + shift[k]
        rstd[n] = r


@njit(**JIT)
def norm_rows_backward(d_y, a_hat, rstd, gain, hnorm, d_a, d_gain, d_shift, d_gain_hh):
    """Backward of :func:`norm_rows` and the column sums of the gates' gradient d_y (N, G).

    d_a: gradient of the rows before the norm; d_gain = sum d_y * a_hat; d_shift = sum d_y.
    hnorm (N, G) or (0, 0): the hidden share's normalised rows, whose gain's gradient is
    sum d_y * hnorm when d_y is also that norm's output gradient (the LSTM: both shares add).
    """
    size = a_hat.shape[1]
    inv_n = np.full(1, 1.0 / size, a_hat.dtype)[0]
    with_hidden = hnorm.shape[0] > 0
    d_gain[:] = 0
    d_shift[:] = 0
    d_gain_hh[:] = 0
    g = np.empty(size, a_hat.dtype)
    for n in range(a_hat.shape[0]):
        dy, ah = d_y[n], a_hat[n]
        for k in range(size):
            d_gain[k] += dy[k] * ah[k]
            d_shift[k] += dy[k]
            g[k] = dy[k] * gain[k]
        if with_hidden:
            hn = hnorm[n]
            for k in range(size):
                d_gain_hh[k] += dy[k] * hn[k]
        _norm_backward_row(g, ah, rstd[n], inv_n, d_a[n])


# -- LSTM ------------------------------------------------------------------------------------


@njit(**JIT)
def lstm_forward(xp, h0, c0, whh_t, gain_hh, gain_c, bias_c, eps, lengths, save,
                 out, gates, cells, cell_norm, hnorm, stats, h_n, c_n, first, last):
    """xp (T,B,4H): the input's share with every constant add folded in; whh_t (H,4H).

    Writes out (T,B,H); per step (T|1, B, ·): gates i,f,g,o activated, cells raw,
    cell_norm = LN_c(c) with gain and bias, hnorm = the normalised W_hh h, and
    stats = (1/std of W_hh h, mean of c, 1/std of c); h_n, c_n. Only sequences
    first .. last - 1: each sequence's recurrence is its own, so two threads can
    run two ranges at once (``fused_layer_norm``).
    """
    steps, _, four_h = xp.shape
    hidden = four_h // 4
    inv_g, inv_h = np.full(1, 1.0 / four_h, xp.dtype)[0], np.full(1, 1.0 / hidden, xp.dtype)[0]
    one = np.ones(1, xp.dtype)[0]
    h, c = h0[first:last].copy(), c0[first:last].copy()
    hh = np.empty((last - first, four_h), xp.dtype)  # W_hh h for this step
    for t in range(steps):
        s = t * save
        matmul(h, whh_t, hh)
        for i in range(last - first):
            b = first + i
            if t >= lengths[b]:  # this sequence has ended: keep its state, zero what it shows
                out[t, b, :] = 0
                gates[s, b, :] = 0
                cells[s, b, :] = 0
                cell_norm[s, b, :] = 0
                hnorm[s, b, :] = 0
                stats[s, b, :] = 0
                continue
            row, nh, pre, x_g = hh[i], hnorm[s, b], gates[s, b], xp[t, b]
            mean, rstd = _moments(row, inv_g, eps, one)  # LN_h over all four gates
            for k in range(four_h):
                nh[k] = (row[k] - mean) * rstd
            for k in range(four_h):  # combine: LN_x(W_ih x) + LN_h(W_hh h) + biases
                pre[k] = x_g[k] + nh[k] * gain_hh[k]
            for k in range(2 * hidden):  # input and forget gates
                pre[k] = sigmoid(pre[k])
            for k in range(2 * hidden, 3 * hidden):  # candidate
                pre[k] = tanh(pre[k])
            for k in range(3 * hidden, four_h):  # output gate
                pre[k] = sigmoid(pre[k])
            c_b, h_b, cn = c[i], h[i], cell_norm[s, b]
            for j in range(hidden):  # the new cell state, carried raw
                c_b[j] = pre[hidden + j] * c_b[j] + pre[j] * pre[2 * hidden + j]
            mean_c, rstd_c = _moments(c_b, inv_h, eps, one)  # LN_c: only what h reads is normalised
            for j in range(hidden):
                cn[j] = (c_b[j] - mean_c) * rstd_c * gain_c[j] + bias_c[j]
            for j in range(hidden):
                h_b[j] = pre[3 * hidden + j] * tanh(cn[j])
            cells[s, b, :] = c_b
            out[t, b, :] = h_b
            stats[s, b, 0], stats[s, b, 1], stats[s, b, 2] = rstd, mean_c, rstd_c
    h_n[first:last] = h
    c_n[first:last] = c


@njit(**JIT)
def lstm_backward(d_out, dh_n, dc_n, gates, cells, cell_norm, hnorm, stats, c0, whh, gain_hh, gain_c,
                  lengths, d_pre, d_hh, dh0, dc0, d_gain_c, d_bias_c, first, last):
    """BPTT for :func:`lstm_forward` (run with save=True); whh (4H,H).

    Writes d_pre (T,B,4H): the gradient of the gates' pre-activations, which is that of
    xp and of the hidden share after its norm; d_hh (T,B,4H): that of W_hh h before its
    norm (for d W_hh); dh0, dc0; d_gain_c and d_bias_c, summed over all steps. Only
    sequences first .. last - 1, as forward; the two sums cover those sequences only.
    """
    steps, _, four_h = gates.shape
    hidden = four_h // 4
    inv_g, inv_h = np.full(1, 1.0 / four_h, gates.dtype)[0], np.full(1, 1.0 / hidden, gates.dtype)[0]
    one = np.ones(1, gates.dtype)[0]
    dh, dc = dh_n[first:last].copy(), dc_n[first:last].copy()  # the gradients reaching h_t and c_t from later steps
    dh_prev = np.empty_like(dh)
    g_c, c_hat, d_c = np.empty(hidden, gates.dtype), np.empty(hidden, gates.dtype), np.empty(hidden, gates.dtype)
    g_h = np.empty(four_h, gates.dtype)
    d_gain_c[:] = 0
    d_bias_c[:] = 0
    for t in range(steps - 1, -1, -1):
        c_prev = cells[t - 1] if t > 0 else c0
        for i in range(last - first):
            b = first + i
            dp = d_pre[t, b]
            if t >= lengths[b]:  # an ended sequence passes its gradients on unchanged
                dp[:] = 0
                d_hh[t, b, :] = 0
                continue
            g_b, cn, c_t, dh_b, dc_b = gates[t, b], cell_norm[t, b], cells[t, b], dh[i], dc[i]
            rstd_h, mean_c, rstd_c = stats[t, b, 0], stats[t, b, 1], stats[t, b, 2]
            for j in range(hidden):  # through h = o * tanh(LN_c(c)) to the output gate and LN_c's output
                d_h = dh_b[j] + d_out[t, b, j]
                output, squashed = g_b[3 * hidden + j], tanh(cn[j])
                dp[3 * hidden + j] = d_h * squashed * output * (one - output)
                d_cn = d_h * output * (one - squashed * squashed)
                c_hat[j] = (c_t[j] - mean_c) * rstd_c
                d_gain_c[j] += d_cn * c_hat[j]
                d_bias_c[j] += d_cn
                g_c[j] = d_cn * gain_c[j]
            _norm_backward_row(g_c, c_hat, rstd_c, inv_h, d_c)
            for j in range(hidden):  # the cell state: through h (its norm) and to the next step
                input, forget, candidate = g_b[j], g_b[hidden + j], g_b[2 * hidden + j]
                d_cell = dc_b[j] + d_c[j]
                dp[j] = d_cell * candidate * input * (one - input)
                dp[hidden + j] = d_cell * c_prev[b, j] * forget * (one - forget)
                dp[2 * hidden + j] = d_cell * input * (one - candidate * candidate)
                dc_b[j] = d_cell * forget
            for k in range(four_h):  # back through LN_h to W_hh h
                g_h[k] = dp[k] * gain_hh[k]
            _norm_backward_row(g_h, hnorm[t, b], rstd_h, inv_g, d_hh[t, b])
        matmul(d_hh[t, first:last], whh, dh_prev)
        for i in range(last - first):
            if t < lengths[first + i]:
                dh[i] = dh_prev[i]
    dh0[first:last] = dh
    dc0[first:last] = dc


@njit(**JIT)
def lstm_step(x, wih_t, whh_t, shift, gain_ih, gain_hh, gain_c, bias_c, eps, h, c, xg, hh):
    """One step for streaming, in place on h and c (B,H): :func:`norm_rows` and one step of the loop."""
    batch, hidden = h.shape
    four_h = 4 * hidden
    inv_g, inv_h = np.full(1, 1.0 / four_h, h.dtype)[0], np.full(1, 1.0 / hidden, h.dtype)[0]
    one = np.ones(1, h.dtype)[0]
    matmul(x, wih_t, xg)  # the two shares apart: each has its own norm
    matmul(h, whh_t, hh)
    for b in range(batch):
        p, q, c_b, h_b = xg[b], hh[b], c[b], h[b]
        mean_x, rstd_x = _moments(p, inv_g, eps, one)
        mean_h, rstd_h = _moments(q, inv_g, eps, one)
        for k in range(four_h):  # the same operations as norm_rows and lstm_forward, so the same rounding
            p[k] = (p[k] - mean_x) * rstd_x
            p[k] = p[k] * gain_ih[k] + shift[k]
            q[k] = (q[k] - mean_h) * rstd_h
            p[k] = p[k] + q[k] * gain_hh[k]
        for k in range(2 * hidden):
            p[k] = sigmoid(p[k])
        for k in range(2 * hidden, 3 * hidden):
            p[k] = tanh(p[k])
        for k in range(3 * hidden, four_h):
            p[k] = sigmoid(p[k])
        for j in range(hidden):
            c_b[j] = p[hidden + j] * c_b[j] + p[j] * p[2 * hidden + j]
        mean_c, rstd_c = _moments(c_b, inv_h, eps, one)
        for j in range(hidden):
            h_b[j] = p[3 * hidden + j] * tanh((c_b[j] - mean_c) * rstd_c * gain_c[j] + bias_c[j])


# -- GRU -------------------------------------------------------------------------------------


@njit(**JIT)
def gru_forward(xp, h0, whh_t, gain_hh, bhh, eps, lengths, save, out, gates, h_n_part, hnorm, rstd_h, h_n, first,
                last):
    """xp (T,B,3H): LN_x(W_ih x) + b_ih; whh_t (H,3H); bhh (3H,) (zeros without bias).

    Writes out (T,B,H); per step (T|1, B, ·): gates reset, update, candidate;
    h_n_part = LN_h(W_hh h)_n + b_hn, which the reset gate weighs; hnorm = the
    normalised W_hh h and rstd_h (T|1, B) its 1/std; h_n. Only sequences first .. last - 1,
    as :func:`lstm_forward`.
    """
    steps, _, three_h = xp.shape
    hidden = three_h // 3
    inv_g = np.full(1, 1.0 / three_h, xp.dtype)[0]
    one = np.ones(1, xp.dtype)[0]
    h = h0[first:last].copy()
    hh = np.empty((last - first, three_h), xp.dtype)
    for t in range(steps):
        s = t * save
        matmul(h, whh_t, hh)
        for i in range(last - first):
            b = first + i
            if t >= lengths[b]:
                out[t, b, :] = 0
                gates[s, b, :] = 0
                h_n_part[s, b, :] = 0
                hnorm[s, b, :] = 0
                rstd_h[s, b] = 0
                continue
            row, nh, x_g, g_b, h_b = hh[i], hnorm[s, b], xp[t, b], gates[s, b], h[i]
            mean, rstd = _moments(row, inv_g, eps, one)  # LN_h over all three gates, gain only
            for k in range(three_h):
                nh[k] = (row[k] - mean) * rstd
            for k in range(three_h):  # row becomes the hidden share: LN_h(W_hh h) + b_hh
                row[k] = nh[k] * gain_hh[k] + bhh[k]
            for k in range(2 * hidden):  # reset and update gates
                g_b[k] = sigmoid(x_g[k] + row[k])
            for j in range(hidden):
                reset, update = g_b[j], g_b[hidden + j]
                candidate = tanh(x_g[2 * hidden + j] + reset * row[2 * hidden + j])
                h_b[j] = (one - update) * candidate + update * h_b[j]
                g_b[2 * hidden + j] = candidate
            h_n_part[s, b, :] = row[2 * hidden :]
            rstd_h[s, b] = rstd
            out[t, b, :] = h_b
    h_n[first:last] = h


@njit(**JIT)
def gru_backward(d_out, dh_n, gates, h_n_part, hnorm, rstd_h, out, h0, whh, gain_hh, lengths,
                 d_xg, d_hh, dh0, d_gain_hh, d_bhh, first, last):
    """BPTT for :func:`gru_forward`; whh (3H,H).

    Writes d_xg (T,B,3H) = d xp; d_hh (T,B,3H) = d(W_hh h) before its norm (for d W_hh);
    dh0; d_gain_hh and d_bhh summed over all steps. Only sequences first .. last - 1, as forward.
    """
    steps, _, three_h = gates.shape
    hidden = three_h // 3
    inv_g = np.full(1, 1.0 / three_h, gates.dtype)[0]
    one = np.ones(1, gates.dtype)[0]
    dh = dh_n[first:last].copy()
    dh_prev = np.empty_like(dh)
    d_hg = np.empty(three_h, gates.dtype)  # d of the hidden share LN_h(W_hh h) + b_hh
    d_gain_hh[:] = 0
    d_bhh[:] = 0
    for t in range(steps - 1, -1, -1):
        h_prev = out[t - 1] if t > 0 else h0
        for i in range(last - first):
            b = first + i
            dx = d_xg[t, b]
            if t >= lengths[b]:
                dx[:] = 0
                d_hh[t, b, :] = 0
                continue
            g_b, dh_b, nh = gates[t, b], dh[i], hnorm[t, b]
            for j in range(hidden):
                reset, update, candidate = g_b[j], g_b[hidden + j], g_b[2 * hidden + j]
                d_h = dh_b[j] + d_out[t, b, j]
                d_candidate = d_h * (one - update) * (one - candidate * candidate)
                d_reset = d_candidate * h_n_part[t, b, j] * reset * (one - reset)
                d_update = d_h * (h_prev[b, j] - candidate) * update * (one - update)
                dx[j], dx[hidden + j], dx[2 * hidden + j] = d_reset, d_update, d_candidate
                d_hg[j], d_hg[hidden + j], d_hg[2 * hidden + j] = d_reset, d_update, d_candidate * reset
                dh_b[j] = d_h * update  # the direct path h_prev -> h through the update gate
            for k in range(three_h):
                d_gain_hh[k] += d_hg[k] * nh[k]
                d_bhh[k] += d_hg[k]
                d_hg[k] *= gain_hh[k]
            _norm_backward_row(d_hg, nh, rstd_h[t, b], inv_g, d_hh[t, b])
        matmul(d_hh[t, first:last], whh, dh_prev)
        dh += dh_prev  # zero rows for ended sequences, whose dh passes on unchanged
    dh0[first:last] = dh


@njit(**JIT)
def gru_step(x, wih_t, whh_t, gain_ih, bih, gain_hh, bhh, eps, h, xg, hh):
    """One step for streaming, in place on h (B,H)."""
    batch, hidden = h.shape
    three_h = 3 * hidden
    inv_g = np.full(1, 1.0 / three_h, h.dtype)[0]
    one = np.ones(1, h.dtype)[0]
    matmul(x, wih_t, xg)
    matmul(h, whh_t, hh)
    for b in range(batch):
        p, q, h_b = xg[b], hh[b], h[b]
        mean_x, rstd_x = _moments(p, inv_g, eps, one)
        mean_h, rstd_h = _moments(q, inv_g, eps, one)
        for k in range(three_h):  # the same operations as norm_rows and gru_forward, so the same rounding
            p[k] = (p[k] - mean_x) * rstd_x
            p[k] = p[k] * gain_ih[k] + bih[k]
            q[k] = (q[k] - mean_h) * rstd_h
            q[k] = q[k] * gain_hh[k] + bhh[k]
        for k in range(2 * hidden):
            p[k] = sigmoid(p[k] + q[k])
        for j in range(hidden):
            candidate = tanh(p[2 * hidden + j] + p[j] * q[2 * hidden + j])
            update = p[hidden + j]
            h_b[j] = (one - update) * candidate + update * h_b[j]
