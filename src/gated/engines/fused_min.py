"""Fused kernels for the min cells (MinGRU, MinLSTM): the fused engine's forward, backward and stream step.

Their gates read the input only (``recurrent=False``: no W_hh, no b_hh), so a layer
and direction is two matrix products around one cheap pass over time:

1. forward: ``x W_ih^T`` for all steps in one product (:func:`_product`), then one
   numba pass over time (``kernels_min.py``) that adds ``b_ih``, activates the gates in
   place in that buffer and runs ``h_t = a_t ⊙ h_(t-1) + b_t``. The activated gates are
   all backward and a trace need, so what training keeps is that one buffer
   (T, B, rows * H) besides the outputs; no scan intermediates;
2. backward: one reverse pass gives ``d xp`` per step and its sum ``d b_ih``, then
   ``d W_ih = d xp^T x``, and ``d x = d xp W_ih`` only when the input wants a gradient
   (a first layer fed with data does not: one product of three saved).

The reference engine keeps the parallel scan (``scan.py``): it is the definition the
tests compare with, and the path off the CPU. The stack of layers, directions and
packing is the fused engine's (``fused.py``), as for every kind.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .spec import Forward, Gradients, Kernels, LayerWeights


def _np(t: Tensor) -> np.ndarray:
    """A numpy view of a tensor's data (a copy only when it is not contiguous)."""
    return t.detach().contiguous().numpy()


def _product(x: Tensor, w_ih: Tensor) -> Tensor:
    """x W_ih^T for all steps, (T, B, rows * H), in a fresh buffer that the kernel turns into the gates.

    numba's single-threaded BLAS rather than torch.mm, so that the whole call stays on one
    thread, as in ``fused_cells``: measured on the shared 2-core machine, MinGRU training at
    T100 B1 I64 H128 took 43.6 ms with torch's products (waking its OpenMP workers) and
    1.4 ms with these; at T1000 B32 I128 H256 the two tied (1.21 s and 1.25 s, medians of 5).
    The bias is added by the kernel's pass over time, which reads the buffer anyway.
    """
    from . import kernels
    from .fused_cells import _none

    steps, batch, inputs = x.shape
    x2 = _np(x).reshape(steps * batch, inputs)
    xp = np.empty((steps * batch, w_ih.size(0)), dtype=x2.dtype)
    kernels.linear(x2, _np(w_ih), _none(x2), xp)
    return torch.from_numpy(xp).reshape(steps, batch, -1)


def _bias(b_ih: Tensor | None, gates: Tensor) -> np.ndarray:
    """b_ih as the kernels take it: zeros when there is none, so they have one signature either way."""
    return _np(b_ih) if b_ih is not None else np.zeros(gates.size(-1), dtype=gates.numpy().dtype)


def _input_grads(d_xp: Tensor, x: Tensor, w_ih: Tensor):
    """(d x, or None when x wants none, d W_ih): the products of backward, one call on this thread."""
    from . import kernels_min

    steps, batch, inputs = x.shape
    d2, x2 = d_xp.numpy().reshape(steps * batch, -1), _np(x).reshape(steps * batch, inputs)
    d_w = torch.empty_like(w_ih)
    want_x = x.requires_grad  # data fed to a first layer wants none: one product of the three saved
    d_x = torch.empty(steps, batch, inputs, dtype=x.dtype) if want_x else torch.empty(1, 1, dtype=x.dtype)
    kernels_min.input_grads(d2, x2, _np(w_ih), want_x, d_x.numpy().reshape(-1, d_x.size(-1)), d_w.numpy())
    return (d_x if want_x else None), d_w


class MinKernels(Kernels):
    """The kernels of one min cell; a subclass names its numba functions and how its gates are recorded."""

    folds_hidden_bias = False  # there is no b_hh to fold (LayerWeights.b_hh is None)
    # Never consulted: the min cells have no native op, so ``choose`` takes fused wherever it can run.
    wins_up_to = (0, 0)

    def _kernels(self):
        """(forward, backward, step) of ``kernels_min.py``; imported late, so numba loads only when used."""
        raise NotImplementedError

    def forward(self, x, w, start, lens, save):
        forward, _, _ = self._kernels()
        (h0,) = start
        gates = _product(x, w.w_ih)  # the bias added and the gates activated in place by the kernel
        out, h_n = torch.empty(*x.shape[:2], h0.size(-1), dtype=x.dtype), torch.empty_like(h0)
        forward(gates.numpy(), _bias(w.b_ih, gates), _np(h0), lens, out.numpy(), h_n.numpy())
        return Forward(out, (h_n,), (gates,))

    def backward(self, x, w, start, out, saved, d_out, d_final, lens):
        _, backward, _ = self._kernels()
        (h0,), (dh_n,), (gates,) = start, d_final, saved
        d_gates, dh0 = torch.empty_like(gates), torch.empty_like(h0)
        d_bias = torch.empty(gates.size(-1), dtype=x.dtype)
        backward(_np(d_out), _np(dh_n), gates.numpy(), _np(out), _np(h0), lens,
                 d_gates.numpy(), d_bias.numpy(), dh0.numpy())
        d_x, d_wih = _input_grads(d_gates, x, w.w_ih)
        d_bih = d_bias if w.b_ih is not None else None
        return Gradients(d_x, LayerWeights(d_wih, None, d_bih, None, None), (dh0,))

    def stream_step(self, w, batch, dtype):
        _, _, kernel = self._kernels()
        # C-ordered copies: training later cannot change the weights under a running stream.
        wih_t = np.array(w.w_ih.detach().t().numpy(), dtype=dtype, order="C")
        rows = wih_t.shape[1]
        bias = np.array(w.b_ih.detach().numpy(), dtype=dtype) if w.b_ih is not None else np.zeros(rows, dtype)
        xg = np.empty((batch, rows), dtype)

        def step(x, h):
            kernel(x, wih_t, bias, h, xg)
            return h

        return step


class MinGRUKernels(MinKernels):
    def _kernels(self):
        from . import kernels_min

        return kernels_min.min_gru_forward, kernels_min.min_gru_backward, kernels_min.min_gru_step

    def recorded(self, kind, saved):
        update, candidate = saved[0].chunk(2, -1)
        return {"update": update, "candidate": candidate}


class MinLSTMKernels(MinKernels):
    def _kernels(self):
        from . import kernels_min

        return kernels_min.min_lstm_forward, kernels_min.min_lstm_backward, kernels_min.min_lstm_step

    def recorded(self, kind, saved):
        forget, input, candidate = saved[0].chunk(3, -1)
        # Past a sequence's end the kernel zeroes both gates; its shares are zero too, as the reference's.
        total = forget + input
        total = torch.where(total == 0, torch.ones_like(total), total)
        return {"forget": forget, "input": input, "forget_share": forget / total,
                "input_share": input / total, "candidate": candidate}


MIN_GRU_KERNELS = MinGRUKernels()
MIN_LSTM_KERNELS = MinLSTMKernels()
