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



def _sgd_step(module):
    optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
    module(torch.randn(T, B, I))[0].sum().backward()
    optimizer.step()


CHANGES = {
    "load_state_dict": lambda module, other: module.load_state_dict(other.state_dict()),
    "double": lambda module, other: module.double(),
    "optimizer_step": lambda module, other: _sgd_step(module),
}


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_relu"])
def test_stream_follows_changed_weights(kind, change):
    module = MODULES[kind](num_layers=2).eval()
    x = torch.randn(2 * T, B, I)
    stream = module.stream()
    for x_t in x[:T]:
        stream.step(x_t)
    middle = stream.state
    CHANGES[change](module, MODULES[kind](num_layers=2))
    x, dtype = x.to(module.weight_ih_l0.dtype), module.weight_ih_l0.dtype
    got = torch.stack([stream.step(x_t) for x_t in x[T:]])
    # The module as it is now, continued from the state the stream had reached.
    middle = tuple(s.to(dtype) for s in middle) if isinstance(middle, tuple) else middle.to(dtype)
    with torch.no_grad():
        want, want_state = module(x[T:], middle)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for g, w in zip(tensors_of(stream.state), tensors_of(want_state)):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.float64], ids=str)
def test_stream_refuses_other_dtypes_like_torch_nn(dtype):
    module = gated.LSTM(I, H).eval()
    x = torch.ones(B, I, dtype=dtype)
    with pytest.raises(ValueError) as theirs:
        torch.nn.LSTM(I, H)(x.unsqueeze(0))
    stream = module.stream()
    with pytest.raises(type(theirs.value), match=r"input dtype \(" + str(dtype) + r"\) does not match"):
        stream.step(x)
    stream.step(torch.ones(B, I))  # a float32 step after it still works
    with pytest.raises(ValueError, match="does not match weight dtype"):
        stream.step(x)  # and the hot path, now set up, refuses it too


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("make", [lambda: gated.GRU(I, H, batch_first=True, zoneout=0.1),
                                  lambda: gated.LayerNormLSTM(I, H, batch_first=True)], ids=["zoneout", "ln"])
def test_batch_first_stream_without_kernels_equals_whole_sequence(make, batched):
    # These modules stream one module call per step (no stream kernel); a batch of steps must be
    # laid out as the module reads it, (B, 1, I) when batch_first.
    module = make().eval()
    x = torch.randn(B, T, I) if batched else torch.randn(T, I)
    with torch.no_grad():
        want_out, want_state = module(x)
    stream = module.stream()
    steps = x.unbind(1) if batched else x.unbind(0)
    got_out = torch.stack([stream.step(x_t) for x_t in steps], dim=1 if batched else 0)
    torch.testing.assert_close(got_out, want_out, rtol=1e-5, atol=1e-6)
    for got, want in zip(tensors_of(stream.state), tensors_of(want_state)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
