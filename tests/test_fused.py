"""The fused engine: float64 gradcheck of its hand-written backward, traces equal to the reference's."""

from __future__ import annotations

import pytest
import torch

import gated
from oracle import pack, twins

T, B, I, H, P = 4, 3, 3, 5, 2
KINDS = {
    "lstm": lambda **kw: gated.LSTM(I, H, **kw),
    "lstm_proj": lambda **kw: gated.LSTM(I, H, proj_size=P, **kw),
    "gru": lambda **kw: gated.GRU(I, H, **kw),
    "rnn_tanh": lambda **kw: gated.RNN(I, H, **kw),
    "rnn_relu": lambda **kw: gated.RNN(I, H, nonlinearity="relu", **kw),
}


def _flat(value):
    if isinstance(value, torch.nn.utils.rnn.PackedSequence):
        return [value.data]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _flat(v)]
    return [value]


@pytest.mark.parametrize("packed", [False, True], ids=["full", "packed"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_gradcheck_float64(kind, packed):
    module = KINDS[kind](num_layers=2, bidirectional=True, dtype=torch.float64, engine="fused")
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    rows = module.num_layers * 2
    hx = [torch.randn(rows, B, s, dtype=torch.float64, requires_grad=True) for s in module.state_sizes]
    names = [name for name, _ in module.named_parameters()]

    def f(x, *tensors):
        states, weights = tensors[: len(hx)], tensors[len(hx):]
        inp = pack(x, [4, 2, 3], batch_first=False) if packed else x
        args = (inp, states if len(states) == 2 else states[0])
        out = torch.func.functional_call(module, dict(zip(names, weights)), args)
        return tuple(_flat(out))

    weights = [p.detach().clone().requires_grad_() for p in module.parameters()]
    assert torch.autograd.gradcheck(f, (x, *hx, *weights), eps=1e-6, atol=1e-6, fast_mode=True)


@pytest.mark.parametrize("layout", ["batched", "packed"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_trace_equals_reference(kind, layout):
    torch.manual_seed(0)
    reference = KINDS[kind](num_layers=2, bidirectional=True, engine="reference")
    fused = KINDS[kind](num_layers=2, bidirectional=True, engine="fused")
    fused.load_state_dict(reference.state_dict())
    x = torch.randn(T, B, I)
    inp = pack(x, [4, 2, 3], batch_first=False) if layout == "packed" else x
    with torch.no_grad():
        want, got = reference.trace(inp), fused.trace(inp)
    assert got.names == want.names
    for name in want.names:
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-6)
    for g, w in zip(_flat(got.output) + _flat(got.state), _flat(want.output) + _flat(want.state)):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)


def test_trace_with_gradients_keeps_outputs_differentiable():
    # Forced fused: the outputs still train; the recorded gates are plain values.
    lstm = gated.LSTM(I, H, engine="fused")
    x = torch.randn(T, B, I, requires_grad=True)
    trace = lstm.trace(x)
    assert not trace.forget.requires_grad
    trace.output.sum().backward()
    assert x.grad is not None and lstm.weight_hh_l0.grad is not None


def test_float32_activations_are_accurate():
    # The rational tanh and the sigmoid built on it, against torch, over the range that matters.
    from gated.engines import kernels
    from numba import njit

    @njit
    def apply(values, out_tanh, out_sigmoid):
        for k in range(values.shape[0]):
            out_tanh[k] = kernels.tanh(values[k])
            out_sigmoid[k] = kernels.sigmoid(values[k])

    x = torch.linspace(-30, 30, 200_001, dtype=torch.float32)
    t, s = torch.empty_like(x), torch.empty_like(x)
    apply(x.numpy(), t.numpy(), s.numpy())
    assert (t - torch.tanh(x)).abs().max() < 1e-6
    assert (s - torch.sigmoid(x)).abs().max() < 1e-6


def test_other_dtypes_are_refused_clearly():
    lstm = gated.LSTM(I, H, engine="fused", dtype=torch.bfloat16)
    with pytest.raises(RuntimeError, match="engine='fused' cannot run here"):
        lstm(torch.randn(T, B, I, dtype=torch.bfloat16))


@pytest.mark.parametrize("kind", ["rnn_relu", "rnn_tanh", "lstm", "gru"])
def test_gradients_through_nan_match_torch(kind):
    # One NaN in the input: torch.nn's gradients are NaN in some places and finite in others;
    # the fused backward must put NaN in the same places and the same finite values elsewhere
    # (torch's relu passes the gradient of a NaN unit on: its backward zeroes only h <= 0).
    theirs, ours = twins(kind, I, H, engine="fused")
    x = torch.randn(T, B, I)
    x[1, 0, 1] = float("nan")
    grads = []
    for module in (theirs, ours):
        xi = x.clone().requires_grad_()
        out, _ = module(xi)
        out.sum().backward()
        grads.append([xi.grad, *(p.grad for p in module.parameters())])
    for want, got in zip(*grads):
        assert torch.equal(got.isnan(), want.isnan())
        finite = ~want.isnan()
        torch.testing.assert_close(got[finite], want[finite], rtol=1e-5, atol=1e-5)


@pytest.fixture
def products_on_torch(monkeypatch):
    """Every product over all steps on torch's threads (as large calls on a free machine run them),
    and no two-thread LSTM kernel, so that the single-threaded kernels' torch path is what runs."""
    from gated.engines import fused_cells, persistent_sync, threads

    monkeypatch.setattr(threads, "PRODUCT_FROM", 0)
    monkeypatch.setattr(persistent_sync, "cores_free", lambda: True)
    monkeypatch.setattr(persistent_sync, "FORCE", False)
    taken = []
    original = fused_cells._on_torch_threads
    monkeypatch.setattr(fused_cells, "_on_torch_threads", lambda work: taken.append(original(work)) or taken[-1])
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield taken
    torch.set_num_threads(threads)


@pytest.mark.parametrize("kind", [*KINDS, "peephole", "ln_lstm", "ln_gru"])
def test_gradcheck_float64_with_products_on_torchs_threads(kind, products_on_torch):
    extra = {"peephole": gated.PeepholeLSTM, "ln_lstm": gated.LayerNormLSTM, "ln_gru": gated.LayerNormGRU}
    make = KINDS.get(kind) or (lambda **kw: extra[kind](I, H, **kw))
    module = make(dtype=torch.float64, engine="fused")
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    names = [name for name, _ in module.named_parameters()]
    weights = [(torch.rand_like(p) + 0.5 if "ln_weight" in name else torch.randn_like(p) * 0.5).requires_grad_()
               for name, p in module.named_parameters()]

    def f(x, *tensors):
        return tuple(_flat(torch.func.functional_call(module, dict(zip(names, tensors)), (x,))))

    assert torch.autograd.gradcheck(f, (x, *weights), eps=1e-6, atol=1e-6, fast_mode=True)
    assert products_on_torch and all(products_on_torch)  # the products really went to torch


GRU_SETTINGS = {
    "plain": {},
    "recurrent dropout": {"recurrent_dropout": 0.3},
    "zoneout": {"zoneout": 0.2},
    "both": {"recurrent_dropout": 0.25, "zoneout": 0.3},
}


@pytest.mark.parametrize("packed", [False, True], ids=["full", "packed"])
@pytest.mark.parametrize("setting", list(GRU_SETTINGS))
def test_gru_sequences_on_two_threads_equal_reference(setting, packed, monkeypatch):
    """The GRU's loop in two ranges of sequences, one per thread: under one seed the reference engine
    draws the same masks, so outputs, states and every gradient agree (1e-5)."""
    from gated.engines import fused_cells, persistent_sync

    monkeypatch.setattr(fused_cells, "BATCH_SPLIT_FROM", 0)
    monkeypatch.setattr(persistent_sync, "cores_free", lambda: True)
    calls = []
    original = fused_cells._ranges
    monkeypatch.setattr(fused_cells, "_ranges", lambda *a: calls.append(original(*a)) or calls[-1])
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(0)
        options = GRU_SETTINGS[setting]
        reference = gated.GRU(I, H, num_layers=2, bidirectional=True, engine="reference", **options)
        fused = gated.GRU(I, H, num_layers=2, bidirectional=True, engine="fused", **options)
        fused.load_state_dict(reference.state_dict())
        x, hx = torch.randn(6, 5, I), torch.randn(4, 5, H)
        results = []
        for module in (reference, fused):
            xs, h0 = x.clone().requires_grad_(), hx.clone().requires_grad_()
            inp = pack(xs, [6, 2, 5, 1, 4], batch_first=False) if packed else xs
            torch.manual_seed(1)
            out, h_n = module(inp, h0)
            values = _flat(out) + [h_n]
            sum((v * torch.linspace(-1, 1, v.numel()).view_as(v)).sum() for v in values).backward()
            results.append([*values, xs.grad, h0.grad, *(p.grad for p in module.parameters())])
    finally:
        torch.set_num_threads(threads)
    for want, got in zip(*results):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert calls and all(len(ranges) == 2 for ranges in calls)
