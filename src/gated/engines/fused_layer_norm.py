"""The fused engine's kernels for the layer-normalised LSTM and GRU (issue 11), as torch functions.

The numba loops are in ``kernels_layer_norm.py``; here they meet torch: numpy
views in, tensors out, as ``fused_cells.py`` does for the plain cells. The
norms' gains and biases come in ``w.extras`` under the kinds' names (``kinds.py``)
and their gradients go back the same way.

Which biases fold where: everything that is a constant add after the norms is
summed once into the input's share (``shift``). For the LSTM that is
``b_ih + b_hh`` (``folds_hidden_bias``, so ``fused.kernel_weights`` adds them
and autograd splits the gradient) and both norms' biases. For the GRU only
``b_ih``: its ``b_hn`` sits inside ``reset * (LN_h(W_hh h)_n + b_hn)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .fused_cells import (_array, _bias, _linear, _linear_backward, _new, _np, _ranges, _recurrent_weight_grad,
                          _run_ranges)
from .spec import SWEPT, Forward, Gradients, Kernels, LayerWeights


# cells.LAYER_NORM_EPS (torch.nn.LayerNorm's and haste's), written again rather than imported so that
# the engines stay below the cells they run; tests/test_fused_layer_norm.py holds the two equal.
LAYER_NORM_EPS = 1e-5


def _eps(dtype) -> np.generic:
    return np.dtype(dtype).type(LAYER_NORM_EPS)


def _normed_input(x: Tensor, w_ih: Tensor, gain: Tensor, shift: np.ndarray):
    """The input's share for all steps: (a_hat (T*B, G), its 1/std (T*B,), xp = a_hat * gain + shift (T, B, G))."""
    from . import kernels_layer_norm

    steps, batch, inputs = x.shape
    x2 = _np(x).reshape(steps * batch, inputs)
    a_hat = _new(steps * batch, w_ih.size(0), like=x)
    rstd, xp = _new(steps * batch, like=x), np.empty(tuple(a_hat.shape), dtype=x2.dtype)
    _linear(x2, _np(w_ih), np.empty(0, x2.dtype), a_hat.numpy())
    kernels_layer_norm.norm_rows(a_hat.numpy(), _np(gain), shift, _eps(x2.dtype), rstd.numpy(), xp)
    return a_hat, rstd, xp.reshape(steps, batch, -1)


def _normed_input_grads(d_xp: Tensor, x: Tensor, w_ih: Tensor, gain: Tensor, a_hat: Tensor, rstd: Tensor,
                        hnorm: Tensor | None):
    """Back through :func:`_normed_input`: (d x, d W_ih, d gain, d shift, d gain of the hidden norm or None).

    ``hnorm``: the LSTM's normalised hidden shares, whose norm's output gradient is also ``d_xp``.
    """
    from . import kernels_layer_norm

    steps, batch, inputs = x.shape
    d2 = d_xp.numpy().reshape(steps * batch, -1)
    d_a, d_gain, d_shift = torch.empty_like(a_hat), torch.empty_like(gain), torch.empty_like(gain)
    d_gain_hh = torch.empty_like(gain) if hnorm is not None else None
    kernels_layer_norm.norm_rows_backward(
        d2, a_hat.numpy(), rstd.numpy(), _np(gain),
        hnorm.numpy().reshape(d2.shape) if hnorm is not None else np.empty((0, 0), d2.dtype),
        d_a.numpy(), d_gain.numpy(), d_shift.numpy(),
        d_gain_hh.numpy() if d_gain_hh is not None else np.empty(0, d2.dtype),
    )
    d_x, d_w = _new(steps, batch, inputs, like=x), torch.empty_like(w_ih)
    _linear_backward(d_a.numpy(), _np(x).reshape(steps * batch, inputs), _np(w_ih),
                            d_x.numpy().reshape(steps * batch, inputs), d_w.numpy(), np.empty(0, d2.dtype))
    return d_x, d_w, d_gain, d_shift, d_gain_hh


def _sum(*parts: Tensor | None) -> np.ndarray:
    """The constant adds after the norms, summed once (absent biases left out)."""
    return _np(sum(p.detach() for p in parts if p is not None))


class LayerNormLSTMKernels(Kernels):
    folds_hidden_bias = True  # b_hh adds after LN_h, like b_ih after LN_x: one bias b = b_ih + b_hh
    # Against the reference loop (torch has no kernel for this cell): won at every size measured.
    wins_up_to = (SWEPT, SWEPT)
    one_thread_wins_up_to = (2**62, 2**62)  # with torch on one thread too, the loop lost at every size

    def forward(self, x, w, start, lens, save):
        from . import kernels_layer_norm

        e = w.extras
        a_hat, rstd_x, xp = _normed_input(x, w.w_ih, e["ln_weight_ih"], _sum(w.b_ih, e["ln_bias_ih"], e["ln_bias_hh"]))
        steps, batch, four_h = xp.shape
        hidden, kept = four_h // 4, steps if save else 1  # without backward or trace, one reused slice
        out, h_n, c_n = _new(steps, batch, hidden, like=x), _new(batch, hidden, like=x), _new(batch, hidden, like=x)
        gates, hnorm = _new(kept, batch, four_h, like=x), _new(kept, batch, four_h, like=x)
        cells, cell_norm = _new(kept, batch, hidden, like=x), _new(kept, batch, hidden, like=x)
        stats = _new(kept, batch, 3, like=x)
        h0, c0 = start
        _run_ranges(kernels_layer_norm.lstm_forward, (
            xp, _np(h0), _np(c0), _np(w.w_hh.t()), _np(e["ln_weight_hh"]), _np(e["ln_weight_c"]), _np(e["ln_bias_c"]),
            _eps(xp.dtype), lens, int(save), out.numpy(), gates.numpy(), cells.numpy(), cell_norm.numpy(),
            hnorm.numpy(), stats.numpy(), h_n.numpy(), c_n.numpy(),
        ), _ranges(batch, hidden))
        return Forward(out, (h_n, c_n), (gates, cells, cell_norm, hnorm, stats, a_hat, rstd_x))

    def backward(self, x, w, start, out, saved, d_out, d_final, lens):
        from . import kernels_layer_norm

        (h0, c0), (dh_n, dc_n), e = start, d_final, w.extras
        gates, cells, cell_norm, hnorm, stats, a_hat, rstd_x = saved
        d_pre, d_hh = torch.empty_like(gates), torch.empty_like(gates)
        dh0, dc0 = torch.empty_like(h0), torch.empty_like(c0)
        ranges = _ranges(gates.size(1), cells.size(-1))
        # LN_c's gain and bias gradients are sums over sequences: one pair per range, added after.
        sums = torch.empty((len(ranges), 2, cells.size(-1)), dtype=gates.dtype)
        args = (_np(d_out), _np(dh_n), _np(dc_n), gates.numpy(), cells.numpy(), cell_norm.numpy(), hnorm.numpy(),
                stats.numpy(), _np(c0), _np(w.w_hh), _np(e["ln_weight_hh"]), _np(e["ln_weight_c"]), lens,
                d_pre.numpy(), d_hh.numpy(), dh0.numpy(), dc0.numpy())
        _run_ranges(_with_sums(kernels_layer_norm.lstm_backward), (args, sums.numpy()), list(enumerate(ranges)))
        d_gain_c, d_bias_c = sums.sum(0)
        d_x, d_wih, d_gain_ih, d_shift, d_gain_hh = _normed_input_grads(
            d_pre, x, w.w_ih, e["ln_weight_ih"], a_hat, rstd_x, hnorm)
        d_whh = _recurrent_weight_grad(d_hh, h0, out)
        # Every bias of the shift gets its gradient (copies: autograd may keep each as a .grad).
        extras = {"ln_weight_ih": d_gain_ih, "ln_bias_ih": d_shift.clone(), "ln_weight_hh": d_gain_hh,
                  "ln_bias_hh": d_shift.clone(), "ln_weight_c": d_gain_c, "ln_bias_c": d_bias_c}
        d_bias = d_shift if w.b_ih is not None else None
        return Gradients(d_x, LayerWeights(d_wih, d_whh, d_bias, None, None, extras), (dh0, dc0))

    def recorded(self, kind, saved):
        gates, cells, cell_norm = saved[:3]
        return {**dict(zip(kind.rows, gates.chunk(len(kind.rows), -1))), "cell": cells, "cell_normalized": cell_norm}

    def stream_step(self, w, batch, dtype):
        from . import kernels_layer_norm

        e = w.extras
        wih_t, whh_t = _array(w.w_ih.t(), dtype), _array(w.w_hh.t(), dtype)
        shift = np.array(_sum(w.b_ih, e["ln_bias_ih"], e["ln_bias_hh"]), dtype=dtype)
        gain_ih, gain_hh = _array(e["ln_weight_ih"], dtype), _array(e["ln_weight_hh"], dtype)
        gain_c, bias_c = _array(e["ln_weight_c"], dtype), _array(e["ln_bias_c"], dtype)
        xg, hh = np.empty((batch, wih_t.shape[1]), dtype), np.empty((batch, wih_t.shape[1]), dtype)
        eps, kernel = _eps(dtype), kernels_layer_norm.lstm_step

        def step(x, h, c):
            kernel(x, wih_t, whh_t, shift, gain_ih, gain_hh, gain_c, bias_c, eps, h, c, xg, hh)
            return h

        return step


class LayerNormGRUKernels(Kernels):
    folds_hidden_bias = False  # b_hn sits inside reset * (LN_h(W_hh h)_n + b_hn)
    wins_up_to = (SWEPT, SWEPT)  # against the reference loop, as the LSTM's
    one_thread_wins_up_to = (2**62, 2**62)

    def forward(self, x, w, start, lens, save):
        from . import kernels_layer_norm

        gain_ih = w.extras["ln_weight_ih"]
        a_hat, rstd_x, xp = _normed_input(x, w.w_ih, gain_ih, _bias(w.b_ih, w.w_ih.size(0), _np(x).dtype))
        steps, batch, three_h = xp.shape
        hidden, kept = three_h // 3, steps if save else 1
        out, h_n = _new(steps, batch, hidden, like=x), _new(batch, hidden, like=x)
        gates, hnorm = _new(kept, batch, three_h, like=x), _new(kept, batch, three_h, like=x)
        h_n_part, rstd_h = _new(kept, batch, hidden, like=x), _new(kept, batch, like=x)
        _run_ranges(kernels_layer_norm.gru_forward, (
            xp, _np(start[0]), _np(w.w_hh.t()), _np(w.extras["ln_weight_hh"]), _bias(w.b_hh, three_h, xp.dtype),
            _eps(xp.dtype), lens, int(save), out.numpy(), gates.numpy(), h_n_part.numpy(), hnorm.numpy(),
            rstd_h.numpy(), h_n.numpy(),
        ), _ranges(batch, hidden))
        return Forward(out, (h_n,), (gates, h_n_part, hnorm, rstd_h, a_hat, rstd_x))

    def backward(self, x, w, start, out, saved, d_out, d_final, lens):
        from . import kernels_layer_norm

        (h0,), (dh_n,), e = start, d_final, w.extras
        gates, h_n_part, hnorm, rstd_h, a_hat, rstd_x = saved
        d_xg, d_hh, dh0 = torch.empty_like(gates), torch.empty_like(gates), torch.empty_like(h0)
        ranges = _ranges(gates.size(1), h0.size(-1))
        # LN_h's gain and b_hh's gradients are sums over sequences: one pair per range, added after.
        sums = torch.empty((len(ranges), 2, gates.size(-1)), dtype=gates.dtype)
        args = (_np(d_out), _np(dh_n), gates.numpy(), h_n_part.numpy(), hnorm.numpy(), rstd_h.numpy(), out.numpy(),
                _np(h0), _np(w.w_hh), _np(e["ln_weight_hh"]), lens, d_xg.numpy(), d_hh.numpy(), dh0.numpy())
        _run_ranges(_with_sums(kernels_layer_norm.gru_backward), (args, sums.numpy()), list(enumerate(ranges)))
        d_gain_hh, d_bhh = sums.sum(0)
        d_x, d_wih, d_gain_ih, d_bih, _ = _normed_input_grads(d_xg, x, w.w_ih, e["ln_weight_ih"], a_hat, rstd_x, None)
        d_whh = _recurrent_weight_grad(d_hh, h0, out)
        biases = (d_bih, d_bhh) if w.b_ih is not None else (None, None)
        extras = {"ln_weight_ih": d_gain_ih, "ln_weight_hh": d_gain_hh}
        return Gradients(d_x, LayerWeights(d_wih, d_whh, *biases, None, extras), (dh0,))

    def recorded(self, kind, saved):
        return dict(zip(kind.rows, saved[0].chunk(len(kind.rows), -1)))

    def stream_step(self, w, batch, dtype):
        from . import kernels_layer_norm

        e = w.extras
        wih_t, whh_t = _array(w.w_ih.t(), dtype), _array(w.w_hh.t(), dtype)
        three_h = whh_t.shape[1]
        bih, bhh = _bias(w.b_ih, three_h, dtype), _bias(w.b_hh, three_h, dtype)
        gain_ih, gain_hh = _array(e["ln_weight_ih"], dtype), _array(e["ln_weight_hh"], dtype)
        xg, hh = np.empty((batch, three_h), dtype), np.empty((batch, three_h), dtype)
        eps, kernel = _eps(dtype), kernels_layer_norm.gru_step

        def step(x, h):
            kernel(x, wih_t, whh_t, gain_ih, bih, gain_hh, bhh, eps, h, xg, hh)
            return h

        return step


def _with_sums(backward):
    """A backward kernel run for range k: its two sums over sequences go to ``sums[k]``."""

    def run(args, sums, k, first_last):
        backward(*args, sums[k, 0], sums[k, 1], *first_last)

    return run


LAYER_NORM_LSTM_KERNELS = LayerNormLSTMKernels()
LAYER_NORM_GRU_KERNELS = LayerNormGRUKernels()
