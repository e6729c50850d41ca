"""Recurrent dropout and zoneout in the fused kernels: the same numbers as the reference engine.

Both engines draw their masks with one function (``reference.draw_masks``) in the same order, so
under the same ``torch.manual_seed`` the fused engine must reproduce the reference engine exactly
(1e-5 in float32) in training too: outputs, states, every gradient, and the masks a trace shows.
"""

from __future__ import annotations

import pytest
import torch

import gated
from gated.engines import choose, fused
from oracle import pack

T, B, I, H, P = 5, 3, 4, 6, 3
F64 = torch.float64
LENGTHS = [5, 2, 4]
CELLS = {
    "lstm": lambda **kw: gated.LSTM(I, H, **kw),
    "lstm_proj": lambda **kw: gated.LSTM(I, H, proj_size=P, **kw),
    "gru": lambda **kw: gated.GRU(I, H, **kw),
    "rnn_tanh": lambda **kw: gated.RNN(I, H, **kw),
    "rnn_relu": lambda **kw: gated.RNN(I, H, nonlinearity="relu", **kw),
}


def _settings(kind: str, which: str) -> dict:
    zoneout = (0.3, 0.2) if kind.startswith("lstm") else 0.25  # (p_cell, p_hidden), or p_hidden alone
    return {
        "dropout": dict(recurrent_dropout=0.4),
        "zoneout": dict(zoneout=zoneout),
        "both": dict(recurrent_dropout=0.4, zoneout=zoneout),
    }[which]


def _twins(kind: str, which: str, dtype=torch.float32, **options):
    """The same module on the reference and the fused engine, with the same weights."""
    torch.manual_seed(0)
    reference = CELLS[kind](engine="reference", dtype=dtype, **_settings(kind, which), **options)
    twin = CELLS[kind](engine="fused", dtype=dtype, **_settings(kind, which), **options)
    twin.load_state_dict(reference.state_dict())
    return reference, twin


def _flat(value):
    if isinstance(value, torch.nn.utils.rnn.PackedSequence):
        return [value.data]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _flat(v)]
    return [value]


def _run(module, x, hx, packed: bool, batch_first: bool):
    """Outputs, states and the gradients of the input, hx and every weight, under seed 7."""
    module.zero_grad()
    x = x.detach().clone().requires_grad_(True)
    hx = [h.detach().clone().requires_grad_(True) for h in hx]
    inp = pack(x, LENGTHS, batch_first=batch_first) if packed else x
    torch.manual_seed(7)
    out = _flat(module(inp, tuple(hx) if len(hx) == 2 else hx[0]))
    # A loss that weighs every entry differently, so no gradient cancels out.
    loss = sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o)).sum() for o in out)
    loss.backward()
    return [*out, x.grad, *(h.grad for h in hx), *(p.grad for p in module.parameters())]


@pytest.mark.parametrize("layout", ["plain", "packed", "batch_first", "packed_batch_first"])
@pytest.mark.parametrize("which", ["dropout", "zoneout", "both"])
@pytest.mark.parametrize("kind", list(CELLS))
def test_training_equals_the_reference_under_the_same_seed(kind, which, layout):
    batch_first = "batch_first" in layout
    reference, twin = _twins(kind, which, num_layers=2, bidirectional=True, batch_first=batch_first)
    reference.train(), twin.train()
    x = torch.randn((B, T, I) if batch_first else (T, B, I))
    hx = [torch.randn(4, B, size) for size in reference.state_sizes]
    want = _run(reference, x, hx, "packed" in layout, batch_first)
    got = _run(twin, x, hx, "packed" in layout, batch_first)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g is not None and w is not None
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("which", ["zoneout", "both"])
@pytest.mark.parametrize("kind", list(CELLS))
def test_eval_with_zoneout_is_its_expectation_as_in_the_reference(kind, which):
    reference, twin = _twins(kind, which, num_layers=2, bidirectional=True)
    reference.eval(), twin.eval()
    x = torch.randn(T, B, I)
    hx = [torch.randn(4, B, size) for size in reference.state_sizes]
    for packed in (False, True):
        want = _run(reference, x, hx, packed, False)
        got = _run(twin, x, hx, packed, False)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def test_the_masks_do_change_the_result():
    """Guards against a kernel that ignores them: without the masks, the output is another one."""
    _, twin = _twins("lstm", "both")
    x = torch.randn(T, B, I)
    torch.manual_seed(7)
    regularized = twin.train()(x)[0]
    plain = gated.LSTM(I, H, engine="fused")
    plain.load_state_dict(twin.state_dict())
    assert not torch.allclose(regularized, plain(x)[0])


@pytest.mark.parametrize("layout", ["batched", "packed"])
@pytest.mark.parametrize("kind", list(CELLS))
def test_the_fused_trace_shows_the_reference_masks_and_values(kind, layout):
    reference, twin = _twins(kind, "both", num_layers=2, bidirectional=True)
    x = torch.randn(T, B, I)
    inp = pack(x, LENGTHS, batch_first=False) if layout == "packed" else x
    traces = []
    for module in (reference, twin):
        torch.manual_seed(3)
        with torch.no_grad():
            traces.append(module.train().trace(inp))
    want, got = traces
    assert got.names == want.names
    assert {"recurrent_mask", "zoneout_hidden"} <= set(got.names)
    if kind.startswith("lstm"):
        assert "zoneout_cell" in got.names
    for name in want.names:
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=1e-5)
    for name in ("recurrent_mask", "zoneout_hidden"):
        assert torch.equal(got[name], want[name])  # the very same draws


def _gradcheck_function(module, packed: bool):
    names = [name for name, _ in module.named_parameters()]

    def f(x, *tensors):
        states, weights = tensors[: len(module.state_sizes)], tensors[len(module.state_sizes):]
        torch.manual_seed(11)  # the same masks at every evaluation gradcheck makes
        inp = pack(x, LENGTHS, batch_first=False) if packed else x
        args = (inp, states if len(states) == 2 else states[0])
        return tuple(_flat(torch.func.functional_call(module, dict(zip(names, weights)), args)))

    return f


def _gradcheck_inputs(module):
    x = torch.randn(T, B, I, dtype=F64, requires_grad=True)
    rows = module.num_layers * 2
    hx = [torch.randn(rows, B, s, dtype=F64, requires_grad=True) for s in module.state_sizes]
    weights = [p.detach().clone().requires_grad_() for p in module.parameters()]
    return (x, *hx, *weights)


@pytest.mark.parametrize("packed", [False, True], ids=["full", "packed"])
@pytest.mark.parametrize("kind", list(CELLS))
def test_gradcheck_float64(kind, packed):
    _, module = _twins(kind, "both", dtype=F64, num_layers=2, bidirectional=True)
    module.train()
    assert torch.autograd.gradcheck(_gradcheck_function(module, packed), _gradcheck_inputs(module),
                                    eps=1e-6, atol=1e-6, fast_mode=True)


@pytest.mark.parametrize("kind", ["lstm", "lstm_proj", "gru", "rnn_tanh"])
def test_gradgradcheck_float64_replays_the_same_masks(kind):
    _, module = _twins(kind, "both", dtype=F64, num_layers=1, bidirectional=True)
    module.train()
    assert torch.autograd.gradgradcheck(_gradcheck_function(module, True), _gradcheck_inputs(module),
                                        eps=1e-6, atol=1e-5, fast_mode=True)


def test_second_derivatives_equal_the_reference_engines():
    """create_graph=True replays through the reference cells: with the masks the kernels used."""
    reference, twin = _twins("lstm", "both", dtype=F64)
    x = torch.randn(T, B, I, dtype=F64)
    penalties = []
    for module in (reference, twin):
        xx = x.clone().requires_grad_(True)
        torch.manual_seed(5)
        out = module.train()(xx)[0]
        (d_x,) = torch.autograd.grad(out.pow(2).sum(), xx, create_graph=True)
        d_x.pow(2).sum().backward()
        penalties.append([d_x, *(p.grad for p in module.parameters())])
        module.zero_grad()
    for g, w in zip(*penalties):
        torch.testing.assert_close(g, w)


# -- which engine runs them --------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["dropout", "zoneout", "both"])
@pytest.mark.parametrize("kind", list(CELLS))
def test_auto_picks_fused_for_small_regularized_calls_and_the_reference_loop_for_big_ones(kind, which, two_threads):
    """Native cannot run them, so fused races the reference loop, which wins at big sizes (its own threads)."""
    cls, options = {
        "lstm": (gated.LSTM, {}), "lstm_proj": (gated.LSTM, dict(proj_size=P)), "gru": (gated.GRU, {}),
        "rnn_tanh": (gated.RNN, {}), "rnn_relu": (gated.RNN, dict(nonlinearity="relu")),
    }[kind]
    small = torch.randn(100, 1, 64)  # shape a: where the issue measures its 5x
    big = torch.randn(10, 1024, 64)  # past every size measured (engines/__init__.py)
    module = cls(64, 128, **options, **_settings(kind, which)).train()
    assert choose(module.spec(), small) == "fused"
    assert choose(module.spec(), big) == "reference"
    with torch.no_grad():
        assert choose(module.spec(), small) == "fused"
        assert choose(module.spec(), big) == "reference"
    assert choose(cls(64, 128, **options).train().spec(), big) == "native"  # without them: torch's kernel


def test_auto_traces_with_gradients_on_the_reference_and_without_on_fused():
    lstm = gated.LSTM(I, H, recurrent_dropout=0.3).train()
    x = torch.randn(T, B, I)
    assert choose(lstm.spec(), x, record=True) == "reference"  # weights want gradients: a differentiable trace
    with torch.no_grad():
        assert choose(lstm.spec(), x, record=True) == "fused"


@pytest.mark.parametrize("cls", [gated.PeepholeLSTM, gated.LayerNormLSTM, gated.LayerNormGRU])
@pytest.mark.parametrize("options", [dict(recurrent_dropout=0.3), dict(zoneout=0.2)])
def test_auto_picks_the_reference_for_cells_whose_kernels_lack_them(cls, options):
    module = cls(I, H, **options).train()
    x = torch.randn(T, B, I)
    assert choose(module.spec(), x) == "reference"
    assert fused.supports(module.spec(), x) == module.spec().regularization
    with pytest.raises(RuntimeError, match="engine='fused' cannot run here"):
        cls(I, H, engine="fused", **options).train()(x)


@pytest.mark.parametrize("options, training", [
    (dict(recurrent_dropout=0.3), True), (dict(zoneout=(0.2, 0.1)), True), (dict(zoneout=(0.2, 0.1)), False),
])
def test_native_still_refuses_with_the_reason(options, training):
    lstm = gated.LSTM(I, H, engine="native", **options).train(training)
    word = "recurrent dropout" if "recurrent_dropout" in options else "zoneout"
    with pytest.raises(RuntimeError, match=f"engine='native' cannot run here: {word}"):
        lstm(torch.randn(T, B, I))
    assert gated.LSTM(I, H, engine="fused", **options).train(training)(torch.randn(T, B, I))[0].shape == (T, B, H)


def test_an_empty_batch_still_runs():
    lstm = gated.LSTM(I, H, engine="fused", recurrent_dropout=0.3, zoneout=(0.1, 0.1)).train()
    out, (h, c) = lstm(torch.randn(T, 0, I))
    assert out.shape == (T, 0, H) and h.shape == (1, 0, H)
