"""PeepholeLSTM's fused kernels (``engines/fused_peephole.py``) against the reference engine.

Same weights in both, peepholes drawn large enough to matter (they start small), and a loss
that weighs every output differently, so every entry of every gradient is checked: the
input's, the start state's and each weight's, the three peepholes included.
"""

from __future__ import annotations

import pytest
import torch

import gated
from gated import engines
from oracle import pack, tensors_of, weighted_sum

T, I, H = 5, 3, 4
PEEPHOLES = ("weight_ci", "weight_cf", "weight_co")
LENGTHS = {1: [5], 3: [5, 2, 4]}  # batch -> lengths of its packed sequences

OPTIONS = {
    "plain": dict(),
    "2-layer": dict(num_layers=2),
    "bidirectional": dict(bidirectional=True),
    "2-layer-bidirectional": dict(num_layers=2, bidirectional=True),
    "batch-first": dict(batch_first=True),
    "no-bias": dict(bias=False, num_layers=2),
}


def _twins(dtype=torch.float32, **options):
    """(reference, fused) PeepholeLSTMs holding the same weights."""
    reference = gated.PeepholeLSTM(I, H, dtype=dtype, engine="reference", **options)
    with torch.no_grad():  # they start like every weight, near 0; open them so their paths count
        for name, p in reference.named_parameters():
            if name.startswith(PEEPHOLES):
                p.uniform_(-1.5, 1.5)
    fused = gated.PeepholeLSTM(I, H, dtype=dtype, engine="fused", **options)
    fused.load_state_dict(reference.state_dict())
    return reference, fused


def _input(module, batch: int, packed: bool, dtype=torch.float32):
    shape = (batch, T, I) if module.batch_first else (T, batch, I)
    x = torch.randn(shape, dtype=dtype)
    return x, (lambda x: pack(x, LENGTHS[batch], module.batch_first)) if packed else (lambda x: x)


def _start(module, batch: int, dtype=torch.float32):
    rows = module.num_layers * module.num_directions
    return torch.randn(rows, batch, H, dtype=dtype), torch.randn(rows, batch, H, dtype=dtype)


def _run_with_gradients(module, x, wrap, hx):
    """Outputs, final states and the gradients of input, h0, c0 and every weight, by name."""
    x = x.clone().requires_grad_()
    hx = tuple(s.clone().requires_grad_() for s in hx)
    module.zero_grad()
    out, (h_n, c_n) = module(wrap(x), hx)
    values = tensors_of(out) + [h_n, c_n]
    weighted_sum(values).backward()
    grads = {"input": x.grad, "h0": hx[0].grad, "c0": hx[1].grad}
    grads |= {name: p.grad for name, p in module.named_parameters()}
    return values, grads


@pytest.mark.parametrize("packed", [False, True], ids=["full", "packed"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("options", list(OPTIONS))
def test_fused_equals_reference_with_gradients(options, batch, packed):
    reference, fused = _twins(**OPTIONS[options])
    x, wrap = _input(reference, batch, packed)
    hx = _start(reference, batch)
    want_values, want_grads = _run_with_gradients(reference, x, wrap, hx)
    got_values, got_grads = _run_with_gradients(fused, x, wrap, hx)
    for got, want in zip(got_values, want_values):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    peepholes = [name for name in want_grads if name.startswith(PEEPHOLES)]
    assert len(peepholes) == 3 * fused.num_layers * fused.num_directions
    assert got_grads.keys() == want_grads.keys()
    for name, want in want_grads.items():
        assert want is not None and want.abs().sum() > 0, name  # every path is exercised
        torch.testing.assert_close(got_grads[name], want, rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("packed", [False, True], ids=["full", "packed"])
def test_inference_without_gradients_equals_reference(packed):
    # No gradient and no trace: the kernel keeps one reused slice of gates instead of a history.
    reference, fused = _twins(num_layers=2, bidirectional=True)
    x, wrap = _input(reference, 3, packed)
    with torch.no_grad():
        want, got = reference(wrap(x)), fused(wrap(x))
    for g, w in zip(tensors_of(got), tensors_of(want)):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


def test_float64_equals_reference():
    reference, fused = _twins(torch.float64, num_layers=2, bidirectional=True)
    x, wrap = _input(reference, 3, True, torch.float64)
    hx = _start(reference, 3, torch.float64)
    want_values, want_grads = _run_with_gradients(reference, x, wrap, hx)
    got_values, got_grads = _run_with_gradients(fused, x, wrap, hx)
    for got, want in zip(got_values + list(got_grads.values()), want_values + list(want_grads.values())):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("packed", [False, True], ids=["full", "packed"])
def test_gradcheck_and_gradgradcheck_float64(packed):
    # gradcheck checks the hand-written backward; gradgradcheck the replayed one
    # (create_graph=True runs the direction again through the reference cells).
    _, module = _twins(torch.float64, bidirectional=True)
    x = torch.randn(3, 2, I, dtype=torch.float64, requires_grad=True)
    hx = [s.requires_grad_() for s in _start(module, 2, torch.float64)]
    names = [name for name, _ in module.named_parameters()]

    def f(x, h0, c0, *weights):
        inp = pack(x, [3, 2], batch_first=False) if packed else x
        out = torch.func.functional_call(module, dict(zip(names, weights)), (inp, (h0, c0)))
        return tuple(tensors_of(out))

    weights = [p.detach().clone().requires_grad_() for p in module.parameters()]
    inputs = (x, *hx, *weights)
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)
    assert torch.autograd.gradgradcheck(f, inputs, eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("layout", ["batched", "packed"])
def test_trace_equals_reference(layout):
    reference, fused = _twins(num_layers=2, bidirectional=True)
    x, wrap = _input(reference, 3, layout == "packed")
    with torch.no_grad():
        want, got = reference.trace(wrap(x)), fused.trace(wrap(x))
    assert got.names == want.names == ("input", "forget", "candidate", "output", "cell", "hidden")
    for name in want.names:
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-6, msg=name)
    for g, w in zip(tensors_of(got.output) + tensors_of(got.state), tensors_of(want.output) + tensors_of(want.state)):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stream_step_by_step_equals_the_whole_sequence(dtype):
    _, module = _twins(dtype, num_layers=2)
    module.eval()
    x = torch.randn(T, 3, I, dtype=dtype)
    hx = _start(module, 3, dtype)
    stream = module.stream(hx)
    steps = torch.stack([stream.step(x_t) for x_t in x])
    assert stream._fast  # the kernels' stream_step ran, not the module one step at a time
    want, (h_n, c_n) = module(x, hx)
    torch.testing.assert_close(steps, want, rtol=1e-5, atol=1e-6)
    for g, w in zip(stream.state, (h_n, c_n)):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)
    unbatched = module.stream()  # one sequence, no batch dimension
    steps = torch.stack([unbatched.step(x_t) for x_t in x[:, 0]])
    torch.testing.assert_close(steps, module(x[:, :1])[0][:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch, hidden, engine", [(1, 4, "fused"), (64, 256, "fused"), (256, 256, "reference")])
@pytest.mark.parametrize("grad", [False, True], ids=["inference", "training"])
def test_auto_picks_fused_on_the_cpu_up_to_its_bound(batch, hidden, engine, grad, two_threads):
    # torch has no peephole LSTM, so the choice is fused or the reference loop: fused won at every
    # size measured, and past the largest the loop (its products on torch's threads) takes over.
    module = gated.PeepholeLSTM(I, hidden).requires_grad_(grad)
    x = torch.randn(T, batch, I)
    state = torch.zeros(1, batch, hidden), torch.zeros(1, batch, hidden)
    assert engines.choose(module.spec(), x, state) == engine
    with torch.no_grad():  # a trace without gradients records from the kernel's buffers too
        assert engines.choose(module.spec(), x, state, record=True) == "fused"
    _, fused = _twins()
    auto = gated.PeepholeLSTM(I, H, engine="auto")
    auto.load_state_dict(fused.state_dict())
    x = torch.randn(T, 2, I)
    torch.testing.assert_close(auto(x)[0], fused(x)[0], rtol=0, atol=0)  # bit for bit: the same kernel
