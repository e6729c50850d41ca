"""The fused MinGRU and MinLSTM (``engines/fused_min.py``) against the reference engine's parallel scan.

The reference engine runs the scan of ``engines/scan.py``, itself checked against the
step-by-step cells in ``test_min_rnn.py``; here the fused kernels must give the same
outputs, states, gradients, traces and streams, and second derivatives through autograd.
"""

from __future__ import annotations

import pytest
import torch
from oracle import pack, weighted_sum
from torch.nn.utils.rnn import pad_packed_sequence

import gated
from gated.engines import choose

MODULES = {"min-gru": gated.MinGRU, "min-lstm": gated.MinLSTM}
I, H = 3, 5


def _pair(name, dtype=torch.float32, spread=1.5, **options):
    """(reference, fused) modules with the same weights; ``spread`` widens them: gates near 0 and 1 too."""
    reference = MODULES[name](I, H, engine="reference", dtype=dtype, **options)
    with torch.no_grad():
        for p in reference.parameters():
            p.uniform_(-spread, spread)
    fused = MODULES[name](I, H, engine="fused", dtype=dtype, **options)
    fused.load_state_dict(reference.state_dict())
    return reference, fused


def _hx(module, batch, dtype=torch.float32):
    rows = module.num_layers * (2 if module.bidirectional else 1)
    return torch.randn(rows, batch, H, dtype=dtype)


def _outputs_and_gradients(module, x, hx, lengths):
    """Output, final state, and the gradients of a loss weighing every value differently."""
    x, hx = x.clone().requires_grad_(), hx.clone().requires_grad_()
    inp = pack(x, lengths, module.batch_first) if lengths else x
    out, h_n = module(inp, hx)
    if lengths:
        out = pad_packed_sequence(out, batch_first=module.batch_first)[0]
    weights = list(module.parameters())
    grads = torch.autograd.grad(weighted_sum([out, h_n]), [x, hx, *weights])
    return [out, h_n, *grads]


OPTIONS = {
    "plain": {},
    "two-layers": {"num_layers": 2},
    "bidirectional": {"bidirectional": True},
    "two-layers-bidirectional": {"num_layers": 2, "bidirectional": True},
    "batch-first": {"batch_first": True, "num_layers": 2},
    "no-bias": {"bias": False, "bidirectional": True},
}


@pytest.mark.parametrize("packed", [False, True], ids=["full", "packed"])
@pytest.mark.parametrize("options", list(OPTIONS))
@pytest.mark.parametrize("name", MODULES)
def test_fused_equals_reference(name, options, packed):
    reference, fused = _pair(name, **OPTIONS[options])
    steps, batch = 9, 4
    x = torch.randn(batch, steps, I) if reference.batch_first else torch.randn(steps, batch, I)
    hx, lengths = _hx(reference, batch), ([9, 3, 1, 6] if packed else None)
    want = _outputs_and_gradients(reference, x, hx, lengths)
    got = _outputs_and_gradients(fused, x, hx, lengths)
    names = ["output", "state", "d input", "d hx", *[n for n, _ in fused.named_parameters()]]
    for what, g, w in zip(names, got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5, msg=lambda m, what=what: f"{what}: {m}")


@pytest.mark.parametrize("name", MODULES)
def test_one_step_and_float64(name):
    for dtype, steps in ((torch.float32, 1), (torch.float64, 1), (torch.float64, 12)):
        reference, fused = _pair(name, dtype=dtype, num_layers=2, bidirectional=True)
        x, hx = torch.randn(steps, 3, I, dtype=dtype), _hx(reference, 3, dtype)
        want = _outputs_and_gradients(reference, x, hx, None)
        for g, w in zip(_outputs_and_gradients(fused, x, hx, None), want):
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", MODULES)
def test_an_input_without_gradient_still_trains_every_weight(name):
    # The first layer then skips d x (one product of three): the weights' gradients must not change.
    reference, fused = _pair(name, num_layers=2)
    x = torch.randn(8, 2, I)
    grads = []
    for module in (reference, fused):
        out, h_n = module(x)
        grads.append(torch.autograd.grad(weighted_sum([out, h_n]), list(module.parameters())))
    for g, w in zip(*grads):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", MODULES)
def test_long_sequences_forward(name):
    # 4096 steps: the scan and the single pass add the same numbers in another order.
    reference, fused = _pair(name, spread=1.0)
    x, hx = torch.randn(4096, 2, I), _hx(reference, 2)
    with torch.no_grad():
        want, got = reference(x, hx), fused(x, hx)
    torch.testing.assert_close(got[0], want[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(got[1], want[1], rtol=0, atol=1e-5)


@pytest.mark.parametrize("packed", [False, True], ids=["full", "packed"])
@pytest.mark.parametrize("name", MODULES)
def test_gradcheck_and_gradgradcheck_float64(name, packed):
    # gradgradcheck differentiates the backward: fused.py replays it through the reference cells.
    module = MODULES[name](2, 3, num_layers=2, bidirectional=True, dtype=torch.float64, engine="fused")
    names = [n for n, _ in module.named_parameters()]
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    hx = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)

    def run(x, hx, *weights):
        inp = pack(x, [4, 2], batch_first=False) if packed else x
        out, h_n = torch.func.functional_call(module, dict(zip(names, weights)), (inp, hx))
        return (out.data if packed else out), h_n

    inputs = (x, hx, *[p.detach().clone().requires_grad_() for p in module.parameters()])
    assert torch.autograd.gradcheck(run, inputs)
    assert torch.autograd.gradgradcheck(run, inputs)


@pytest.mark.parametrize("layout", ["batched", "packed"])
@pytest.mark.parametrize("name", MODULES)
def test_trace_equals_reference(name, layout):
    reference, fused = _pair(name, num_layers=2, bidirectional=True)
    x = torch.randn(6, 3, I)
    inp = pack(x, [6, 2, 4], batch_first=False) if layout == "packed" else x
    with torch.no_grad():
        want, got = reference.trace(inp), fused.trace(inp)
    assert got.names == want.names
    for name_ in want.names:
        torch.testing.assert_close(got[name_], want[name_], rtol=1e-5, atol=1e-6,
                                   msg=lambda m, name_=name_: f"{name_}: {m}")
    torch.testing.assert_close(got.state, want.state, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", MODULES)
def test_stream_equals_whole_sequence(name, dtype):
    module = _pair(name, dtype=dtype, num_layers=2)[1].eval()
    x, hx = torch.randn(7, 3, I, dtype=dtype), _hx(module, 3, dtype)
    with torch.no_grad():
        want, h_n = module(x, hx)
    stream = module.stream(hx)
    got = torch.stack([stream.step(x_t) for x_t in x])
    assert stream._fast  # the kernels' stream step, not the module one step at a time
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(stream.state, h_n, rtol=1e-5, atol=1e-5)
    unbatched = module.stream(hx[:, 0])
    got = torch.stack([unbatched.step(x_t[0]) for x_t in x])
    torch.testing.assert_close(got, want[:, 0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", MODULES)
def test_auto_runs_fused_on_the_cpu(name):
    # No torch op for these cells: auto takes the fused kernels for training and inference at any size;
    # only a trace that must be differentiated goes to the reference engine's scan.
    module = MODULES[name](128, 256)
    spec, x = module.spec(), torch.randn(3, 32, 128)
    assert choose(spec, x) == "fused"
    with torch.no_grad():
        assert choose(spec, x) == "fused"
        assert choose(spec, x, record=True) == "fused"
    assert choose(spec, x, record=True) == "reference"
    out, _ = module(x)  # and it runs, forward and backward
    out.sum().backward()
    assert module.weight_ih_l0.grad is not None


def test_min_lstm_shares_with_both_gates_closed():
    # Gates of sigmoid(-20) and sigmoid(-24): the share is e^-20 / (e^-20 + e^-24) ≈ 0.982, which
    # a sigmoid accurate only to 1e-7 absolute would make about 0.5.
    reference, fused = _pair("min-lstm")
    with torch.no_grad():
        for module in (reference, fused):
            module.weight_ih_l0.zero_()
            module.bias_ih_l0.copy_(torch.tensor([-20.0] * H + [-24.0] * H + [1.0] * H))
    x = torch.randn(3, 2, I)
    with torch.no_grad():
        want, got = reference.trace(x), fused.trace(x)
    torch.testing.assert_close(got.forget_share, want.forget_share, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.forget, want.forget, rtol=1e-5, atol=0)
    torch.testing.assert_close(got.output, want.output, rtol=1e-5, atol=1e-6)


@pytest.fixture
def split_everything(monkeypatch):
    """Two threads for every pass and torch's products for every size, backward in chunks of 3 steps:
    the paths a long training batch takes, at sizes the reference engine checks in a moment."""
    from gated.engines import fused_min, persistent_sync

    monkeypatch.setattr(fused_min, "PARALLEL_SCAN_FROM", 0)
    monkeypatch.setattr(fused_min, "TORCH_PRODUCT_FROM", 0)
    monkeypatch.setattr(persistent_sync, "cores_free", lambda: True)  # split even on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield lambda batch, rows: monkeypatch.setattr(fused_min, "CHUNK_VALUES", 3 * batch * rows)
    torch.set_num_threads(threads)


@pytest.mark.parametrize("batch", [4, 1], ids=["split-sequences", "split-units"])
@pytest.mark.parametrize("packed", [False, True], ids=["full", "packed"])
@pytest.mark.parametrize("name", MODULES)
def test_threads_and_chunks_equal_reference(name, packed, batch, split_everything):
    reference, fused = _pair(name, num_layers=2, bidirectional=True)
    split_everything(batch, (2 if name == "min-gru" else 3) * H)
    steps = 10  # chunks of 3, 3, 3 and 1 steps
    x, hx = torch.randn(steps, batch, I), _hx(reference, batch)
    lengths = ([10, 4, 1, 7][:batch] if batch > 1 else [10]) if packed else None
    want = _outputs_and_gradients(reference, x, hx, lengths)
    got = _outputs_and_gradients(fused, x, hx, lengths)
    names = ["output", "state", "d input", "d hx", *[n for n, _ in fused.named_parameters()]]
    for what, g, w in zip(names, got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5, msg=lambda m, what=what: f"{what}: {m}")


LOSSES = {
    "sum": lambda out: out.sum(),  # one value broadcast over every step and sequence
    "per-step": lambda out: (out.sum(1) * torch.linspace(-1, 1, out[:, 0].numel()).view_as(out[:, 0])).sum(),
    "per-sequence": lambda out: (out.sum(0) * torch.linspace(-1, 1, out[0].numel()).view_as(out[0])).sum(),
}


@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("name", MODULES)
def test_a_broadcast_output_gradient_equals_reference(name, loss):
    # out.sum() hands backward a gradient of stride 0, which the kernels read as one row, not copied out.
    reference, fused = _pair(name)
    x = torch.randn(7, 3, I)
    grads = []
    for module in (reference, fused):
        out, _ = module(x)
        grads.append(torch.autograd.grad(LOSSES[loss](out), list(module.parameters())))
    for g, w in zip(*grads):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
