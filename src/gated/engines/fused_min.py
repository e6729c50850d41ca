"""Fused kernels for the min cells (MinGRU, MinLSTM): the fused engine's forward, backward and stream step.

Their gates read the input only (``recurrent=False``: no W_hh, no b_hh), so a layer
and direction is two matrix products around one cheap pass over time:

1. forward: ``x W_ih^T`` for all steps in one product (:func:`_product`), then one
   numba pass over time (``kernels_min.py``) that adds ``b_ih``, activates the gates in
   place in that buffer and runs ``h_t = a_t ⊙ h_(t-1) + b_t``. The activated gates are
   all backward and a trace need, so what training keeps is that one buffer
   (T, B, rows * H) besides the outputs; no scan intermediates;
2. backward: a reverse pass gives ``d xp`` per step and its sum ``d b_ih``, a chunk of
   steps at a time; each chunk then adds its share to ``d W_ih = d xp^T x``, and gives
   ``d x = d xp W_ih`` only when the input wants a gradient (a first layer fed with
   data does not: one product of three saved). ``d xp`` of all steps never exists.

Large products run on torch's threads (torch.mm), and the passes split the sequences
(or, for fewer sequences than threads, the units) among as many threads: the
recurrence couples neither. Small calls stay on the calling thread (``threads.threads``).

The reference engine keeps the parallel scan (``scan.py``): it is the definition the
tests compare with, and the path off the CPU. The stack of layers, directions and
packing is the fused engine's (``fused.py``), as for every kind.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from . import threads
from .spec import Forward, Gradients, Kernels, LayerWeights


def _np(t: Tensor) -> np.ndarray:
    """A numpy view of a tensor's data (a copy only when it is not contiguous)."""
    return t.detach().contiguous().numpy()


# Where torch's threads take over the products and the pass over time (see ``threads.threads``).
TORCH_PRODUCT_FROM = threads.PRODUCT_FROM  # multiply-adds of one product
PARALLEL_SCAN_FROM = 2**18  # steps * batch * hidden: below this a pass is well under a millisecond


def _product(x: Tensor, w_ih: Tensor) -> Tensor:
    """x W_ih^T for all steps, (T, B, rows * H), in a fresh buffer that the kernel turns into the gates.

    Small products stay on this thread in numba's BLAS (as in ``fused_cells``); large ones go to
    torch.mm, which spreads them over torch's threads. The bias is added by the kernel's pass over
    time, which reads the buffer anyway.
    """
    from . import kernels
    from .fused_cells import _none

    steps, batch, inputs = x.shape
    rows = w_ih.size(0)
    x2 = x.detach().reshape(steps * batch, inputs)
    if threads.threads(steps * batch * inputs * rows, TORCH_PRODUCT_FROM) > 1:
        return torch.mm(x2, w_ih.detach().t()).reshape(steps, batch, rows)
    x2 = _np(x2)
    xp = np.empty((steps * batch, rows), dtype=x2.dtype)
    kernels.linear(x2, _np(w_ih), _none(x2), xp)
    return torch.from_numpy(xp).reshape(steps, batch, rows)


def _shares(gates: Tensor, h0: Tensor) -> list[tuple[int, int, int, int]]:
    """The blocks (b_first, b_last, lo, hi) of a pass over time, one per thread: sequences split
    evenly, or, with fewer sequences than threads, units (a single long sequence uses both cores too)."""
    steps = gates.size(0)
    batch, hidden = h0.shape
    count = threads.threads(steps * batch * hidden, PARALLEL_SCAN_FROM)
    if batch >= count:
        return [(batch * k // count, batch * (k + 1) // count, 0, hidden) for k in range(count)]
    count = min(count, hidden)
    return [(0, batch, hidden * k // count, hidden * (k + 1) // count) for k in range(count)]


def _step_rows(d_out: Tensor) -> np.ndarray:
    """d_out as the backward kernels read it, (T or 1, B or 1, H).

    A loss that sums the output hands back one value broadcast over every step and sequence
    (stride 0): kept as one row it is not copied out to (T, B, H), 32 MB at T1000 B32 H256.
    """
    d_out = d_out.detach()
    if d_out.size(0) > 1 and d_out.stride(0) == 0:
        d_out = d_out[:1]
    if d_out.size(1) > 1 and d_out.stride(1) == 0:
        d_out = d_out[:, :1]
    return d_out.contiguous().numpy()


def _bias(b_ih: Tensor | None, gates: Tensor) -> np.ndarray:
    """b_ih as the kernels take it: zeros when there is none, so they have one signature either way."""
    return _np(b_ih) if b_ih is not None else np.zeros(gates.size(-1), dtype=gates.numpy().dtype)


def _chunk_steps(batch: int, rows: int) -> int:
    """Steps per chunk of backward: d xp of one chunk about 2 MB, so that it is still in cache when
    its products read it (32 steps at B32 and 2 x 256 rows)."""
    return max(1, CHUNK_VALUES // (batch * rows))


CHUNK_VALUES = 2**19  # values of d xp per chunk of backward


class _InputGrads:
    """d W_ih (and d x when the input wants it), summed chunk by chunk as backward produces d xp.

    torch's products, except for small work where torch would wake its other threads (``threads.threads``).
    """

    def __init__(self, x: Tensor, w_ih: Tensor):
        steps, batch, inputs = x.shape
        self.x, self.w = x.detach(), w_ih.detach()
        self.want_x = x.requires_grad  # data fed to a first layer wants none: one product of the three saved
        # torch on one thread too: chunk by chunk, MKL's d xp^T x measured 130 ms against 320 ms for
        # numba's (SciPy's OpenBLAS) at T1000 B32 I128 H256 (CPU time, medians of 5); only where torch
        # would wake its other threads for a small product does numba's stay
        work = steps * batch * inputs * w_ih.size(0)
        self.torch = torch.get_num_threads() == 1 or threads.threads(work, TORCH_PRODUCT_FROM) > 1
        self.d_w = torch.zeros_like(self.w)
        self.d_x = torch.empty(x.shape, dtype=x.dtype) if self.want_x else None
        self.scratch = None if self.torch else np.empty(tuple(w_ih.shape), dtype=self.d_w.numpy().dtype)

    def add(self, d_xp: Tensor, first: int, last: int) -> None:
        """Take in d xp (last - first, B, rows) of steps first .. last - 1."""
        from . import kernels_min

        d2 = d_xp.reshape(-1, d_xp.size(-1))
        x2 = self.x[first:last].reshape(d2.size(0), -1)
        if self.torch:
            self.d_w.addmm_(d2.t(), x2)
            if self.want_x:
                torch.mm(d2, self.w, out=self.d_x[first:last].view(d2.size(0), -1))
            return
        rows = d2.size(0)
        none = np.empty((1, 1), self.scratch.dtype)
        d_x = self.d_x[first:last].numpy().reshape(rows, -1) if self.want_x else none
        kernels_min.input_grads(d2.numpy(), _np(x2), _np(self.w), self.want_x, d_x, self.d_w.numpy(),
                                self.scratch)


class MinKernels(Kernels):
    """The kernels of one min cell; a subclass names its numba functions and how its gates are recorded."""

    folds_hidden_bias = False  # there is no b_hh to fold (LayerWeights.b_hh is None)
    # Against the reference engine's scan: fused won at every size measured (1.2-3.8x, B1-32, H128-256).
    wins_up_to = (2**62, 2**62)

    def _kernels(self):
        """(forward, backward, step) of ``kernels_min.py``; imported late, so numba loads only when used."""
        raise NotImplementedError

    def forward(self, x, w, start, lens, save):
        forward, _, _ = self._kernels()
        (h0,) = start
        gates = _product(x, w.w_ih)  # the bias added and the gates activated in place by the kernel
        out, h_n = torch.empty(*x.shape[:2], h0.size(-1), dtype=x.dtype), torch.empty_like(h0)
        args = (gates.numpy(), _bias(w.b_ih, gates), _np(h0), lens, out.numpy(), h_n.numpy())
        threads.split_run(forward, args, _shares(gates, h0))
        return Forward(out, (h_n,), (gates,))

    def backward(self, x, w, start, out, saved, d_out, d_final, lens):
        _, backward, _ = self._kernels()
        (h0,), (dh_n,), (gates,) = start, d_final, saved
        steps, batch, rows = gates.shape
        dh0 = dh_n.detach().clone(memory_format=torch.contiguous_format)  # d h carried back: it ends as d h0
        sums = np.zeros((batch, rows))  # d_bias per sequence, float64 over T rows each
        shares = _shares(gates, h0)
        chunk = _chunk_steps(batch, rows)
        d_chunk = torch.empty(min(chunk, steps), batch, rows, dtype=gates.dtype)
        grads = _InputGrads(x, w.w_ih)
        args = (_step_rows(d_out), dh0.numpy(), gates.numpy(), _np(out), _np(h0), lens)
        for last in range(steps, 0, -chunk):
            first = max(0, last - chunk)
            d_xp = d_chunk[: last - first]
            threads.split_run(backward, (*args, d_xp.numpy(), sums, first, last), shares)
            grads.add(d_xp, first, last)
        d_bih = torch.from_numpy(sums.sum(0)).to(x.dtype) if w.b_ih is not None else None
        return Gradients(grads.d_x, LayerWeights(grads.d_w, None, d_bih, None, None), (dh0,))

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
