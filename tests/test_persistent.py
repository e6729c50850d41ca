"""The LSTM split across two threads (engines/persistent_lstm.py) against torch.nn, and when it runs.

``persistent_sync.FORCE`` makes every plain LSTM layer of the fused engine split (or never split),
whatever the machine's load, so these tests run the two-thread kernels on purpose.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import gated
from gated.engines import persistent_lstm, persistent_sync
from oracle import twins


@pytest.fixture
def split(monkeypatch):
    monkeypatch.setattr(persistent_sync, "FORCE", True)


def _run(module, x, hx, lengths):
    if lengths is None:
        return module(x, hx)
    packed = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
    out, state = module(packed, hx)
    return pad_packed_sequence(out, total_length=x.size(0))[0], state


def _outputs_and_gradients(module, x, hx, lengths, seed=None) -> list:
    """Everything a training step sees: outputs, final states, the gradients of x, hx and every weight.
    ``seed``: set just before the call, so that two engines draw the same masks."""
    xs = x.clone().requires_grad_()
    state = tuple(s.clone().requires_grad_() for s in hx)
    if seed is not None:
        torch.manual_seed(seed)
    out, (h, c) = _run(module, xs, state, lengths)
    (out.sin().sum() + h.cos().sum() + (c * c).sum()).backward()
    return [out, h, c, xs.grad, *(s.grad for s in state), *(p.grad for p in module.parameters())]


def _assert_all_close(got: list, want: list) -> None:
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


CASES = {  # (T, B, I, H, layers, bidirectional, lengths)
    "one sequence": (12, 1, 5, 8, 1, False, None),
    "odd hidden": (6, 2, 3, 7, 1, False, None),
    "batch, two layers": (9, 4, 6, 10, 2, False, None),
    "bidirectional": (7, 3, 4, 6, 1, True, None),
    "packed": (8, 4, 3, 6, 2, True, [8, 3, 1, 5]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_split_equals_torch(split, case):
    """Outputs, states and every gradient equal torch.nn.LSTM's (1e-5, float32)."""
    steps, batch, inputs, hidden, layers, bidirectional, lengths = CASES[case]
    torch.manual_seed(0)
    theirs, ours = twins("lstm", inputs, hidden, num_layers=layers, bidirectional=bidirectional, engine="fused")
    rows = layers * (2 if bidirectional else 1)
    x = torch.randn(steps, batch, inputs)
    hx = (torch.randn(rows, batch, hidden), torch.randn(rows, batch, hidden))
    _assert_all_close(_outputs_and_gradients(ours, x, hx, lengths), _outputs_and_gradients(theirs, x, hx, lengths))


def test_split_runs_the_split_kernels(split, monkeypatch):
    """The forced path really goes through the two-thread kernels (not the single-threaded ones)."""
    calls = []
    original = persistent_sync.run_pair
    monkeypatch.setattr(persistent_sync, "run_pair", lambda kernel, args: calls.append(kernel) or original(kernel, args))
    module = gated.LSTM(4, 8, engine="fused")
    out, _ = module(torch.randn(5, 2, 4))
    out.sum().backward()
    assert calls == [persistent_lstm.lstm_forward_part, persistent_lstm.lstm_backward_part]


def test_split_gradcheck_float64(split):
    module = gated.LSTM(3, 5, dtype=torch.float64, engine="fused")
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    hx = tuple(torch.randn(1, 2, 5, dtype=torch.float64, requires_grad=True) for _ in range(2))
    names = [name for name, _ in module.named_parameters()]
    weights = [p.detach().clone().requires_grad_() for p in module.parameters()]

    def f(x, h, c, *tensors):
        out, (h_n, c_n) = torch.func.functional_call(module, dict(zip(names, tensors)), (x, (h, c)))
        return out, h_n, c_n

    assert torch.autograd.gradcheck(f, (x, *hx, *weights), eps=1e-6, atol=1e-6)
    assert torch.autograd.gradgradcheck(f, (x, *hx, *weights), eps=1e-6, atol=1e-6, fast_mode=True)


REGULARIZED = {  # the module's options, and train or eval
    "recurrent dropout": (dict(recurrent_dropout=0.3), True),
    "zoneout": (dict(zoneout=(0.2, 0.1)), True),
    "both": (dict(recurrent_dropout=0.25, zoneout=(0.15, 0.3)), True),
    "zoneout in eval": (dict(zoneout=(0.2, 0.1)), False),
}


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize("case", list(REGULARIZED))
def test_split_regularized_equals_reference(split, case, packed):
    """Recurrent dropout and zoneout on two threads: under one seed the reference engine draws the same
    masks, so outputs, states and every gradient agree (1e-5), over two bidirectional layers."""
    options, training = REGULARIZED[case]
    lengths = [7, 3, 1, 5] if packed else None
    torch.manual_seed(0)
    reference = gated.LSTM(4, 9, num_layers=2, bidirectional=True, engine="reference", **options).train(training)
    fused = gated.LSTM(4, 9, num_layers=2, bidirectional=True, engine="fused", **options).train(training)
    fused.load_state_dict(reference.state_dict())
    x = torch.randn(7, 4, 4)
    hx = (torch.randn(4, 4, 9), torch.randn(4, 4, 9))
    want = _outputs_and_gradients(reference, x, hx, lengths, seed=1)
    _assert_all_close(_outputs_and_gradients(fused, x, hx, lengths, seed=1), want)


def test_split_regularized_gradcheck_float64(split):
    module = gated.LSTM(3, 5, dtype=torch.float64, engine="fused", recurrent_dropout=0.3, zoneout=(0.2, 0.25))
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    hx = tuple(torch.randn(1, 2, 5, dtype=torch.float64, requires_grad=True) for _ in range(2))
    names = [name for name, _ in module.named_parameters()]
    weights = [p.detach().clone().requires_grad_() for p in module.parameters()]

    def f(x, h, c, *tensors):
        torch.manual_seed(3)  # the same masks at every call, so the function is one function
        out, (h_n, c_n) = torch.func.functional_call(module, dict(zip(names, tensors)), (x, (h, c)))
        return out, h_n, c_n

    assert torch.autograd.gradcheck(f, (x, *hx, *weights), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_split_peephole_lstm_equals_reference(split, packed, monkeypatch):
    """The peephole LSTM on two threads: outputs, states and every gradient, peepholes included, equal the
    reference engine's (which is checked against the paper's equations in test_peephole.py)."""
    calls = []
    original = persistent_sync.run_pair
    monkeypatch.setattr(persistent_sync, "run_pair", lambda kernel, args: calls.append(kernel) or original(kernel, args))
    lengths = [6, 2, 1, 4] if packed else None
    torch.manual_seed(0)
    reference = gated.PeepholeLSTM(4, 9, num_layers=2, bidirectional=True, engine="reference")
    fused = gated.PeepholeLSTM(4, 9, num_layers=2, bidirectional=True, engine="fused")
    with torch.no_grad():  # peepholes start at zero: give them values that matter
        for name, p in reference.named_parameters():
            if "weight_c" in name:
                p.uniform_(-0.5, 0.5)
    fused.load_state_dict(reference.state_dict())
    x = torch.randn(6, 4, 4)
    hx = (torch.randn(4, 4, 9), torch.randn(4, 4, 9))
    _assert_all_close(_outputs_and_gradients(fused, x, hx, lengths), _outputs_and_gradients(reference, x, hx, lengths))
    assert persistent_lstm.lstm_backward_part in calls


def test_split_peephole_gradcheck_float64(split):
    module = gated.PeepholeLSTM(3, 5, dtype=torch.float64, engine="fused")
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    hx = tuple(torch.randn(1, 2, 5, dtype=torch.float64, requires_grad=True) for _ in range(2))
    names = [name for name, _ in module.named_parameters()]
    weights = [torch.randn_like(p).requires_grad_() if "weight_c" in name else p.detach().clone().requires_grad_()
               for name, p in module.named_parameters()]

    def f(x, h, c, *tensors):
        out, (h_n, c_n) = torch.func.functional_call(module, dict(zip(names, tensors)), (x, (h, c)))
        return out, h_n, c_n

    assert torch.autograd.gradcheck(f, (x, *hx, *weights), eps=1e-6, atol=1e-6)
    assert torch.autograd.gradgradcheck(f, (x, *hx, *weights), eps=1e-6, atol=1e-6, fast_mode=True)


def test_split_trace_equals_reference(split):
    torch.manual_seed(0)
    reference = gated.LSTM(3, 6, engine="reference")
    fused = gated.LSTM(3, 6, engine="fused")
    fused.load_state_dict(reference.state_dict())
    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        want, got = reference.trace(x), fused.trace(x)
    for name in want.names:
        torch.testing.assert_close(getattr(got, name), getattr(want, name), rtol=1e-5, atol=1e-5)


def test_no_split_on_one_thread(monkeypatch):
    """torch.set_num_threads(1) is the user saying one core: the kernels never start a second thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert not persistent_sync.two_cores()
        assert not persistent_sync.split_pays(512)
    finally:
        torch.set_num_threads(threads)


def test_no_split_for_small_layers():
    assert not persistent_sync.split_pays(persistent_sync.SPLIT_HIDDEN_AT_LEAST - 1)


def test_units_cover_the_layer_once():
    for hidden in (1, 2, 7, 8, 129):
        owned = []
        for part in range(2):
            low, high, share = persistent_lstm.units_of(part, 2, hidden)
            assert high - low <= share
            owned.extend(range(low, high))
        assert owned == list(range(hidden))


def test_barrier_lets_both_threads_through():
    """A kernel of barriers alone, on two threads: both arrive at every step and the call returns."""
    from numba import njit

    from gated.engines.persistent_sync import barrier

    @njit(nogil=True)
    def count_steps(part, parts, sync, steps, seen):
        for t in range(steps):
            seen[part] += 1
            if not barrier(sync, parts, t + 1):
                return

    seen = np.zeros(2, np.int64)
    persistent_sync.run_pair(count_steps, (500, seen))
    assert seen.tolist() == [500, 500]


@pytest.mark.parametrize("make", [lambda: gated.LSTM(128, 256, recurrent_dropout=0.25).train(),
                                  lambda: gated.PeepholeLSTM(128, 256)], ids=["recurrent dropout", "peephole"])
@pytest.mark.parametrize("force", [True, False], ids=["split", "one thread"])
def test_auto_gives_calls_torch_cannot_run_to_the_kernel_split_or_not(monkeypatch, make, force, two_threads):
    # With the per-step products on MKL (engines/blas.py) the kernel beat the reference loop at every
    # size swept, on two threads or one: fused up to the largest size measured, the loop past it.
    from gated import engines

    monkeypatch.setattr(persistent_sync, "FORCE", force)
    module = make()
    for batch, engine in ((32, "fused"), (256, "reference")):  # 32 x 256 units; 256 x 256 is past spec.SWEPT
        x = torch.randn(10, batch, 128)
        assert engines.choose(module.spec(), x) == engine
        with torch.no_grad():
            assert engines.choose(module.spec(), x) == engine
