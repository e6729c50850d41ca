"""The fused kernels of LayerNormLSTM and LayerNormGRU against the reference engine.

The reference engine runs ``cells.py`` (itself checked against the papers' equations in
``test_layer_norm.py``); the fused engine runs the numba loops of ``kernels_layer_norm.py``
with their hand-written backward. Every comparison uses the same weights, with the norms'
gains and biases drawn at random, so that a gain or bias applied in the wrong place, or a
gradient that misses one, shows.

float32 tolerance: 1e-5, relative to each tensor's largest value. The norms divide by
the standard deviation of a few units (4 * 5 here), so some gradients reach tens, and
then float32 rounding alone moves them by about 1e-4: the reference engine's own float32
gradients differ from its float64 ones by as much as the fused engine's do
(:func:`test_float32_differences_are_float32_rounding` checks exactly that).
"""

from __future__ import annotations

import pytest
import torch
from oracle import pack, tensors_of, weighted_sum

import gated
from gated import engines

T, B, I, H = 6, 3, 3, 5
CLASSES = {"lstm": gated.LayerNormLSTM, "gru": gated.LayerNormGRU}


def with_random_norms(module):
    """Gains and biases away from 1 and 0 (their init), so that each one matters."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.startswith("ln_weight"):
                p.copy_(torch.empty(p.shape).uniform_(0.5, 2.0, generator=generator))
            elif name.startswith("ln_bias"):
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    return module


def twins(kind: str, dtype=torch.float32, **options):
    """(reference, fused) modules with identical weights."""
    torch.manual_seed(0)
    reference = with_random_norms(CLASSES[kind](I, H, engine="reference", dtype=dtype, **options))
    fused = CLASSES[kind](I, H, engine="fused", dtype=dtype, **options)
    fused.load_state_dict(reference.state_dict())
    return reference, fused


def random_hx(module, batch: int, dtype=torch.float32):
    rows = module.num_layers * module.num_directions
    states = tuple(torch.randn(rows, batch, size, dtype=dtype) for size in module.state_sizes)
    return states if len(states) == 2 else states[0]


def assert_close(got, want, what: str = ""):
    scale = max(1.0, want.abs().max().item()) if want.numel() else 1.0
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * scale, msg=lambda m: f"{what}: {m}")


def run_and_differentiate(module, x, hx, lengths=None, batch_first=False):
    """Everything a training step sees: outputs, final states and the gradients of x, hx and every weight."""
    x = x.detach().clone().requires_grad_()
    hx = tuple(h.detach().clone().requires_grad_() for h in (hx if isinstance(hx, tuple) else (hx,)))
    inp = pack(x, lengths, batch_first) if lengths is not None else x
    out, final = module(inp, hx if len(hx) == 2 else hx[0])
    values = tensors_of(out) + tensors_of(final)
    module.zero_grad()
    weighted_sum(values).backward()
    named = {f"value {i}": v.detach() for i, v in enumerate(values)}
    named |= {"d input": x.grad} | {f"d hx {i}": h.grad for i, h in enumerate(hx)}
    return named | {f"d {name}": p.grad for name, p in module.named_parameters()}


CASES = {
    "one-layer": ({}, 3, None),
    "batch-1": ({}, 1, None),
    "two-layer-bidirectional": ({"num_layers": 2, "bidirectional": True}, 3, None),
    "batch-first": ({"batch_first": True}, 3, None),
    "no-bias": ({"bias": False, "num_layers": 2}, 3, None),
    "packed": ({}, 3, [6, 2, 4]),
    "packed-two-layer-bidirectional": ({"num_layers": 2, "bidirectional": True}, 4, [3, 6, 1, 5]),
    "packed-batch-1": ({"bidirectional": True}, 1, [4]),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kind", list(CLASSES))
def test_fused_equals_reference(kind, case):
    options, batch, lengths = CASES[case]
    reference, fused = twins(kind, **options)
    shape = (batch, T, I) if options.get("batch_first") else (T, batch, I)
    x, hx = torch.randn(shape), random_hx(reference, batch)
    want = run_and_differentiate(reference, x, hx, lengths, options.get("batch_first", False))
    got = run_and_differentiate(fused, x, hx, lengths, options.get("batch_first", False))
    assert got.keys() == want.keys()
    assert sum(name.startswith("d ln_") for name in got) == len(reference.kind.extras) * reference.num_layers * (
        reference.num_directions)
    for name in want:
        assert got[name] is not None, name
        assert_close(got[name], want[name], name)


@pytest.fixture
def in_halves(monkeypatch):
    """Every loop as two ranges of sequences on two threads, whatever the size and the machine's load."""
    from gated.engines import fused_cells, persistent_sync

    monkeypatch.setattr(fused_cells, "BATCH_SPLIT_FROM", 0)
    monkeypatch.setattr(persistent_sync, "cores_free", lambda: True)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("case", ["one-layer", "two-layer-bidirectional", "packed-two-layer-bidirectional"])
@pytest.mark.parametrize("kind", list(CLASSES))
def test_sequences_on_two_threads_equal_reference(kind, case, in_halves, monkeypatch):
    from gated.engines import fused_layer_norm

    calls = []
    original = fused_layer_norm._ranges
    monkeypatch.setattr(fused_layer_norm, "_ranges", lambda *a: calls.append(original(*a)) or calls[-1])
    options, batch, lengths = CASES[case]
    reference, fused = twins(kind, **options)
    x, hx = torch.randn(T, batch, I), random_hx(reference, batch)
    want = run_and_differentiate(reference, x, hx, lengths)
    got = run_and_differentiate(fused, x, hx, lengths)
    for name in want:
        assert_close(got[name], want[name], name)
    assert calls and all(len(ranges) == 2 for ranges in calls)  # forward and backward each ran in halves


@pytest.mark.parametrize("kind", list(CLASSES))
def test_float32_differences_are_float32_rounding(kind):
    # What the fused engine computes in float32 is no further from the float64 truth than
    # what the reference engine computes in float32, tensor by tensor up to a small factor.
    options = {"num_layers": 2, "bidirectional": True}
    reference, fused = twins(kind, **options)
    truth = CLASSES[kind](I, H, engine="reference", dtype=torch.float64, **options)
    truth.load_state_dict(reference.state_dict())
    x, hx = torch.randn(T, B, I), random_hx(reference, B)
    hx64 = tuple(h.double() for h in hx) if isinstance(hx, tuple) else hx.double()
    want = run_and_differentiate(truth, x.double(), hx64)
    errors = {}
    for label, module in (("reference", reference), ("fused", fused)):
        got = run_and_differentiate(module, x, hx)
        errors[label] = max(((got[n].double() - want[n]).abs().max() / want[n].abs().max()).item() for n in want)
    assert errors["fused"] < 3 * errors["reference"] + 1e-7, errors


def _gradcheck_inputs(kind, packed: bool, **options):
    """A tiny float64 fused model as a function of (x, hx, every weight), and those inputs."""
    torch.manual_seed(0)
    module = with_random_norms(CLASSES[kind](2, 3, dtype=torch.float64, engine="fused", **options))
    names = [name for name, _ in module.named_parameters()]
    x = torch.randn(4, 3, 2, dtype=torch.float64, requires_grad=True)
    hx = random_hx(module, 3, torch.float64)
    hx = tuple(h.requires_grad_() for h in (hx if isinstance(hx, tuple) else (hx,)))

    def run(x, *tensors):
        states, weights = tensors[: len(hx)], tensors[len(hx):]
        inp = pack(x, [4, 2, 3], batch_first=False) if packed else x
        out, final = torch.func.functional_call(
            module, dict(zip(names, weights)), (inp, states if len(states) == 2 else states[0]))
        return tuple(tensors_of(out) + tensors_of(final))

    weights = [p.detach().clone().requires_grad_() for p in module.parameters()]
    return run, (x, *hx, *weights)


@pytest.mark.parametrize("packed", [False, True], ids=["full", "packed"])
@pytest.mark.parametrize("kind", list(CLASSES))
def test_gradcheck_float64(kind, packed):
    # Every entry of the Jacobian on one bidirectional layer; a random projection of it on two.
    run, inputs = _gradcheck_inputs(kind, packed, bidirectional=True)
    assert torch.autograd.gradcheck(run, inputs, eps=1e-6, atol=1e-6)
    run, inputs = _gradcheck_inputs(kind, packed, num_layers=2, bidirectional=True)
    assert torch.autograd.gradcheck(run, inputs, eps=1e-6, atol=1e-6, fast_mode=True)


@pytest.mark.parametrize("kind", list(CLASSES))
def test_gradgradcheck_float64(kind):
    # Second derivatives replay the direction through the reference cells (fused.py); one layer
    # keeps the numerical Hessian small.
    run, inputs = _gradcheck_inputs(kind, packed=True)
    assert torch.autograd.gradgradcheck(run, inputs, eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("layout", ["batched", "packed"])
@pytest.mark.parametrize("kind", list(CLASSES))
def test_trace_equals_reference(kind, layout):
    reference, fused = twins(kind, num_layers=2, bidirectional=True)
    x = torch.randn(T, B, I)
    inp = pack(x, [6, 2, 4], batch_first=False) if layout == "packed" else x
    with torch.no_grad():
        want, got = reference.trace(inp), fused.trace(inp)
    assert got.names == want.names == reference.kind.recorded
    if kind == "lstm":
        assert "cell_normalized" in got.names
    for name in want.names:
        assert_close(got[name], want[name], name)
    for g, w in zip(tensors_of(got.output) + tensors_of(got.state), tensors_of(want.output) + tensors_of(want.state)):
        assert_close(g, w)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("kind", list(CLASSES))
def test_stream_equals_whole_sequence(kind, bias, dtype):
    reference, _ = twins(kind, dtype=dtype, num_layers=2, bias=bias)
    reference.eval()
    x, hx = torch.randn(T, B, I, dtype=dtype), random_hx(reference, B, dtype)
    with torch.no_grad():
        want_out, want_final = reference(x, hx)
    stream = reference.stream(hx)
    got = torch.stack([stream.step(x_t) for x_t in x])
    assert_close(got, want_out)
    for g, w in zip(tensors_of(stream.state), tensors_of(want_final)):
        assert_close(g, w)
    # Unbatched steps: the same numbers as a batch of one.
    stream = reference.stream()
    with torch.no_grad():
        alone = reference(x[:, :1])[0][:, 0]
    assert_close(torch.stack([stream.step(x_t[0]) for x_t in x]), alone)


@pytest.mark.parametrize("kind", list(CLASSES))
def test_auto_runs_fused_on_cpu(kind):
    module = with_random_norms(CLASSES[kind](I, H))
    x = torch.randn(T, B, I)
    spec = module.spec()
    assert engines.choose(spec, x.requires_grad_()) == "fused"  # training
    with torch.no_grad():
        assert engines.choose(spec, x) == "fused"  # inference
        assert engines.choose(spec, x, record=True) == "fused"  # a trace without gradients


@pytest.mark.parametrize("kind", list(CLASSES))
def test_inference_equals_reference(kind):
    # Without gradients the kernels keep one reused slice of gate buffers instead of every step's.
    reference, fused = twins(kind, num_layers=2, bidirectional=True)
    x, hx = torch.randn(T, B, I), random_hx(reference, B)
    for inp in (x, pack(x, [6, 2, 4], batch_first=False)):
        with torch.no_grad():
            want, got = reference(inp, hx), fused(inp, hx)
        for g, w in zip(tensors_of(got), tensors_of(want)):
            assert_close(g, w)


@pytest.mark.parametrize("kind", list(CLASSES))
def test_float64_matches_reference_closely(kind):
    # float64 leaves no room for rounding to hide a slightly wrong formula.
    reference, fused = twins(kind, dtype=torch.float64, num_layers=2, bidirectional=True, bias=True)
    x, hx = torch.randn(T, B, I, dtype=torch.float64), random_hx(reference, B, torch.float64)
    want, got = run_and_differentiate(reference, x, hx, [6, 3, 5]), run_and_differentiate(fused, x, hx, [6, 3, 5])
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-10, atol=1e-10, msg=lambda m, name=name: f"{name}: {m}")


def test_the_kernels_normalise_with_the_cells_epsilon():
    from gated import cells
    from gated.engines import fused_layer_norm

    assert fused_layer_norm.LAYER_NORM_EPS == cells.LAYER_NORM_EPS
