"""The fused engine: each layer and direction runs its whole time loop in one numba kernel.

Per layer and direction:

1. torch computes the input's share of the gates for all steps in one matrix
   product, ``xp = x W_ih^T + b_ih`` (+ ``b_hh`` for LSTM and RNN, whose
   hidden bias simply adds; the GRU's ``b_hn`` sits inside ``reset * (...)``
   and stays in the kernel);
2. a kernel of ``kernels.py`` runs the loop over time (the cells of
   ``cells.py``, gate by gate) and saves what backward needs: the activated
   gates, the cell states, the outputs;
3. backward runs the hand-written backpropagation through time of the same
   module, then torch forms each weight gradient in one matrix product over
   all steps (``d_gates^T @ h_prev``).

The stack of layers, directions, dropout and packing is the reference
engine's (:func:`reference.run_layers`), so only the loop over time differs.
Trace steps come straight from the saved gate buffers, so recording costs
little; they are detached from autograd (use the reference engine to
differentiate through a trace, which ``engine="auto"`` does).

Needs numba and SciPy (numba's ``np.dot`` calls SciPy's BLAS); see
:func:`available`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import reference
from .reference import EngineOutput, State, _reverse_in_time

DTYPES = (torch.float32, torch.float64)


def available() -> str | None:
    """None when the fused engine can run here, else the reason it cannot."""
    try:
        import numba  # noqa: F401
        import scipy.linalg.cython_blas  # noqa: F401  (numba's np.dot needs it)
    except ImportError as error:
        return f"the fused engine needs numba and scipy: {error}"
    return None


def supports(module, x: Tensor) -> str | None:
    """None when this engine can run ``module`` on ``x``, else why not."""
    if x.device.type != "cpu":
        return f"it runs on the CPU, the input is on {x.device}"
    if x.dtype not in DTYPES:
        return f"it runs float32 and float64, the input is {x.dtype}"
    return available()


def run(module, x: Tensor, lengths: Tensor | None, state: State, record: bool) -> EngineOutput:
    reason = supports(module, x)
    if reason:
        raise RuntimeError(f"{type(module).__name__}: engine='fused' cannot run here: {reason}")
    if x.size(1) == 0:  # an empty batch: nothing to loop over, BLAS would see empty matrices
        return reference.run(module, x, lengths, state, record)
    _follow_torch_threads()
    return reference.run_layers(module, x, lengths, state, record, _direction)


def _direction(module, w, layer_input: Tensor, start: State, lengths, mask, reverse: bool, record: bool):
    steps = layer_input.size(0)
    lens = np.full(layer_input.size(1), steps, dtype=np.int64) if lengths is None else lengths.cpu().to(torch.int64).numpy()
    if module.mode == "GRU":
        xp = F.linear(layer_input, w.w_ih, w.b_ih)
    else:
        xp = F.linear(layer_input, w.w_ih, None if w.b_ih is None else w.b_ih + w.b_hh)
    if reverse:
        xp = _reverse_in_time(xp, lengths)
    tensors = (xp, *start, w.w_hh, w.b_hh, w.w_hr)
    grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
    if module.mode == "LSTM":
        args = (xp, start[0], start[1], w.w_hh, w.w_hr, lens)
        if grad:
            out, h, c, gates, cells = _LSTM.apply(*args)
        else:
            out, h, c, gates, cells, _ = _lstm_forward(*args, save=record)
        final = (h, c)
        recorded = dict(zip(("input", "forget", "candidate", "output"), gates.chunk(4, -1)), cell=cells)
    elif module.mode == "GRU":
        args = (xp, start[0], w.w_hh, w.b_hh, lens)
        if grad:
            out, h, gates = _GRU.apply(*args)
        else:
            out, h, gates, _ = _gru_forward(*args, save=record)
        final = (h,)
        recorded = dict(zip(("reset", "update", "candidate"), gates.chunk(3, -1)))
    else:
        relu = module.mode == "RNN_RELU"
        args = (xp, start[0], w.w_hh, lens, relu)
        out, h = _RNN.apply(*args) if grad else _rnn_forward(*args)
        final = (h,)
        recorded = {}
    recorded["hidden"] = out
    if reverse:
        out = _reverse_in_time(out, lengths)
        if record:
            recorded = {name: _reverse_in_time(value, lengths) for name, value in recorded.items()}
    return out, final, (recorded if record else None)


# -- the kernels as torch functions ----------------------------------------------------------


def _np(t: Tensor) -> np.ndarray:
    """A numpy view of a tensor's data (a copy only when it is not contiguous)."""
    return t.detach().contiguous().numpy()


def _new(*shape, like: Tensor) -> Tensor:
    return torch.empty(shape, dtype=like.dtype)


def _lstm_forward(xp, h0, c0, w_hh, w_hr, lens, save: bool):
    from . import kernels

    steps, batch, four_h = xp.shape
    hidden, proj = four_h // 4, h0.size(-1)
    kept = steps if save else 1  # without backward or trace, one reused slice is enough
    out, h_n, c_n = _new(steps, batch, proj, like=xp), _new(batch, proj, like=xp), _new(batch, hidden, like=xp)
    gates, cells = _new(kept, batch, four_h, like=xp), _new(kept, batch, hidden, like=xp)
    hfull = _new(kept, batch, hidden, like=xp) if w_hr is not None else _new(1, 1, 1, like=xp)
    whr_t = _np(w_hr.t()) if w_hr is not None else np.empty((0, 0), dtype=out.numpy().dtype)
    kernels.lstm_forward(
        _np(xp), _np(h0), _np(c0), _np(w_hh.t()), whr_t, lens, int(save),
        out.numpy(), gates.numpy(), cells.numpy(), hfull.numpy(), h_n.numpy(), c_n.numpy(),
    )
    return out, h_n, c_n, gates, cells, hfull


class _LSTM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp, h0, c0, w_hh, w_hr, lens):
        out, h_n, c_n, gates, cells, hfull = _lstm_forward(xp, h0, c0, w_hh, w_hr, lens, save=True)
        ctx.lens = lens
        ctx.save_for_backward(h0, c0, w_hh, w_hr, out, gates, cells, hfull)
        ctx.mark_non_differentiable(gates, cells)
        return out, h_n, c_n, gates, cells

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, dh_n, dc_n, _d_gates, _d_cells):
        from . import kernels

        h0, c0, w_hh, w_hr, out, gates, cells, hfull = ctx.saved_tensors
        steps, batch, four_h = gates.shape
        proj = out.size(-1)
        d_gates = torch.empty_like(gates)
        d_proj = _new(steps, batch, proj, like=out) if w_hr is not None else _new(1, 1, 1, like=out)
        dh0, dc0 = torch.empty_like(h0), torch.empty_like(c0)
        whr = _np(w_hr) if w_hr is not None else np.empty((0, 0), dtype=out.numpy().dtype)
        kernels.lstm_backward(
            _np(d_out), _np(dh_n), _np(dc_n), gates.numpy(), cells.numpy(), _np(c0), _np(w_hh), whr,
            ctx.lens, d_gates.numpy(), d_proj.numpy(), dh0.numpy(), dc0.numpy(),
        )
        h_prev = torch.cat([h0.unsqueeze(0), out[:-1]])  # the h each step's W_hh multiplied
        d_whh = d_gates.reshape(-1, four_h).t().mm(h_prev.reshape(-1, proj))
        d_whr = d_proj.reshape(-1, proj).t().mm(hfull.reshape(-1, hfull.size(-1))) if w_hr is not None else None
        return d_gates, dh0, dc0, d_whh, d_whr, None


def _gru_forward(xp, h0, w_hh, b_hh, lens, save: bool):
    from . import kernels

    steps, batch, three_h = xp.shape
    hidden = three_h // 3
    kept = steps if save else 1
    out, h_n = _new(steps, batch, hidden, like=xp), _new(batch, hidden, like=xp)
    gates, h_n_part = _new(kept, batch, three_h, like=xp), _new(kept, batch, hidden, like=xp)
    bhh = _np(b_hh) if b_hh is not None else np.zeros(three_h, dtype=out.numpy().dtype)
    kernels.gru_forward(
        _np(xp), _np(h0), _np(w_hh.t()), bhh, lens, int(save), out.numpy(), gates.numpy(), h_n_part.numpy(),
        h_n.numpy(),
    )
    return out, h_n, gates, h_n_part


class _GRU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp, h0, w_hh, b_hh, lens):
        out, h_n, gates, h_n_part = _gru_forward(xp, h0, w_hh, b_hh, lens, save=True)
        ctx.lens = lens
        ctx.save_for_backward(h0, w_hh, b_hh, out, gates, h_n_part)
        ctx.mark_non_differentiable(gates)
        return out, h_n, gates

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, dh_n, _d_gates):
        from . import kernels

        h0, w_hh, b_hh, out, gates, h_n_part = ctx.saved_tensors
        three_h, hidden = gates.size(-1), out.size(-1)
        d_xg, d_hg, dh0 = torch.empty_like(gates), torch.empty_like(gates), torch.empty_like(h0)
        kernels.gru_backward(
            _np(d_out), _np(dh_n), gates.numpy(), h_n_part.numpy(), out.numpy(), _np(h0), _np(w_hh),
            ctx.lens, d_xg.numpy(), d_hg.numpy(), dh0.numpy(),
        )
        h_prev = torch.cat([h0.unsqueeze(0), out[:-1]])
        d_hg2 = d_hg.reshape(-1, three_h)
        d_whh = d_hg2.t().mm(h_prev.reshape(-1, hidden))
        d_bhh = d_hg2.sum(0) if b_hh is not None else None
        return d_xg, dh0, d_whh, d_bhh, None


def _rnn_forward(xp, h0, w_hh, lens, relu: bool):
    from . import kernels

    out, h_n = torch.empty_like(xp), _new(*h0.shape, like=xp)
    kernels.rnn_forward(_np(xp), _np(h0), _np(w_hh.t()), lens, relu, out.numpy(), h_n.numpy())
    return out, h_n


class _RNN(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp, h0, w_hh, lens, relu):
        out, h_n = _rnn_forward(xp, h0, w_hh, lens, relu)
        ctx.lens, ctx.relu = lens, relu
        ctx.save_for_backward(h0, w_hh, out)
        return out, h_n

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, dh_n):
        from . import kernels

        h0, w_hh, out = ctx.saved_tensors
        d_pre, dh0 = torch.empty_like(out), torch.empty_like(h0)
        kernels.rnn_backward(_np(d_out), _np(dh_n), out.numpy(), _np(w_hh), ctx.lens, ctx.relu, d_pre.numpy(), dh0.numpy())
        hidden = out.size(-1)
        h_prev = torch.cat([h0.unsqueeze(0), out[:-1]])
        d_whh = d_pre.reshape(-1, hidden).t().mm(h_prev.reshape(-1, hidden))
        return d_pre, dh0, d_whh, None, None


# -- threads ---------------------------------------------------------------------------------

_blas_threads: int | None = None


def _follow_torch_threads() -> None:
    """Give SciPy's BLAS (used by the kernels' np.dot) as many threads as torch has."""
    global _blas_threads
    wanted = torch.get_num_threads()
    if wanted == _blas_threads:
        return
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=wanted, user_api="blas")
    except ImportError:  # without threadpoolctl BLAS keeps its own default (all cores)
        pass
    _blas_threads = wanted
