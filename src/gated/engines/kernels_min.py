"""numba kernels of the min cells (``cells.min_gru_cell``, ``cells.min_lstm_cell``): one pass over time.

Their gates read the input only, so every step is ``h_t = a_t ⊙ h_(t-1) + b_t`` with
``a_t``, ``b_t`` known from ``xp = W_ih x + b_ih`` (computed before, in one product).
On a CPU a parallel scan buys nothing here: the recurrence is a few flops per element
and memory-bound, so one pass through time, vectorised over the units of each
sequence, does the least work and touches each value once. Per step and sequence the
loop over units is plain arithmetic that LLVM vectorises (float32 through the
sigmoid below, exact in both tails, float64 through libm).

* Forward adds the bias to ``gates`` (the product ``x W_ih^T``) and overwrites it in
  place with the activated gates, in one pass: they are what backward and a trace
  need, minGRU (update, candidate), minLSTM (forget, input, candidate). The minLSTM's
  shares ``f / (f + i)`` are recomputed where needed: a division, where storing them
  would cost 2H values per step.
* Backward walks time in reverse: ``d h_(t-1) = a_t d h_t``, and through a_t, b_t to
  the pre-activations ``d xp`` (written to ``d_gates``) and sums them into ``d_bias``
  (in float64: T * B rows); ``d W_ih`` is then one product over all steps
  (:func:`input_grads`).
* Packed input: ``lengths[b]`` steps are real; past them a sequence keeps its state,
  its outputs and gates are zero, its gradients pass through unchanged.
* The step kernels stream one step: ``xg = x @ W_ih^T`` then the same update of ``h``.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

from .kernels import JIT

# -- a sigmoid exact in both tails ---------------------------------------------------------------
# ``kernels.sigmoid`` in float32 is 0.5 + 0.5 tanh(x / 2), a few ulp from the exact value in
# absolute terms, but far from it in relative terms in the lower tail (sigmoid(-20) comes out
# near 1e-7 instead of 2e-9). The minLSTM divides f / (f + i), where two closed gates would
# then give 0.5 instead of, say, 0.99 (measured: 7e-5 off the float64 result in a 2-layer
# # test, against 4e-6 for the reference engine). So the min cells' gates use exp (Cephes'
# expf: a Cody-Waite reduction, a degree-6 polynomial, 2^n built from its bits), which
# stays within 2e-7 relative to the value and vectorises like the rest (2M sigmoids:
# 9.5 ms, against 7.7 ms for the rational one).
_F = np.float32
_LOG2E, _LN2_HI, _LN2_LO = _F(1.44269504088896341), _F(0.693359375), _F(-2.12194440e-4)
_P0, _P1, _P2 = _F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3)
_P3, _P4, _P5 = _F(4.1665795894e-2), _F(1.6666665459e-1), _F(5.0000001201e-1)
_EXP_LOW = _F(-87.0)  # exp(-|x|) only: below this e^x is denormal or 0, and sigmoid with it
_ONE_F, _ROUND = _F(1.0), _F(12582912.0)


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float32 whose bits are the int32 ``bits``: 2^n is ``(n + 127) << 23``, no table to gather from."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@njit(**JIT)
def _exp_neg_f32(x):
    """e^x for x <= 0 in float32, a few ulp relative to the value (and 0 below -87)."""
    y = max(x, _EXP_LOW)
    # round(y / ln 2) in float32 arithmetic (adding 1.5 * 2^23 drops the fraction): math.floor
    # would return an int64 and turn the rest into float64 math that does not vectorise.
    n = (y * _LOG2E + _ROUND) - _ROUND
    r = y - n * _LN2_HI - n * _LN2_LO
    p = ((((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5) * r * r + r + _ONE_F)
    return p * _float_from_bits((np.int32(n) + np.int32(127)) << np.int32(23)) if x >= _EXP_LOW else _F(0.0)


def exact_sigmoid(x):
    """The logistic function with a relative error of a few ulp in both tails (see above)."""
    return 1.0 / (1.0 + math.exp(-x))


@overload(exact_sigmoid, jit_options={"error_model": "numpy"})
def _exact_sigmoid_impl(x):
    if x == types.float32:
        def impl(x):
            e = _exp_neg_f32(-abs(x))  # in (0, 1]: no overflow; sigmoid(|x|) = 1 / (1 + e)
            return (_ONE_F if x >= 0 else e) / (_ONE_F + e)

        return impl
    return lambda x: 1.0 / (1.0 + math.exp(-x))


# -- minGRU: h = (1 - z) h_prev + z c, z = σ(x_z), c = x_h ------------------------------------


@njit(**JIT)
def min_gru_forward(gates, bias, h0, lengths, out, h_n):
    """gates (T,B,2H): x W_ih^T in, (update, candidate) out; bias (2H,). Writes out (T,B,H), h_n (B,H)."""
    steps, batch, two_h = gates.shape
    hidden = two_h // 2
    one = np.ones(1, gates.dtype)[0]
    h = h0.copy()
    for t in range(steps):
        for b in range(batch):
            g, o, h_b = gates[t, b], out[t, b], h[b]
            if t >= lengths[b]:
                g[:] = 0
                o[:] = 0
                continue
            for j in range(hidden):
                update, candidate = exact_sigmoid(g[j] + bias[j]), g[hidden + j] + bias[hidden + j]
                # cells._min_gru_parts: a = 1 - z, b = z c, h = a h_prev + b (same order, same rounding)
                h_b[j] = (one - update) * h_b[j] + update * candidate
                g[j] = update
                g[hidden + j] = candidate
                o[j] = h_b[j]
    h_n[:] = h


@njit(**JIT)
def min_gru_backward(d_out, dh_n, gates, out, h0, lengths, d_gates, d_bias, dh0):
    """BPTT for :func:`min_gru_forward`: d_gates (T,B,2H) = d xp, d_bias (2H,) its sum, and dh0."""
    steps, batch, two_h = gates.shape
    hidden = two_h // 2
    one = np.ones(1, gates.dtype)[0]
    dh = dh_n.copy()
    sums = np.zeros(two_h)  # d_bias, summed in float64 over all T * B rows
    for t in range(steps - 1, -1, -1):
        for b in range(batch):
            dg = d_gates[t, b]
            if t >= lengths[b]:  # not a step of this sequence: its state, and gradient, pass unchanged
                dg[:] = 0
                continue
            g, d_o, dh_b = gates[t, b], d_out[t, b], dh[b]
            h_prev = out[t - 1, b] if t > 0 else h0[b]
            for j in range(hidden):
                update, candidate = g[j], g[hidden + j]
                d_h = dh_b[j] + d_o[j]
                d_update = d_h * (candidate - h_prev[j]) * update * (one - update)
                d_candidate = d_h * update
                dg[j] = d_update
                dg[hidden + j] = d_candidate
                sums[j] += d_update
                sums[hidden + j] += d_candidate
                dh_b[j] = d_h * (one - update)
    dh0[:] = dh
    d_bias[:] = sums


@njit(**JIT)
def min_gru_step(x, wih_t, bias, h, xg):
    """One minGRU step for streaming, in place on h (B,H); xg (B,2H) is scratch."""
    batch, hidden = h.shape
    one = np.ones(1, h.dtype)[0]
    np.dot(x, wih_t, xg)
    for b in range(batch):
        x_g, h_b = xg[b], h[b]
        for j in range(hidden):
            update = exact_sigmoid(x_g[j] + bias[j])
            h_b[j] = (one - update) * h_b[j] + update * (x_g[hidden + j] + bias[hidden + j])


# -- minLSTM: h = f' h_prev + i' c, f' = f / (f + i), i' = i / (f + i) ------------------------


@njit(**JIT)
def min_lstm_forward(gates, bias, h0, lengths, out, h_n):
    """gates (T,B,3H): x W_ih^T in, (forget, input, candidate) out; bias (3H,) added here. Writes out, h_n."""
    steps, batch, three_h = gates.shape
    hidden = three_h // 3
    h = h0.copy()
    for t in range(steps):
        for b in range(batch):
            g, o, h_b = gates[t, b], out[t, b], h[b]
            if t >= lengths[b]:
                g[:] = 0
                o[:] = 0
                continue
            for j in range(hidden):
                forget, input = exact_sigmoid(g[j] + bias[j]), exact_sigmoid(g[hidden + j] + bias[hidden + j])
                candidate = g[2 * hidden + j] + bias[2 * hidden + j]
                total = forget + input
                # cells._min_lstm_parts: a = f', b = i' c, h = a h_prev + b
                h_b[j] = (forget / total) * h_b[j] + (input / total) * candidate
                g[j] = forget
                g[hidden + j] = input
                g[2 * hidden + j] = candidate
                o[j] = h_b[j]
    h_n[:] = h


@njit(**JIT)
def min_lstm_backward(d_out, dh_n, gates, out, h0, lengths, d_gates, d_bias, dh0):
    """BPTT for :func:`min_lstm_forward`: d_gates (T,B,3H) = d xp, d_bias (3H,) its sum, and dh0.

    With s = f + i: d f' / d f = i / s², d f' / d i = -f / s², and i' = 1 - f', so
    d f = d_h (h_prev - c) i / s² and d i = -d_h (h_prev - c) f / s².
    """
    steps, batch, three_h = gates.shape
    hidden = three_h // 3
    one = np.ones(1, gates.dtype)[0]
    dh = dh_n.copy()
    sums = np.zeros(three_h)
    for t in range(steps - 1, -1, -1):
        for b in range(batch):
            dg = d_gates[t, b]
            if t >= lengths[b]:
                dg[:] = 0
                continue
            g, d_o, dh_b = gates[t, b], d_out[t, b], dh[b]
            h_prev = out[t - 1, b] if t > 0 else h0[b]
            for j in range(hidden):
                forget, input, candidate = g[j], g[hidden + j], g[2 * hidden + j]
                inv = one / (forget + input)
                d_h = dh_b[j] + d_o[j]
                d_share = d_h * (h_prev[j] - candidate) * inv * inv  # d f' per unit of f, before i or f
                d_forget = d_share * input * forget * (one - forget)
                d_input = -d_share * forget * input * (one - input)
                d_candidate = d_h * input * inv
                dg[j] = d_forget
                dg[hidden + j] = d_input
                dg[2 * hidden + j] = d_candidate
                sums[j] += d_forget
                sums[hidden + j] += d_input
                sums[2 * hidden + j] += d_candidate
                dh_b[j] = d_h * forget * inv
    dh0[:] = dh
    d_bias[:] = sums


@njit(**JIT)
def min_lstm_step(x, wih_t, bias, h, xg):
    """One minLSTM step for streaming, in place on h (B,H); xg (B,3H) is scratch."""
    batch, hidden = h.shape
    np.dot(x, wih_t, xg)
    for b in range(batch):
        x_g, h_b = xg[b], h[b]
        for j in range(hidden):
            forget, input = exact_sigmoid(x_g[j] + bias[j]), exact_sigmoid(x_g[hidden + j] + bias[hidden + j])
            total = forget + input
            candidate = x_g[2 * hidden + j] + bias[2 * hidden + j]
            h_b[j] = (forget / total) * h_b[j] + (input / total) * candidate


# -- the products outside the loop -----------------------------------------------------------


@njit(**JIT)
def input_grads(d_xp, x, w, want_x, d_x, d_w):
    """d_w = d_xp^T @ x, and d_x = d_xp @ w when ``want_x`` (an input fed with data wants none).

    One call, so that both products run on this thread; d_bias comes from the pass over time.
    """
    np.dot(d_xp.T, x, d_w)
    if want_x:
        np.dot(d_xp, w, d_x)
