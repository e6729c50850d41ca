"""The fused engine's kernels for the peephole LSTM (issue 11), as torch functions.

The numba loops are in ``kernels_peephole.py`` (imported late, so that numba loads only
when a kernel runs, after ``fused.available`` has bound the kernels' BLAS, ``blas.py``);
here they meet torch: numpy views in, tensors out, as ``fused_cells.py`` does for the
plain cells. The peepholes come in ``w.extras`` under the kind's names (``kinds.py``),
and their gradients go back the same way. Both biases fold into the input's share
(``folds_hidden_bias``), as for the LSTM.
"""

from __future__ import annotations

import numpy as np
import torch

from .fused_cells import (_array, _bias, _input_grads, _lstm_backward_split, _lstm_forward_split, _new, _np, _project,
                          _recurrent_weight_grad)
from .spec import SWEPT, Forward, Gradients, Kernels, LayerWeights

PEEPHOLES = ("weight_ci", "weight_cf", "weight_co")


def _peepholes(w: LayerWeights) -> list[np.ndarray]:
    return [_np(w.extras[name]) for name in PEEPHOLES]


def _split(w: LayerWeights) -> bool:
    """Run this layer on two threads (``persistent_lstm.py``, as the LSTM)? Where it pays."""
    from . import persistent_sync

    return persistent_sync.split_pays(w.w_hh.size(1))


class PeepholeLSTMKernels(Kernels):
    # torch has no peephole LSTM, so the race is against the reference loop (engines/__init__.py).
    wins_up_to = (SWEPT, SWEPT)  # won at every size measured, split or not
    one_thread_wins_up_to = (2**62, 2**62)  # with torch on one thread too, the loop lost at every size

    def forward(self, x, w, start, lens, save):
        from . import kernels_peephole

        if _split(w):
            peep = [w.extras[name] for name in PEEPHOLES]
            out, h_n, c_n, gates, cells, _ = _lstm_forward_split(x, w.w_ih, w.b_ih, *start, w.w_hh, lens, save,
                                                                 peep=peep)
            return Forward(out, (h_n, c_n), (gates, cells))
        h0, c0 = start
        xp = _project(x, w.w_ih, w.b_ih)
        steps, batch, four_h = xp.shape
        hidden = four_h // 4
        kept = steps if save else 1  # without backward or trace, one reused slice is enough
        out, h_n, c_n = _new(steps, batch, hidden, like=x), _new(batch, hidden, like=x), _new(batch, hidden, like=x)
        gates, cells = _new(kept, batch, four_h, like=x), _new(kept, batch, hidden, like=x)
        kernels_peephole.peephole_lstm_forward(
            xp, _np(h0), _np(c0), _np(w.w_hh.t()), *_peepholes(w), lens, int(save),
            out.numpy(), gates.numpy(), cells.numpy(), h_n.numpy(), c_n.numpy(),
        )
        return Forward(out, (h_n, c_n), (gates, cells))

    def backward(self, x, w, start, out, saved, d_out, d_final, lens):
        from . import kernels_peephole

        if _split(w):
            return _lstm_backward_split(x, w, start, out, saved, d_out, d_final, lens, peep=PEEPHOLES)
        (h0, c0), (dh_n, dc_n), (gates, cells) = start, d_final, saved
        d_gates = torch.empty_like(gates)
        dh0, dc0 = torch.empty_like(h0), torch.empty_like(c0)
        d_peep = {name: torch.empty_like(w.extras[name]) for name in PEEPHOLES}
        kernels_peephole.peephole_lstm_backward(
            _np(d_out), _np(dh_n), _np(dc_n), gates.numpy(), cells.numpy(), _np(c0), _np(w.w_hh), *_peepholes(w),
            lens, d_gates.numpy(), dh0.numpy(), dc0.numpy(), *(d.numpy() for d in d_peep.values()),
        )
        d_x, d_wih, d_bias = _input_grads(d_gates, x, w.w_ih, w.b_ih)
        d_whh = _recurrent_weight_grad(d_gates, h0, out)
        return Gradients(d_x, LayerWeights(d_wih, d_whh, d_bias, None, None, d_peep), (dh0, dc0))

    def recorded(self, kind, saved):
        gates, cells = saved
        return {**dict(zip(kind.rows, gates.chunk(len(kind.rows), -1))), "cell": cells}

    def stream_step(self, w, batch, dtype):
        from . import kernels_peephole

        # [W_ih; W_hh]^T: one product of the combined [x, h] gives the gates (the guide's step 1).
        w_t = _array(torch.cat([w.w_ih, w.w_hh], 1).t(), dtype)
        bias = _bias(w.b_ih, w.w_ih.size(0), dtype)
        w_ci, w_cf, w_co = (_array(w.extras[name], dtype) for name in PEEPHOLES)
        xh, pre = np.empty((batch, w_t.shape[0]), dtype), np.empty((batch, bias.shape[0]), dtype)
        kernel = kernels_peephole.peephole_lstm_step

        def step(x, h, c):
            kernel(x, w_t, bias, w_ci, w_cf, w_co, h, c, xh, pre)
            return h

        return step


PEEPHOLE_LSTM_KERNELS = PeepholeLSTMKernels()
