"""A whole LSTM layer split across two threads: a persistent kernel (Diamos et al. 2016).

``kernels.lstm_forward`` does each step as one single-threaded product
``h @ W_hh^T`` and then the gate math. Here each of two threads (``part`` 0
and 1, :func:`persistent_sync.run_pair`) owns half of the hidden units: it
packs the rows of ``W_ih`` and ``W_hh`` that feed its units' four gates once,
into blocks that stay in its own core's cache for the whole call, projects the
input for its gates over all steps, and at every step computes only its units'
gates, cell and hidden state. The new h goes straight into ``out[t]``, which
both threads read at the next step, so one barrier per step is all the
coordination there is: buffers are per step (``out[t]``, ``gates[t]``), and a
thread writes only its own units' columns.

Backward splits the same way. At each step (descending) a thread forms the
gradient of its units' gate pre-activations into its own block ``d_parts[part]``
(packed: gate by gate, its units only), meets its partner, then reads both
blocks to form its units' share of the gradient reaching h_(t-1). After the
loop each thread forms the weight gradients of its own rows (one product over
all steps each), and, after one more barrier, half of the steps' input gradient.

A part's packed columns are ``gate * share + k`` for its unit ``low + k``
(``share`` = units per part, rounded up; the last part's spare columns stay zero).

Recurrent dropout and zoneout run here as in ``kernels.lstm_forward``: ``rmask``
(B, H), ``zone_h`` and ``zone_c`` (T, B, H), each of size 0 when off. Each thread
masks the whole h_(t-1) for its product (B x H multiplications, cheaper than a
second barrier) and zones only its own units. The peephole LSTM (Gers et al.
2002, ``kernels_peephole.py``) runs here too: ``peep`` = (w_ci, w_cf, w_co), each (H,),
or three size-0 arrays for the plain LSTM; a peephole is diagonal, so a thread needs
only its own units' entries. No projection (that runs on ``kernels.py``). Packed input works as there: past its length a sequence's
outputs and gradients are zero and its state is kept.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .blas import matmul, product
from .kernels import JIT, _add, _add_rows, _copy, _copy_rows, _split, _zone, sigmoid, tanh
from .kernels_peephole import unit_backward
from .persistent_sync import barrier


@njit(**JIT)
def units_of(part, parts, hidden):
    """(first unit, end, share): the half-open range of hidden units that ``part`` owns, and the
    units per part (rounded up), the width of each gate in a part's packed columns."""
    share = (hidden + parts - 1) // parts
    low = min(part * share, hidden)
    return low, min(low + share, hidden), share


@njit(**JIT)
def _own_peepholes(peep, low, own, like):
    """This part's entries of the three peepholes (copies), or zeros (of ``like``'s dtype) without any."""
    if peep[0].shape[0] == 0:
        return np.zeros(own, like.dtype), np.zeros(own, like.dtype), np.zeros(own, like.dtype)
    return peep[0][low : low + own].copy(), peep[1][low : low + own].copy(), peep[2][low : low + own].copy()


@njit(**JIT)
def _pack_rows(w, part, parts, hidden):
    """The rows of ``w`` (4H, ·) that feed ``part``'s units, packed gate by gate: (4 * share, ·), spare rows zero."""
    low, high, share = units_of(part, parts, hidden)
    packed = np.zeros((4 * share, w.shape[1]), w.dtype)
    for gate in range(4):
        _copy_rows(packed[gate * share : gate * share + high - low], w[gate * hidden + low : gate * hidden + high])
    return packed


@njit(**JIT)
def lstm_forward_part(part, parts, sync, x2, w_ih, bias, w_hh, peep, h0, c0, rmask, zone_h, zone_c, lengths, save,
                      out, gates, cells, cells_new, h_n, c_n):
    """One thread's share of an LSTM layer's forward, input projection included.

    x2 (T*B, I) the layer's input; w_ih (4H, I); bias (4H,) = b_ih + b_hh, or (0,); w_hh (4H, H);
    h0, c0 (B, H); the masks as the module's docstring says. Writes this part's units' columns of
    out (T,B,H), gates (T|1,B,4H) activated i, f, g, o, cells (T|1,B,H) (zoned), cells_new
    (T|1,B,H) (before zoneout; only with zone_c), h_n and c_n, as ``kernels.lstm_forward`` does.
    """
    steps, batch, hidden = out.shape
    low, high, share = units_of(part, parts, hidden)
    own = high - low
    drop, zone_hidden, zone_cell = rmask.shape[0] > 0, zone_h.shape[0] > 0, zone_c.shape[0] > 0
    one = np.ones(1, out.dtype)[0]
    dropped = np.empty((batch, hidden), out.dtype) if drop else h0
    before = np.empty(own, out.dtype)  # this sequence's c_(t-1), which zoneout mixes back in
    peeps = peep[0].shape[0] > 0
    w_ci, w_cf, w_co = _own_peepholes(peep, low, own, out)
    wih = _pack_rows(w_ih, part, parts, hidden)
    whh_t = np.ascontiguousarray(_pack_rows(w_hh, part, parts, hidden).T)  # (H, 4 * share): h @ whh_t
    xp = product(x2, wih.T)  # (T*B, 4 * share): the input's share of this part's gates, every step
    if bias.shape[0] > 0:
        b = _pack_rows(bias.reshape(-1, 1), part, parts, hidden)[:, 0]
        for n in range(xp.shape[0]):
            _add(xp[n], b)
    pre = np.empty((batch, 4 * share), out.dtype)
    fresh = np.empty((batch, own), out.dtype)
    c = c0[:, low:high].copy()
    for t in range(steps):
        s = t * save
        h_prev = out[t - 1] if t > 0 else h0
        if drop:
            for b in range(batch):
                h_b, m_b, d_b = h_prev[b], rmask[b], dropped[b]
                for j in range(hidden):
                    d_b[j] = m_b[j] * h_b[j]
            matmul(dropped, whh_t, pre)
        else:
            matmul(h_prev, whh_t, pre)
        for b in range(batch):
            if t >= lengths[b]:  # ended: zero outputs, keep the state
                out[t, b, low:high] = 0
                for gate in range(4):
                    gates[s, b, gate * hidden + low : gate * hidden + high] = 0
                cells[s, b, low:high] = 0
                continue
            # Short loops over one or two arrays each, so that LLVM vectorises every one.
            p, x_g, c_b, h_b = pre[b], xp[t * batch + b], c[b], fresh[b]
            for k in range(4 * share):
                p[k] += x_g[k]
            if peeps:  # the input and forget gates peek at c_(t-1)
                for k in range(own):
                    p[k] += w_ci[k] * c_b[k]
                for k in range(own):
                    p[share + k] += w_cf[k] * c_b[k]
            for k in range(2 * share):  # input and forget gates
                p[k] = sigmoid(p[k])
            for k in range(2 * share, 3 * share):  # candidate
                p[k] = tanh(p[k])
            if not peeps:
                for k in range(3 * share, 4 * share):  # output gate
                    p[k] = sigmoid(p[k])
            if zone_cell:
                _copy(before, c_b)
            for k in range(own):  # new cell state
                c_b[k] = p[share + k] * c_b[k] + p[k] * p[2 * share + k]
            if peeps:  # the output gate peeks at the new c
                for k in range(own):
                    p[3 * share + k] = sigmoid(p[3 * share + k] + w_co[k] * c_b[k])
            for k in range(own):  # new hidden state
                h_b[k] = p[3 * share + k] * tanh(c_b[k])
            if zone_cell:  # h read the new c; the state carried on keeps some of the old
                _copy(cells_new[s, b, low:high], c_b)
                _zone(zone_c[t, b, low:high], before, c_b, one)
            if zone_hidden:
                _zone(zone_h[t, b, low:high], h_prev[b, low:high], h_b, one)
            _copy(out[t, b, low:high], h_b)
            _copy(cells[s, b, low:high], c_b)
            for gate in range(4):
                _copy(gates[s, b, gate * hidden + low : gate * hidden + high], p[gate * share : gate * share + own])
        if not barrier(sync, parts, t + 1):
            return
    for b in range(batch):
        last = lengths[b] - 1
        _copy(h_n[b, low:high], out[last, b, low:high] if last >= 0 else h0[b, low:high])
        _copy(c_n[b, low:high], c[b])


@njit(**JIT)
def lstm_backward_part(part, parts, sync, x2, w_ih, w_hh, peep, h0, c0, out, gates, cells, cells_new, rmask, zone_h,
                       zone_c, lengths, d_out, dh_n, dc_n, d_parts, d_x2, d_wih, d_whh, d_bias, d_peep, dh0, dc0):
    """One thread's share of an LSTM layer's backward, every gradient included.

    Reads what :func:`lstm_forward_part` saved (save=True) and its masks. d_parts (parts, T, B,
    4 * share), zeroed: each part's packed gate gradients. Writes this part's rows of d_wih (4H, I),
    d_whh (4H, H), d_bias (4H,) (or size 0: none), its columns of dh0, dc0 (B, H), and its half of
    d_x2 (T*B, I), and with peepholes its units' entries of d_peep = (d_ci, d_cf, d_co).
    """
    steps, batch, hidden = out.shape
    low, high, share = units_of(part, parts, hidden)
    own = high - low
    one = np.ones(1, out.dtype)[0]
    drop, zone_hidden, zone_cell = rmask.shape[0] > 0, zone_h.shape[0] > 0, zone_c.shape[0] > 0
    squashed_cells = cells_new if zone_cell else cells  # the c that h's tanh read
    dh_kept, dc_kept = np.zeros((batch, own), out.dtype), np.zeros((batch, own), out.dtype)
    # Without peepholes they are zeros here: three multiply-adds a unit, cheaper than a second loop.
    w_ci, w_cf, w_co = _own_peepholes(peep, low, own, out)
    d_ci, d_cf, d_co = np.zeros(own, out.dtype), np.zeros(own, out.dtype), np.zeros(own, out.dtype)
    # What each part's gate gradients send back to this part's units of h_(t-1), and to the input.
    back = np.empty((parts, 4 * share, own), out.dtype)
    wih = np.empty((parts, 4 * share, x2.shape[1]), out.dtype)
    columns = np.ascontiguousarray(w_hh[:, low:high])  # C-ordered: one compiled _pack_rows serves all
    for q in range(parts):
        _copy_rows(back[q], _pack_rows(columns, q, parts, hidden))
        _copy_rows(wih[q], _pack_rows(w_ih, q, parts, hidden))
    mine = d_parts[part]
    dh = dh_n[:, low:high].copy()
    dc = dc_n[:, low:high].copy()
    dh_prev = np.empty((batch, own), out.dtype)
    term = np.empty((batch, own), out.dtype)
    g = np.empty(4 * share, out.dtype)
    cell_b, prev_b = np.empty(own, out.dtype), np.empty(own, out.dtype)
    for t in range(steps - 1, -1, -1):
        c_prev = cells[t - 1] if t > 0 else c0
        for b in range(batch):
            if t >= lengths[b]:  # ended: no gradient flows into this step (d_parts starts zeroed)
                continue
            dg, g_b, dh_b, dc_b = mine[t, b], gates[t, b], dh[b], dc[b]
            # This part's gates, cells and gradients side by side in short arrays, so that the loops vectorise.
            for gate in range(4):
                _copy(g[gate * share : gate * share + own], g_b[gate * hidden + low : gate * hidden + high])
            _add(dh_b, d_out[t, b, low:high])
            if zone_hidden:  # zoneout's share goes straight to h_(t-1), the rest through this step
                _split(zone_h[t, b, low:high], dh_b, dh_kept[b], one)
            if zone_cell:
                _split(zone_c[t, b, low:high], dc_b, dc_kept[b], one)
            _copy(cell_b, squashed_cells[t, b, low:high])
            _copy(prev_b, c_prev[b, low:high])
            for k in range(own):
                d_input, d_forget, d_candidate, d_output, dc_b[k] = unit_backward(
                    g[k], g[share + k], g[2 * share + k], g[3 * share + k], tanh(cell_b[k]), dh_b[k], dc_b[k],
                    prev_b[k], w_ci[k], w_cf[k], w_co[k], one)
                dg[k], dg[share + k], dg[2 * share + k], dg[3 * share + k] = d_input, d_forget, d_candidate, d_output
                d_ci[k] += d_input * prev_b[k]
                d_cf[k] += d_forget * prev_b[k]
                d_co[k] += d_output * cell_b[k]
            if zone_cell:
                _add(dc_b, dc_kept[b])
        if not barrier(sync, parts, steps - t):
            return
        matmul(d_parts[0, t], back[0], dh_prev)
        for q in range(1, parts):
            matmul(d_parts[q, t], back[q], term)
            _add_rows(dh_prev, term)
        for b in range(batch):
            if t < lengths[b]:  # an ended sequence passes its gradient on unchanged
                dh_b, p_b = dh[b], dh_prev[b]
                if drop:  # W_hh read rmask * h_(t-1)
                    m_b = rmask[b, low:high]
                    for k in range(own):
                        dh_b[k] = m_b[k] * p_b[k]
                else:
                    _copy(dh_b, p_b)
                if zone_hidden:
                    _add(dh_b, dh_kept[b])
    if peep[0].shape[0] > 0:
        _copy(d_peep[0][low:high], d_ci)
        _copy(d_peep[1][low:high], d_cf)
        _copy(d_peep[2][low:high], d_co)
    _copy_rows(dh0[:, low:high], dh)
    _copy_rows(dc0[:, low:high], dc)
    # This part's rows of the weight gradients: one product over all steps each.
    rows = steps * batch
    flat = mine.reshape(rows, 4 * share)
    grad_ih = product(flat.T, x2)
    read = out[: steps - 1].reshape(rows - batch, hidden)  # the h_(t-1) that W_hh read
    first_read = h0
    if drop:
        read, first_read = read.copy(), h0.copy()
        for n in range(rows - batch):
            m_b, r_b = rmask[n % batch], read[n]
            for j in range(hidden):
                r_b[j] *= m_b[j]
        for b in range(batch):
            for j in range(hidden):
                first_read[b, j] *= rmask[b, j]
    grad_hh = product(flat[:batch].T, first_read)
    if steps > 1:
        _add_rows(grad_hh, product(flat[batch:].T, read))
    sums = np.zeros(4 * share, out.dtype)
    for n in range(rows):
        _add(sums, flat[n])
    for gate in range(4):
        for k in range(own):
            _copy(d_wih[gate * hidden + low + k], grad_ih[gate * share + k])
            _copy(d_whh[gate * hidden + low + k], grad_hh[gate * share + k])
            if d_bias.shape[0] > 0:
                d_bias[gate * hidden + low + k] = sums[gate * share + k]
    # The input's gradient needs every part's gate gradients: wait for all, then take a share of the rows.
    if not barrier(sync, parts, steps + 1):
        return
    first = min(part * ((rows + parts - 1) // parts), rows)
    last = min(first + (rows + parts - 1) // parts, rows)
    if last > first:
        d_x = d_x2[first:last]
        matmul(d_parts[0].reshape(rows, 4 * share)[first:last], wih[0], d_x)
        for q in range(1, parts):
            _add_rows(d_x, product(d_parts[q].reshape(rows, 4 * share)[first:last], wih[q]))
