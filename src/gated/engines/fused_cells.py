"""The fused engine's kernels for each cell kind, as torch functions.

Each :class:`~gated.engines.spec.Kernels` object here joins the numba loops
of ``kernels.py`` for one cell kind to torch: numpy views in, tensors out. A
call does the input projection, the loop over time and, in backward, every
gradient in numba, so it never leaves its thread. A ``CellKind`` (``kinds.py``)
names the object that implements it.

The LSTM, GRU and RNN kernels also run recurrent dropout and zoneout
(``regularizes``): ``masks`` is (recurrent dropout's (B, P), then zoneout's
(T, B, ·) per state), each None when off; see ``Kernels`` and ``kernels.py``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .spec import SWEPT, Forward, Gradients, Kernels, LayerWeights


def _np(t: Tensor) -> np.ndarray:
    """A numpy view of a tensor's data (a copy only when it is not contiguous)."""
    return t.detach().contiguous().numpy()


def _new(*shape, like: Tensor) -> Tensor:
    return torch.empty(shape, dtype=like.dtype)


def _none(like: np.ndarray, dims: int = 1) -> np.ndarray:
    """An empty array standing for "no bias" / "no projection" (kernels check its size)."""
    return np.empty((0,) * dims, dtype=like.dtype)


# -- the products over all steps -----------------------------------------------------------------
# Small ones stay on this thread (``blas.matmul``); large ones, while the cores are free, go to
# torch's threads (the rule of ``threads.threads``, measured there), which at T100 B32 I128
# H256 run them in about half the time.


def _on_torch_threads(work: int) -> bool:
    """Run a product of ``work`` multiply-adds on torch's threads?"""
    from . import threads

    return threads.threads(work, threads.PRODUCT_FROM) > 1


def _linear(x2: np.ndarray, w: np.ndarray, bias: np.ndarray, out: np.ndarray) -> None:
    """out = x2 @ w^T + bias (bias of size 0: none), all numpy (N, I), (G, I), (N, G)."""
    from . import kernels

    if not _on_torch_threads(x2.shape[0] * x2.shape[1] * w.shape[0]):
        kernels.linear(x2, w, bias, out)
        return
    result = torch.from_numpy(out)
    torch.mm(torch.from_numpy(x2), torch.from_numpy(w).t(), out=result)
    if bias.shape[0] > 0:
        result += torch.from_numpy(bias)


def _linear_backward(d_out: np.ndarray, x2: np.ndarray, w: np.ndarray, d_x: np.ndarray, d_w: np.ndarray,
                     d_bias: np.ndarray) -> None:
    """Gradients of :func:`_linear`: d_x = d_out @ w, d_w = d_out^T @ x2, d_bias = column sums (size 0: none)."""
    from . import kernels

    if not _on_torch_threads(d_out.shape[0] * d_out.shape[1] * x2.shape[1]):
        kernels.linear_backward(d_out, x2, w, d_x, d_w, d_bias)
        return
    d = torch.from_numpy(d_out)
    torch.mm(d, torch.from_numpy(w), out=torch.from_numpy(d_x))
    torch.mm(d.t(), torch.from_numpy(x2), out=torch.from_numpy(d_w))
    if d_bias.shape[0] > 0:
        torch.sum(d, 0, out=torch.from_numpy(d_bias))


def _matmul_tn(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = a^T @ b: a weight gradient summed over all steps and sequences at once."""
    from . import kernels

    if not _on_torch_threads(a.shape[0] * a.shape[1] * b.shape[1]):
        kernels.matmul_tn(a, b, out)
        return
    torch.mm(torch.from_numpy(a).t(), torch.from_numpy(b), out=torch.from_numpy(out))


# Sequences are independent: from this batch * hidden_size on, a loop that takes a range of
# sequences (GRU, layer-norm LSTM and GRU) runs as two ranges on two threads at once (:func:`_ranges`),
# each with the whole W_hh. Measured against one thread (T50-200, I=H/2, forward | forward+backward):
# GRU B32 H256 76.6 -> 58.4 ms | 175 -> 172, B64 H512 1018 -> 620 | 2177 -> 1537; LN-LSTM B32 H256
# 115 -> 84 | 276 -> 226. Below it the halves lost (GRU B16 H256: 18.0 -> 21.6 | 43.0 -> 50.7).
BATCH_SPLIT_FROM = 8192


def _ranges(batch: int, hidden: int) -> list[tuple[int, int]]:
    """(first, last) ranges of sequences for the threads a loop gets: the whole batch on one thread,
    or halves where the work repays a second thread and the cores are free (``threads.threads``)."""
    from .threads import threads as granted

    threads = min(granted(batch * hidden, BATCH_SPLIT_FROM), batch)
    return [(batch * k // threads, batch * (k + 1) // threads) for k in range(threads)]


def _run_ranges(kernel, args: tuple, ranges: list) -> None:
    """``kernel(*args, *r)`` for each r of ``ranges``, at once on as many threads."""
    from .threads import split_run

    if len(ranges) == 1:
        kernel(*args, *ranges[0])
    else:
        split_run(kernel, args, ranges)


def _project(x: Tensor, w_ih: Tensor, bias: Tensor | None) -> np.ndarray:
    """xp = x W_ih^T + bias for all steps at once, (T, B, G)."""
    steps, batch, inputs = x.shape
    x2 = _np(x).reshape(steps * batch, inputs)
    xp = np.empty((steps * batch, w_ih.size(0)), dtype=x2.dtype)
    _linear(x2, _np(w_ih), _np(bias) if bias is not None else _none(x2), xp)
    return xp.reshape(steps, batch, -1)


def _input_grads(d_xp: Tensor, x: Tensor, w_ih: Tensor, bias: Tensor | None):
    """Gradients of the input projection: (d x, d W_ih, d bias)."""
    steps, batch, inputs = x.shape
    d2 = d_xp.numpy().reshape(steps * batch, -1)
    d_x, d_w = _new(steps, batch, inputs, like=x), torch.empty_like(w_ih)
    d_b = torch.empty_like(bias) if bias is not None else None
    _linear_backward(
        d2, _np(x).reshape(steps * batch, inputs), _np(w_ih), d_x.numpy().reshape(steps * batch, inputs),
        d_w.numpy(), d_b.numpy() if d_b is not None else _none(d2),
    )
    return d_x, d_w, d_b


def _recurrent_weight_grad(d_pre: Tensor, h0: Tensor, out: Tensor, mask: Tensor | None = None) -> Tensor:
    """d W_hh = sum over steps of d_pre_t^T h_(t-1): one product over all steps.

    ``mask``: recurrent dropout's (B, P); W_hh then multiplied mask * h_(t-1).
    """
    h_prev = torch.cat([h0.unsqueeze(0), out[:-1]])  # the h each step's W_hh multiplied
    if mask is not None:
        h_prev = h_prev * mask
    size = h_prev.size(-1)
    d_w = _new(d_pre.size(-1), size, like=out)
    _matmul_tn(d_pre.numpy().reshape(-1, d_pre.size(-1)), h_prev.numpy().reshape(-1, size), d_w.numpy())
    return d_w


def _mask_arrays(masks, states: int, like: np.ndarray) -> list[np.ndarray]:
    """The kernels' mask arguments: recurrent dropout's (B, P), then zoneout's (T, B, ·) per state;
    a size-0 array for each that is off (one flag per call in the kernel, as for "no bias")."""
    if not masks:  # the plain call: shared empty arrays, no work per call
        return _NO_MASKS[like.dtype.type][: 1 + states]
    return [_np(m) if m is not None else _none(like, 2 if i == 0 else 3) for i, m in enumerate(masks)]


# Size 0 and never written, so one set per dtype serves every call: (B, P), then (T, B, ·) for each state.
_NO_MASKS = {t: [np.empty((0, 0), t), np.empty((0, 0, 0), t), np.empty((0, 0, 0), t)] for t in (np.float32, np.float64)}


def _lstm_forward(x, w_ih, bias, h0, c0, w_hh, w_hr, lens, save: bool, masks=()):
    from . import kernels

    xp = _project(x, w_ih, bias)
    steps, batch, four_h = xp.shape
    hidden, proj = four_h // 4, h0.size(-1)
    kept = steps if save else 1  # without backward or trace, one reused slice is enough
    rmask, zone_h, zone_c = _mask_arrays(masks, 2, xp)
    out, h_n, c_n = _new(steps, batch, proj, like=x), _new(batch, proj, like=x), _new(batch, hidden, like=x)
    gates, cells = _new(kept, batch, four_h, like=x), _new(kept, batch, hidden, like=x)
    hfull = _new(kept, batch, hidden, like=x) if w_hr is not None else _new(1, 1, 1, like=x)
    # With zoneout on c, the cell state before it, which h_new read (backward needs it); the state itself
    # is ``cells``. Without, nothing: the kernel gets ``cells`` in its place and never touches it.
    cells_new = (_new(kept, batch, hidden, like=x),) if zone_c.size else ()
    whr_t = _np(w_hr.t()) if w_hr is not None else _none(xp, 2)
    cells_np = cells.numpy()
    kernels.lstm_forward(
        xp, _np(h0), _np(c0), _np(w_hh.t()), whr_t, rmask, zone_h, zone_c, lens, int(save),
        out.numpy(), gates.numpy(), cells_np, cells_new[0].numpy() if cells_new else cells_np, hfull.numpy(),
        h_n.numpy(), c_n.numpy(),
    )
    return out, h_n, c_n, gates, cells, hfull, *cells_new


def _split_lstm(x: Tensor, w, masks) -> bool:
    """Run this LSTM layer on two threads (``persistent_lstm.py``)? Where it pays and can run (no projection)."""
    from . import persistent_sync

    return w.w_hr is None and persistent_sync.split_pays(w.w_hh.size(1))


def _lstm_forward_split(x, w_ih, bias, h0, c0, w_hh, lens, save: bool, masks=(), peep=None):
    """:func:`_lstm_forward` without projection, on two threads; same outputs and saved buffers.
    ``peep``: the peephole LSTM's (w_ci, w_cf, w_co) tensors, or None for the plain LSTM."""
    from . import persistent_lstm, persistent_sync

    steps, batch, inputs = x.shape
    hidden = w_hh.size(1)
    kept = steps if save else 1
    out, h_n, c_n = _new(steps, batch, hidden, like=x), _new(batch, hidden, like=x), _new(batch, hidden, like=x)
    gates, cells = _new(kept, batch, 4 * hidden, like=x), _new(kept, batch, hidden, like=x)
    x2 = _np(x).reshape(steps * batch, inputs)
    rmask, zone_h, zone_c = _mask_arrays(masks, 2, x2)
    cells_new = (_new(kept, batch, hidden, like=x),) if zone_c.size else ()
    persistent_sync.run_pair(persistent_lstm.lstm_forward_part, (
        x2, _np(w_ih), _np(bias) if bias is not None else _none(x2), _np(w_hh), _peepholes(peep, x2), _np(h0),
        _np(c0), rmask, zone_h,
        zone_c, lens, int(save), out.numpy(), gates.numpy(), cells.numpy(),
        (cells_new[0] if cells_new else cells).numpy(), h_n.numpy(), c_n.numpy()))
    hfull = _new(1, 1, 1, like=x)
    return out, h_n, c_n, gates, cells, hfull, *cells_new


def _peepholes(peep, like: np.ndarray) -> tuple:
    """The split kernels' ``peep``: three arrays, of size 0 for the plain LSTM."""
    if peep is None:
        return (_none(like),) * 3
    return tuple(_np(p) for p in peep)


def _lstm_backward_split(x, w, start, out, saved, d_out, d_final, lens, masks=(), peep=None) -> Gradients:
    """The LSTM's backward on two threads: every gradient, as :meth:`LSTMKernels.backward` gives them.
    With ``peep`` (the peepholes' names in ``w.extras``), their gradients come back under those names."""
    from . import persistent_lstm, persistent_sync

    (h0, c0), (dh_n, dc_n) = start, d_final
    gates, cells, cells_new = saved[0], saved[1], saved[3:]  # the LSTM's (gates, cells, hfull, [cells_new])
    steps, batch, inputs = x.shape
    hidden = out.size(-1)
    share = persistent_lstm.units_of(0, 2, hidden)[2]
    d_parts = np.zeros((2, steps, batch, 4 * share), dtype=gates.numpy().dtype)
    d_x, d_wih, d_whh = _new(steps, batch, inputs, like=x), torch.empty_like(w.w_ih), torch.empty_like(w.w_hh)
    d_bias = torch.empty_like(w.b_ih) if w.b_ih is not None else None
    dh0, dc0 = torch.empty_like(h0), torch.empty_like(c0)
    d_peep = {name: torch.empty_like(w.extras[name]) for name in peep} if peep else {}
    peepholes = [w.extras[name] for name in peep] if peep else None
    persistent_sync.run_pair(persistent_lstm.lstm_backward_part, (
        _np(x).reshape(steps * batch, inputs), _np(w.w_ih), _np(w.w_hh), _peepholes(peepholes, d_parts), _np(h0),
        _np(c0), out.numpy(),
        gates.numpy(), cells.numpy(), (cells_new[0] if cells_new else cells).numpy(),
        *_mask_arrays(masks, 2, d_parts), lens, _np(d_out), _np(dh_n), _np(dc_n), d_parts,
        d_x.numpy().reshape(steps * batch, inputs), d_wih.numpy(), d_whh.numpy(),
        d_bias.numpy() if d_bias is not None else _none(d_parts),
        tuple(d.numpy() for d in d_peep.values()) if peep else _peepholes(None, d_parts), dh0.numpy(), dc0.numpy()))
    return Gradients(d_x, LayerWeights(d_wih, d_whh, d_bias, None, None, d_peep), (dh0, dc0))


class LSTMKernels(Kernels):
    wins_up_to = (0, 0)  # oneDNN's LSTM: never beaten, see engines/__init__.py
    regularizes = True
    regularized_wins_up_to = (SWEPT, SWEPT)  # against the reference loop: won at every size measured, split or not

    def forward(self, x, w, start, lens, save, masks=()):
        if _split_lstm(x, w, masks):
            out, h_n, c_n, *saved = _lstm_forward_split(x, w.w_ih, w.b_ih, *start, w.w_hh, lens, save, masks)
        else:
            out, h_n, c_n, *saved = _lstm_forward(x, w.w_ih, w.b_ih, *start, w.w_hh, w.w_hr, lens, save, masks)
        return Forward(out, (h_n, c_n), tuple(saved))

    def backward(self, x, w, start, out, saved, d_out, d_final, lens, masks=()):
        from . import kernels

        if _split_lstm(x, w, masks):
            return _lstm_backward_split(x, w, start, out, saved, d_out, d_final, lens, masks)
        (h0, c0), (dh_n, dc_n), (gates, cells, hfull, *cells_new) = start, d_final, saved
        cells_new = cells_new[0] if cells_new else cells  # without zoneout on c they are the same
        steps, batch, _ = gates.shape
        proj = out.size(-1)
        d_gates = torch.empty_like(gates)
        d_proj = _new(steps, batch, proj, like=out) if w.w_hr is not None else _new(1, 1, 1, like=out)
        dh0, dc0 = torch.empty_like(h0), torch.empty_like(c0)
        whr = _np(w.w_hr) if w.w_hr is not None else _none(gates.numpy(), 2)
        kernels.lstm_backward(
            _np(d_out), _np(dh_n), _np(dc_n), gates.numpy(), cells.numpy(), cells_new.numpy(), _np(c0),
            _np(w.w_hh), whr, *_mask_arrays(masks, 2, gates.numpy()),
            lens, d_gates.numpy(), d_proj.numpy(), dh0.numpy(), dc0.numpy(),
        )
        d_x, d_wih, d_bias = _input_grads(d_gates, x, w.w_ih, w.b_ih)
        d_whh = _recurrent_weight_grad(d_gates, h0, out, masks[0] if masks else None)
        d_whr = None
        if w.w_hr is not None:
            d_whr = _new(proj, hfull.size(-1), like=out)
            _matmul_tn(d_proj.numpy().reshape(-1, proj), hfull.numpy().reshape(-1, hfull.size(-1)), d_whr.numpy())
        return Gradients(d_x, LayerWeights(d_wih, d_whh, d_bias, None, d_whr), (dh0, dc0))

    def recorded(self, kind, saved):
        gates, cells = saved[:2]
        return {**dict(zip(kind.rows, gates.chunk(len(kind.rows), -1))), "cell": cells}

    stream_by_address = True  # its stream_step takes addresses (see Stream)

    def stream_step(self, w, batch, dtype):
        from . import kernels

        # [W_ih; W_hh; b]^T: one product of the combined [x, h, 1] gives the gates (the guide's step 1).
        w_t = _stacked(w.w_ih, w.w_hh, w.b_ih, dtype)
        whr_t = _array(w.w_hr.t(), dtype) if w.w_hr is not None else np.empty((0, 0), dtype)
        hidden = w.w_hh.size(0) // 4
        scratch = np.empty(batch * (w_t.shape[0] + 5 * hidden), dtype)
        kernel = kernels.lstm_stream

        def step(x_addr, out_addr, h, c):
            kernel(x_addr, out_addr, w_t, whr_t, h, c, scratch)

        return step


def _gru_forward(x, w_ih, bias, h0, w_hh, b_hh, lens, save: bool, masks=()):
    from . import kernels

    xp = _project(x, w_ih, bias)
    steps, batch, three_h = xp.shape
    hidden = three_h // 3
    kept = steps if save else 1
    out, h_n = _new(steps, batch, hidden, like=x), _new(batch, hidden, like=x)
    gates, h_n_part = _new(kept, batch, three_h, like=x), _new(kept, batch, hidden, like=x)
    bhh = _np(b_hh) if b_hh is not None else np.zeros(three_h, dtype=xp.dtype)
    _run_ranges(kernels.gru_forward, (
        xp, _np(h0), _np(w_hh.t()), bhh, *_mask_arrays(masks, 1, xp), lens, int(save),
        out.numpy(), gates.numpy(), h_n_part.numpy(), h_n.numpy(),
    ), _ranges(batch, hidden))
    return out, h_n, gates, h_n_part


class GRUKernels(Kernels):
    folds_hidden_bias = False  # b_hn sits inside reset * (W_hn h + b_hn)
    # Won (or tied, forward at H256 B16-32) at every size measured, to B128 H512.
    wins_up_to = (128 * 512, 128 * 512)
    regularizes = True
    regularized_wins_up_to = (SWEPT, SWEPT)

    def forward(self, x, w, start, lens, save, masks=()):
        out, h_n, gates, h_n_part = _gru_forward(x, w.w_ih, w.b_ih, *start, w.w_hh, w.b_hh, lens, save, masks)
        return Forward(out, (h_n,), (gates, h_n_part))

    def backward(self, x, w, start, out, saved, d_out, d_final, lens, masks=()):
        from . import kernels

        (h0,), (dh_n,), (gates, h_n_part) = start, d_final, saved
        d_xg, d_hg, dh0 = torch.empty_like(gates), torch.empty_like(gates), torch.empty_like(h0)
        _run_ranges(kernels.gru_backward, (
            _np(d_out), _np(dh_n), gates.numpy(), h_n_part.numpy(), out.numpy(), _np(h0), _np(w.w_hh),
            *_mask_arrays(masks, 1, gates.numpy()), lens, d_xg.numpy(), d_hg.numpy(), dh0.numpy(),
        ), _ranges(gates.size(1), h0.size(-1)))
        d_x, d_wih, d_bih = _input_grads(d_xg, x, w.w_ih, w.b_ih)
        d_whh = _recurrent_weight_grad(d_hg, h0, out, masks[0] if masks else None)
        d_bhh = d_hg.sum((0, 1)) if w.b_hh is not None else None
        return Gradients(d_x, LayerWeights(d_wih, d_whh, d_bih, d_bhh, None), (dh0,))

    def recorded(self, kind, saved):
        gates, _ = saved
        return dict(zip(kind.rows, gates.chunk(len(kind.rows), -1)))

    stream_by_address = True

    def stream_step(self, w, batch, dtype):
        from . import kernels

        # The GRU needs W_ih x and W_hh h apart: the reset gate weighs only the second.
        wih_t, whh_t = _stacked(w.w_ih, None, w.b_ih, dtype), _stacked(w.w_hh, None, w.b_hh, dtype)
        hidden = w.w_hh.size(1)
        scratch = np.empty(batch * (wih_t.shape[0] + 7 * hidden + 1), dtype)
        kernel = kernels.gru_stream

        def step(x_addr, out_addr, h):
            kernel(x_addr, out_addr, wih_t, whh_t, h, scratch)

        return step


def _rnn_forward(x, w_ih, bias, h0, w_hh, lens, relu: bool, masks=()):
    from . import kernels

    xp = _project(x, w_ih, bias)
    rmask, zone_h = _mask_arrays(masks, 1, xp)
    out, h_n = _new(*xp.shape, like=x), _new(*h0.shape, like=x)
    fresh = (_new(*xp.shape, like=x),) if zone_h.size else ()  # with zoneout, the h before it, for backward
    out_np = out.numpy()
    kernels.rnn_forward(xp, _np(h0), _np(w_hh.t()), rmask, zone_h, lens, relu, out_np,
                        fresh[0].numpy() if fresh else out_np, h_n.numpy())
    return out, h_n, fresh


class RNNKernels(Kernels):
    wins_up_to = (4096, 8192)  # tanh and relu measured alike
    regularizes = True
    regularized_wins_up_to = (8192, 8192)
    one_thread_wins_up_to = (SWEPT, SWEPT)

    def __init__(self, relu: bool) -> None:
        self.relu = relu

    def forward(self, x, w, start, lens, save, masks=()):
        out, h_n, fresh = _rnn_forward(x, w.w_ih, w.b_ih, *start, w.w_hh, lens, self.relu, masks)
        return Forward(out, (h_n,), fresh)

    def backward(self, x, w, start, out, saved, d_out, d_final, lens, masks=()):
        from . import kernels

        (h0,), (dh_n,) = start, d_final
        fresh = saved[0] if saved else out  # without zoneout the output is the h tanh or relu produced
        d_pre, dh0 = torch.empty_like(out), torch.empty_like(h0)
        kernels.rnn_backward(
            _np(d_out), _np(dh_n), out.numpy(), fresh.numpy(), _np(w.w_hh), *_mask_arrays(masks, 1, out.numpy()),
            lens, self.relu, d_pre.numpy(), dh0.numpy(),
        )
        d_x, d_wih, d_bias = _input_grads(d_pre, x, w.w_ih, w.b_ih)
        d_whh = _recurrent_weight_grad(d_pre, h0, out, masks[0] if masks else None)
        return Gradients(d_x, LayerWeights(d_wih, d_whh, d_bias, None, None), (dh0,))

    stream_by_address = True

    def stream_step(self, w, batch, dtype):
        from . import kernels

        w_t = _stacked(w.w_ih, w.w_hh, w.b_ih, dtype)
        hidden = w.w_hh.size(0)
        scratch = np.empty(batch * (w_t.shape[0] + hidden), dtype)
        relu, kernel = self.relu, kernels.rnn_stream

        def step(x_addr, out_addr, h):
            kernel(x_addr, out_addr, w_t, relu, h, scratch)

        return step


def _array(t: Tensor, dtype) -> np.ndarray:
    """A C-ordered copy for a stream: later training cannot change the weights under a running step."""
    return np.array(t.detach().numpy(), dtype=dtype, order="C")


def _bias(b: Tensor | None, rows: int, dtype) -> np.ndarray:
    return _array(b, dtype) if b is not None else np.zeros(rows, dtype)


def _stacked(w_ih: Tensor, w_hh: Tensor | None, bias: Tensor | None, dtype) -> np.ndarray:
    """[W_ih; W_hh; bias]^T as a C-ordered copy (W_hh left out when None; zeros for no bias): a stream's
    weights, which multiply [x, h, 1] (see kernels.py)."""
    with torch.no_grad():
        rows = [w_ih] if w_hh is None else [w_ih, w_hh]
        b = bias if bias is not None else w_ih.new_zeros(w_ih.size(0))
        return _array(torch.cat([*rows, b.unsqueeze(1)], 1).t(), dtype)


LSTM_KERNELS = LSTMKernels()
GRU_KERNELS = GRUKernels()
RNN_TANH_KERNELS = RNNKernels(relu=False)
RNN_RELU_KERNELS = RNNKernels(relu=True)
