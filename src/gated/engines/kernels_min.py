"""numba kernels of the min cells (``cells.min_gru_cell``, ``cells.min_lstm_cell``): one pass over time.

Their gates read the input only, so every step is ``h_t = a_t ⊙ h_(t-1) + b_t`` with
``a_t``, ``b_t`` known from ``xp = W_ih x + b_ih`` (computed before, in one product).
On a CPU a parallel scan buys nothing here: the recurrence is a few flops per element
and memory-bound, so one pass through time, vectorised over the units of each
sequence, does the least work and touches each value once; the cores share the
sequences (or units) instead, which are independent. Per step and sequence the
loop over units is plain arithmetic that LLVM vectorises (float32 through the
sigmoid below, exact in both tails, float64 through libm).

* Forward adds the bias to ``gates`` (the product ``x W_ih^T``) and overwrites it in
  place with the activated gates, in one pass: they are what backward and a trace
  need, minGRU (update, candidate), minLSTM (forget, input, candidate). The minLSTM's
  shares ``f / (f + i)`` are recomputed where needed: a division, where storing them
  would cost 2H values per step.
* Backward walks time in reverse: ``d h_(t-1) = a_t d h_t``, and through a_t, b_t to
  the pre-activations ``d xp`` (written to ``d_gates``) and sums them into ``d_bias``
  (in float64: T * B rows). It runs a chunk of steps at a time, and ``d W_ih`` grows
  by one product per chunk (:func:`input_grads`), while that chunk's ``d xp`` is still
  in cache; ``d xp`` for all steps at once is never made.
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

from .blas import matmul
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


# -- shares: a range of sequences and of units each -------------------------------------------
# The recurrence couples nothing across sequences or units, so any block of them is its own
# pass over time. A call runs sequences b_first .. b_last - 1, units lo .. hi - 1 (of each gate);
# fused_min.py hands disjoint blocks to threads (the kernels release the GIL), so the pass has
# no serial part. Time stays the outer loop: each step then reads one contiguous stretch of the
# buffers, which the prefetcher streams. The units are the innermost loop, over slices indexed
# from 0: an index running from ``lo`` might be negative as far as numba knows, and its
# wraparound check stops LLVM from vectorising (measured 4x slower).


# -- minGRU: h = (1 - z) h_prev + z c, z = σ(x_z), c = x_h ------------------------------------


@njit(**JIT)
def min_gru_forward(gates, bias, h0, lengths, out, h_n, b_first, b_last, lo, hi):
    """gates (T,B,2H): x W_ih^T in, (update, candidate) out; bias (2H,). Writes out (T,B,H), h_n (B,H).

    Only sequences b_first .. b_last - 1 and units lo .. hi - 1 (see above).
    """
    steps, hidden, units = gates.shape[0], h0.shape[1], hi - lo
    one = np.ones(1, gates.dtype)[0]
    z_bias, c_bias = bias[lo:hi], bias[hidden + lo : hidden + hi]
    state = h0[b_first:b_last, lo:hi].copy()
    for t in range(steps):
        for b in range(b_first, b_last):
            z, c, o = gates[t, b, lo:hi], gates[t, b, hidden + lo : hidden + hi], out[t, b, lo:hi]
            if t >= lengths[b]:  # past the sequence's end: outputs and gates are zero, the state stays
                z[:] = 0
                c[:] = 0
                o[:] = 0
                continue
            h = state[b - b_first]
            for j in range(units):
                update, candidate = exact_sigmoid(z[j] + z_bias[j]), c[j] + c_bias[j]
                # cells._min_gru_parts: a = 1 - z, b = z c, h = a h_prev + b (same order, same rounding)
                h[j] = (one - update) * h[j] + update * candidate
                z[j] = update
                c[j] = candidate
                o[j] = h[j]
    h_n[b_first:b_last, lo:hi] = state


@njit(**JIT)
def min_gru_backward(d_out, carry, gates, out, h0, lengths, d_gates, sums, t_first, t_last,
                     b_first, b_last, lo, hi):
    """BPTT for :func:`min_gru_forward` over steps t_first .. t_last - 1, for a block of sequences and
    units as there: d_gates (t_last - t_first, B, 2H) = d xp of those steps, sums (B,2H) += their
    float64 sum per sequence (d_bias once summed over sequences and all steps), and carry (B,H) holds d h,
    carried back in place: d h at t_last in, d h at t_first out (d h0 after the first step).

    Steps come in chunks so that d xp never exists for all of them at once (fused_min.py).

    ``d_out`` is (T or 1, B or 1, H): a gradient that is the same for every step or sequence
    (a loss that sums the output) comes as one row, not copied out to (T, B, H).
    """
    hidden, units = h0.shape[1], hi - lo
    one = np.ones(1, gates.dtype)[0]
    every_step, every_sequence = d_out.shape[0] > 1, d_out.shape[1] > 1
    carried = carry[b_first:b_last, lo:hi].copy()  # d h, carried back through time
    for t in range(t_last - 1, t_first - 1, -1):
        for b in range(b_first, b_last):
            d_z, d_c = d_gates[t - t_first, b, lo:hi], d_gates[t - t_first, b, hidden + lo : hidden + hi]
            if t >= lengths[b]:  # not a step of this sequence: its state, and gradient, pass unchanged
                d_z[:] = 0
                d_c[:] = 0
                continue
            z, c = gates[t, b, lo:hi], gates[t, b, hidden + lo : hidden + hi]
            h_prev = out[t - 1, b, lo:hi] if t > 0 else h0[b, lo:hi]
            d_o = d_out[t if every_step else 0, b if every_sequence else 0, lo:hi]
            dh, s_z, s_c = carried[b - b_first], sums[b, lo:hi], sums[b, hidden + lo : hidden + hi]
            for j in range(units):
                update, candidate = z[j], c[j]
                d_h = dh[j] + d_o[j]
                d_update = d_h * (candidate - h_prev[j]) * update * (one - update)
                d_candidate = d_h * update
                d_z[j] = d_update
                d_c[j] = d_candidate
                s_z[j] += d_update
                s_c[j] += d_candidate
                dh[j] = d_h * (one - update)
    carry[b_first:b_last, lo:hi] = carried


@njit(**JIT)
def min_gru_step(x, wih_t, bias, h, xg):
    """One minGRU step for streaming, in place on h (B,H); xg (B,2H) is scratch."""
    batch, hidden = h.shape
    one = np.ones(1, h.dtype)[0]
    matmul(x, wih_t, xg)
    for b in range(batch):
        x_g, h_b = xg[b], h[b]
        for j in range(hidden):
            update = exact_sigmoid(x_g[j] + bias[j])
            h_b[j] = (one - update) * h_b[j] + update * (x_g[hidden + j] + bias[hidden + j])


# -- minLSTM: h = f' h_prev + i' c, f' = f / (f + i), i' = i / (f + i) ------------------------


@njit(**JIT)
def min_lstm_forward(gates, bias, h0, lengths, out, h_n, b_first, b_last, lo, hi):
    """gates (T,B,3H): x W_ih^T in, (forget, input, candidate) out; bias (3H,) added here. Writes out, h_n.

    Only sequences b_first .. b_last - 1 and units lo .. hi - 1.
    """
    steps, hidden, units = gates.shape[0], h0.shape[1], hi - lo
    f_bias, i_bias = bias[lo:hi], bias[hidden + lo : hidden + hi]
    c_bias = bias[2 * hidden + lo : 2 * hidden + hi]
    state = h0[b_first:b_last, lo:hi].copy()
    for t in range(steps):
        for b in range(b_first, b_last):
            g, o = gates[t, b], out[t, b, lo:hi]
            f, i, c = g[lo:hi], g[hidden + lo : hidden + hi], g[2 * hidden + lo : 2 * hidden + hi]
            if t >= lengths[b]:
                f[:] = 0
                i[:] = 0
                c[:] = 0
                o[:] = 0
                continue
            h = state[b - b_first]
            for j in range(units):
                forget, input = exact_sigmoid(f[j] + f_bias[j]), exact_sigmoid(i[j] + i_bias[j])
                candidate = c[j] + c_bias[j]
                total = forget + input
                # cells._min_lstm_parts: a = f', b = i' c, h = a h_prev + b
                h[j] = (forget / total) * h[j] + (input / total) * candidate
                f[j] = forget
                i[j] = input
                c[j] = candidate
                o[j] = h[j]
    h_n[b_first:b_last, lo:hi] = state


@njit(**JIT)
def min_lstm_backward(d_out, carry, gates, out, h0, lengths, d_gates, sums, t_first, t_last,
                      b_first, b_last, lo, hi):
    """BPTT for :func:`min_lstm_forward`, over steps and blocks as :func:`min_gru_backward`: d_gates
    (t_last - t_first, B, 3H), sums (B,3H), carry (B,H).

    With s = f + i: d f' / d f = i / s², d f' / d i = -f / s², and i' = 1 - f', so
    d f = d_h (h_prev - c) i / s² and d i = -d_h (h_prev - c) f / s². ``d_out`` as in minGRU's.
    """
    hidden, units = h0.shape[1], hi - lo
    one = np.ones(1, gates.dtype)[0]
    every_step, every_sequence = d_out.shape[0] > 1, d_out.shape[1] > 1
    second, third = hidden + lo, 2 * hidden + lo  # where the input gate's and the candidate's units start
    carried = carry[b_first:b_last, lo:hi].copy()
    for t in range(t_last - 1, t_first - 1, -1):
        for b in range(b_first, b_last):
            dg = d_gates[t - t_first, b]
            d_f, d_i, d_c = dg[lo:hi], dg[second : second + units], dg[third : third + units]
            if t >= lengths[b]:
                d_f[:] = 0
                d_i[:] = 0
                d_c[:] = 0
                continue
            g = gates[t, b]
            f, i, c = g[lo:hi], g[second : second + units], g[third : third + units]
            h_prev = out[t - 1, b, lo:hi] if t > 0 else h0[b, lo:hi]
            d_o = d_out[t if every_step else 0, b if every_sequence else 0, lo:hi]
            dh = carried[b - b_first]
            s_f, s_i, s_c = sums[b, lo:hi], sums[b, second : second + units], sums[b, third : third + units]
            for j in range(units):
                forget, input, candidate = f[j], i[j], c[j]
                inv = one / (forget + input)
                d_h = dh[j] + d_o[j]
                d_share = d_h * (h_prev[j] - candidate) * inv * inv  # d f' per unit of f, before i or f
                d_forget = d_share * input * forget * (one - forget)
                d_input = -d_share * forget * input * (one - input)
                d_candidate = d_h * input * inv
                d_f[j] = d_forget
                d_i[j] = d_input
                d_c[j] = d_candidate
                s_f[j] += d_forget
                s_i[j] += d_input
                s_c[j] += d_candidate
                dh[j] = d_h * forget * inv
    carry[b_first:b_last, lo:hi] = carried


@njit(**JIT)
def min_lstm_step(x, wih_t, bias, h, xg):
    """One minLSTM step for streaming, in place on h (B,H); xg (B,3H) is scratch."""
    batch, hidden = h.shape
    matmul(x, wih_t, xg)
    for b in range(batch):
        x_g, h_b = xg[b], h[b]
        for j in range(hidden):
            forget, input = exact_sigmoid(x_g[j] + bias[j]), exact_sigmoid(x_g[hidden + j] + bias[hidden + j])
            total = forget + input
            candidate = x_g[2 * hidden + j] + bias[2 * hidden + j]
            h_b[j] = (forget / total) * h_b[j] + (input / total) * candidate


# -- the products outside the loop -----------------------------------------------------------


@njit(**JIT)
def input_grads(d_xp, x, w, want_x, d_x, d_w, scratch):
    """d_w += d_xp^T @ x (through ``scratch``, d_w's shape), and d_x = d_xp @ w when ``want_x`` (an
    input fed with data wants none), for one chunk of steps.

    One call, so that both products run on this thread; d_bias comes from the pass over time.
    """
    matmul(d_xp.T, x, scratch)
    d_w += scratch
    if want_x:
        matmul(d_xp, w, d_x)
