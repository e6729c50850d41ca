"""Streaming one step at a time gives what running the whole sequence at once gives."""

from __future__ import annotations

import pytest
import torch

import gated
from oracle import random_hx, tensors_of

T, B, I, H = 6, 2, 3, 5
MODULES = {
    "lstm": lambda **kw: gated.LSTM(I, H, **kw),
    "lstm_proj": lambda **kw: gated.LSTM(I, H, proj_size=2, **kw),
    "gru": lambda **kw: gated.GRU(I, H, **kw),
    "rnn_tanh": lambda **kw: gated.RNN(I, H, **kw),
    "rnn_relu": lambda **kw: gated.RNN(I, H, nonlinearity="relu", **kw),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("with_hx", [False, True], ids=["zero", "hx"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("kind", list(MODULES))
def test_stream_equals_whole_sequence(kind, batched, with_hx, dtype):
    module = MODULES[kind](num_layers=2, bias=kind != "gru", dtype=dtype).eval()
    x = torch.randn(T, B, I, dtype=dtype) if batched else torch.randn(T, I, dtype=dtype)
    hx = random_hx(module, B if batched else None) if with_hx else None
    if hx is not None:
        hx = tuple(h.to(dtype) for h in hx) if isinstance(hx, tuple) else hx.to(dtype)
    with torch.no_grad():
        want_out, want_state = module(x, hx)
    stream = module.stream(hx)
    got_out = torch.stack([stream.step(x_t) for x_t in x])
    tol = dict(rtol=1e-2, atol=1e-2) if dtype == torch.bfloat16 else dict(rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got_out, want_out, **tol)
    for got, want in zip(tensors_of(stream.state), tensors_of(want_state)):
        torch.testing.assert_close(got, want, **tol)


def test_reset_starts_over_and_state_feeds_forward():
    lstm = gated.LSTM(I, H).eval()
    x = torch.randn(T, B, I)
    stream = lstm.stream()
    first = [stream.step(x_t) for x_t in x]
    stream.reset()
    again = [stream.step(x_t) for x_t in x]
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    # The streamed state continues a sequence exactly as forward's state does.
    with torch.no_grad():
        whole, _ = lstm(torch.cat([x, x]))
        _, state = lstm(x)
        second_half, _ = lstm(x, stream.state)
    torch.testing.assert_close(second_half, whole[T:], rtol=1e-5, atol=1e-6)


def test_stream_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="bidirectional module cannot stream"):
        gated.GRU(I, H, bidirectional=True).stream()
    stream = gated.GRU(I, H).stream()
    with pytest.raises(ValueError, match=r"\(input_size,\) or \(batch, input_size\)"):
        stream.step(torch.randn(1, B, I))
    stream.step(torch.randn(B, I))
    with pytest.raises(ValueError, match="must all be batched or all unbatched"):
        stream.step(torch.randn(I))
    with pytest.raises(ValueError, match="expected steps of shape"):
        stream.step(torch.randn(B + 1, I))
