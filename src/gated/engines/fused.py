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

import os
import sys

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import reference
from .reference import EngineOutput, State, _reverse_in_time

DTYPES = (torch.float32, torch.float64)


def available() -> str | None:
    """None when the fused engine can run here, else the reason it cannot."""
    global _unavailable
    if _unavailable is None:
        try:
            import numba  # noqa: F401

            _load_single_threaded_blas()  # numba's np.dot calls SciPy's BLAS
            _unavailable = ""
        except ImportError as error:
            _unavailable = f"the fused engine needs numba and scipy: {error}"
    return _unavailable or None


_unavailable: str | None = None


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
    return reference.run_layers(module, x, lengths, state, record, _direction)


def _direction(module, w, layer_input: Tensor, start: State, lengths, mask, reverse: bool, record: bool):
    steps = layer_input.size(0)
    lens = np.full(layer_input.size(1), steps, dtype=np.int64) if lengths is None else lengths.cpu().to(torch.int64).numpy()
    x = _reverse_in_time(layer_input, lengths) if reverse else layer_input
    # The input projection's bias: the LSTM's and RNN's hidden bias simply adds to it.
    if module.mode == "GRU" or w.b_ih is None:
        bias = w.b_ih
    else:
        bias = w.b_ih + w.b_hh
    tensors = (x, *start, w.w_ih, w.w_hh, w.b_ih, w.b_hh, w.w_hr)
    grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
    if module.mode == "LSTM":
        args = (x, w.w_ih, bias, start[0], start[1], w.w_hh, w.w_hr, lens)
        if grad:
            out, h, c, gates, cells = _LSTM.apply(*args)
        else:
            out, h, c, gates, cells, _ = _lstm_forward(*args, save=record)
        final = (h, c)
        recorded = dict(zip(("input", "forget", "candidate", "output"), gates.chunk(4, -1)), cell=cells)
    elif module.mode == "GRU":
        args = (x, w.w_ih, bias, start[0], w.w_hh, w.b_hh, lens)
        if grad:
            out, h, gates = _GRU.apply(*args)
        else:
            out, h, gates, _ = _gru_forward(*args, save=record)
        final = (h,)
        recorded = dict(zip(("reset", "update", "candidate"), gates.chunk(3, -1)))
    else:
        relu = module.mode == "RNN_RELU"
        args = (x, w.w_ih, bias, start[0], w.w_hh, lens, relu)
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
# Each takes the layer's input x (T, B, I) and does the input projection, the loop and,
# in backward, every gradient in numba, so one call never leaves its thread.


def _np(t: Tensor) -> np.ndarray:
    """A numpy view of a tensor's data (a copy only when it is not contiguous)."""
    return t.detach().contiguous().numpy()


def _new(*shape, like: Tensor) -> Tensor:
    return torch.empty(shape, dtype=like.dtype)


def _none(like: np.ndarray, dims: int = 1) -> np.ndarray:
    """An empty array standing for "no bias" / "no projection" (kernels check its size)."""
    return np.empty((0,) * dims, dtype=like.dtype)


def _project(x: Tensor, w_ih: Tensor, bias: Tensor | None) -> np.ndarray:
    """xp = x W_ih^T + bias for all steps at once, (T, B, G)."""
    from . import kernels

    steps, batch, inputs = x.shape
    x2 = _np(x).reshape(steps * batch, inputs)
    xp = np.empty((steps * batch, w_ih.size(0)), dtype=x2.dtype)
    kernels.linear(x2, _np(w_ih), _np(bias) if bias is not None else _none(x2), xp)
    return xp.reshape(steps, batch, -1)


def _input_grads(d_xp: Tensor, x: Tensor, w_ih: Tensor, bias: Tensor | None):
    """Gradients of the input projection: (d x, d W_ih, d bias)."""
    from . import kernels

    steps, batch, inputs = x.shape
    d2 = d_xp.numpy().reshape(steps * batch, -1)
    d_x, d_w = _new(steps, batch, inputs, like=x), torch.empty_like(w_ih)
    d_b = torch.empty_like(bias) if bias is not None else None
    kernels.linear_backward(
        d2, _np(x).reshape(steps * batch, inputs), _np(w_ih), d_x.numpy().reshape(steps * batch, inputs),
        d_w.numpy(), d_b.numpy() if d_b is not None else _none(d2),
    )
    return d_x, d_w, d_b


def _recurrent_weight_grad(d_pre: Tensor, h0: Tensor, out: Tensor) -> Tensor:
    """d W_hh = sum over steps of d_pre_t^T h_(t-1): one product over all steps."""
    from . import kernels

    h_prev = torch.cat([h0.unsqueeze(0), out[:-1]])  # the h each step's W_hh multiplied
    size = h_prev.size(-1)
    d_w = _new(d_pre.size(-1), size, like=out)
    kernels.matmul_tn(d_pre.numpy().reshape(-1, d_pre.size(-1)), h_prev.numpy().reshape(-1, size), d_w.numpy())
    return d_w


def _lstm_forward(x, w_ih, bias, h0, c0, w_hh, w_hr, lens, save: bool):
    from . import kernels

    xp = _project(x, w_ih, bias)
    steps, batch, four_h = xp.shape
    hidden, proj = four_h // 4, h0.size(-1)
    kept = steps if save else 1  # without backward or trace, one reused slice is enough
    out, h_n, c_n = _new(steps, batch, proj, like=x), _new(batch, proj, like=x), _new(batch, hidden, like=x)
    gates, cells = _new(kept, batch, four_h, like=x), _new(kept, batch, hidden, like=x)
    hfull = _new(kept, batch, hidden, like=x) if w_hr is not None else _new(1, 1, 1, like=x)
    whr_t = _np(w_hr.t()) if w_hr is not None else _none(xp, 2)
    kernels.lstm_forward(
        xp, _np(h0), _np(c0), _np(w_hh.t()), whr_t, lens, int(save),
        out.numpy(), gates.numpy(), cells.numpy(), hfull.numpy(), h_n.numpy(), c_n.numpy(),
    )
    return out, h_n, c_n, gates, cells, hfull


class _LSTM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w_ih, bias, h0, c0, w_hh, w_hr, lens):
        out, h_n, c_n, gates, cells, hfull = _lstm_forward(x, w_ih, bias, h0, c0, w_hh, w_hr, lens, save=True)
        ctx.lens = lens
        ctx.save_for_backward(x, w_ih, bias, h0, c0, w_hh, w_hr, out, gates, cells, hfull)
        ctx.mark_non_differentiable(gates, cells)
        return out, h_n, c_n, gates, cells

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, dh_n, dc_n, _d_gates, _d_cells):
        from . import kernels

        x, w_ih, bias, h0, c0, w_hh, w_hr, out, gates, cells, hfull = ctx.saved_tensors
        steps, batch, _ = gates.shape
        proj = out.size(-1)
        d_gates = torch.empty_like(gates)
        d_proj = _new(steps, batch, proj, like=out) if w_hr is not None else _new(1, 1, 1, like=out)
        dh0, dc0 = torch.empty_like(h0), torch.empty_like(c0)
        whr = _np(w_hr) if w_hr is not None else _none(gates.numpy(), 2)
        kernels.lstm_backward(
            _np(d_out), _np(dh_n), _np(dc_n), gates.numpy(), cells.numpy(), _np(c0), _np(w_hh), whr,
            ctx.lens, d_gates.numpy(), d_proj.numpy(), dh0.numpy(), dc0.numpy(),
        )
        d_x, d_wih, d_bias = _input_grads(d_gates, x, w_ih, bias)
        d_whh = _recurrent_weight_grad(d_gates, h0, out)
        d_whr = None
        if w_hr is not None:
            d_whr = _new(proj, hfull.size(-1), like=out)
            kernels.matmul_tn(d_proj.numpy().reshape(-1, proj), hfull.numpy().reshape(-1, hfull.size(-1)), d_whr.numpy())
        return d_x, d_wih, d_bias, dh0, dc0, d_whh, d_whr, None


def _gru_forward(x, w_ih, bias, h0, w_hh, b_hh, lens, save: bool):
    from . import kernels

    xp = _project(x, w_ih, bias)
    steps, batch, three_h = xp.shape
    hidden = three_h // 3
    kept = steps if save else 1
    out, h_n = _new(steps, batch, hidden, like=x), _new(batch, hidden, like=x)
    gates, h_n_part = _new(kept, batch, three_h, like=x), _new(kept, batch, hidden, like=x)
    bhh = _np(b_hh) if b_hh is not None else np.zeros(three_h, dtype=xp.dtype)
    kernels.gru_forward(
        xp, _np(h0), _np(w_hh.t()), bhh, lens, int(save), out.numpy(), gates.numpy(), h_n_part.numpy(), h_n.numpy(),
    )
    return out, h_n, gates, h_n_part


class _GRU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w_ih, bias, h0, w_hh, b_hh, lens):
        out, h_n, gates, h_n_part = _gru_forward(x, w_ih, bias, h0, w_hh, b_hh, lens, save=True)
        ctx.lens = lens
        ctx.save_for_backward(x, w_ih, bias, h0, w_hh, b_hh, out, gates, h_n_part)
        ctx.mark_non_differentiable(gates)
        return out, h_n, gates

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, dh_n, _d_gates):
        from . import kernels

        x, w_ih, bias, h0, w_hh, b_hh, out, gates, h_n_part = ctx.saved_tensors
        d_xg, d_hg, dh0 = torch.empty_like(gates), torch.empty_like(gates), torch.empty_like(h0)
        kernels.gru_backward(
            _np(d_out), _np(dh_n), gates.numpy(), h_n_part.numpy(), out.numpy(), _np(h0), _np(w_hh),
            ctx.lens, d_xg.numpy(), d_hg.numpy(), dh0.numpy(),
        )
        d_x, d_wih, d_bias = _input_grads(d_xg, x, w_ih, bias)
        d_whh = _recurrent_weight_grad(d_hg, h0, out)
        d_bhh = d_hg.sum((0, 1)) if b_hh is not None else None
        return d_x, d_wih, d_bias, dh0, d_whh, d_bhh, None


def _rnn_forward(x, w_ih, bias, h0, w_hh, lens, relu: bool):
    from . import kernels

    xp = _project(x, w_ih, bias)
    out, h_n = _new(*xp.shape, like=x), _new(*h0.shape, like=x)
    kernels.rnn_forward(xp, _np(h0), _np(w_hh.t()), lens, relu, out.numpy(), h_n.numpy())
    return out, h_n


class _RNN(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w_ih, bias, h0, w_hh, lens, relu):
        out, h_n = _rnn_forward(x, w_ih, bias, h0, w_hh, lens, relu)
        ctx.lens, ctx.relu = lens, relu
        ctx.save_for_backward(x, w_ih, bias, h0, w_hh, out)
        return out, h_n

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, dh_n):
        from . import kernels

        x, w_ih, bias, h0, w_hh, out = ctx.saved_tensors
        d_pre, dh0 = torch.empty_like(out), torch.empty_like(h0)
        kernels.rnn_backward(_np(d_out), _np(dh_n), out.numpy(), _np(w_hh), ctx.lens, ctx.relu, d_pre.numpy(), dh0.numpy())
        d_x, d_wih, d_bias = _input_grads(d_pre, x, w_ih, bias)
        d_whh = _recurrent_weight_grad(d_pre, h0, out)
        return d_x, d_wih, d_bias, dh0, d_whh, None, None


# -- threads ---------------------------------------------------------------------------------


def _load_single_threaded_blas() -> None:
    """Load SciPy's OpenBLAS (which the kernels' np.dot calls) with one thread.

    torch's own threads (torch.get_num_threads()) still do everything outside the kernels.
    Inside, the per-step products are small and come hundreds of times per call; there
    OpenBLAS's thread server is a loss, and on a busy machine a disaster: measured on the
    2-core machine while another job ran, one (4 x 256) @ (256 x 1024) product took 7.7 ms
    with OpenBLAS's threads, also after threadpoolctl had limited them to 1, and 0.2 ms
    with OPENBLAS_NUM_THREADS=1 in place when the library loaded. So the variable is set
    just for that load (numpy's own OpenBLAS, loaded earlier, is not affected). If SciPy's
    BLAS was loaded before, it keeps its threads and threadpoolctl limits it to one.
    """
    if _scipy_blas_loaded():
        _limit_scipy_blas()
        return
    before = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import scipy.linalg.cython_blas  # noqa: F401
    finally:
        if before is None:
            del os.environ["OPENBLAS_NUM_THREADS"]
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = before


def _scipy_blas_loaded() -> bool:
    if "scipy.linalg.cython_blas" in sys.modules or "scipy.linalg" in sys.modules:
        return True
    try:
        with open("/proc/self/maps") as maps:
            return "scipy.libs/libscipy_openblas" in maps.read()
    except OSError:
        return False


def _limit_scipy_blas() -> None:
    try:
        import scipy.linalg.cython_blas  # noqa: F401
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return
    controller = ThreadpoolController()
    scipy_blas = [lib.filepath for lib in controller.lib_controllers if "scipy.libs" in lib.filepath]
    if scipy_blas:
        controller.select(filepath=scipy_blas).limit(limits=1)
