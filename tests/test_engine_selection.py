"""engine='auto' never picks an engine that cannot do what was asked."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import gated
from gated import engines

I, H = 4, 6


def _x(batch=3, dtype=torch.float32, requires_grad=False):
    return torch.randn(5, batch, I, dtype=dtype, requires_grad=requires_grad)


@pytest.mark.parametrize("cls", [gated.RNN, gated.LSTM, gated.GRU])
def test_a_trace_is_never_given_to_the_native_engine(cls):
    module = cls(I, H)
    for batch in (1, 64, 1024):
        with torch.no_grad():
            assert engines.choose(module.spec(), _x(batch), record=True) != "native"
        assert engines.choose(module.spec(), _x(batch), record=True) != "native"


def test_a_trace_with_gradients_goes_to_the_reference_engine():
    # Only the reference engine can differentiate through the recorded gates.
    lstm = gated.LSTM(I, H)
    assert engines.choose(lstm.spec(), _x(), record=True) == "reference"
    with torch.no_grad():
        assert engines.choose(lstm.spec(), _x(), record=True) == "fused"
    lstm.requires_grad_(False)
    assert engines.choose(lstm.spec(), _x(), record=True) == "fused"
    assert engines.choose(lstm.spec(), _x(requires_grad=True), record=True) == "reference"


def test_dtypes_the_fused_kernels_lack_go_elsewhere():
    lstm = gated.LSTM(I, H, dtype=torch.bfloat16)
    x = _x(dtype=torch.bfloat16)
    assert engines.choose(lstm.spec(), x) == "native"
    with torch.no_grad():
        assert engines.choose(lstm.spec(), x, record=True) == "reference"


def test_size_decides_between_fused_and_native(two_threads):
    small, large = gated.GRU(I, 16), gated.GRU(I, 512)
    assert engines.choose(small.spec(), _x(1)) == "fused"
    assert engines.choose(large.spec(), _x(256)) == "native"
    assert engines.choose(small.spec(), _x(0)) == "native"  # nothing to loop over
    # torch's LSTM (oneDNN) was not beaten at any size measured.
    lstm = gated.LSTM(I, 128)
    assert engines.choose(lstm.spec(), _x(1)) == "native"
    with torch.no_grad():
        assert engines.choose(lstm.spec(), _x(1)) == "native"


@pytest.mark.parametrize("cls", [gated.PeepholeLSTM, gated.LayerNormLSTM, gated.LayerNormGRU])
def test_a_cell_torch_lacks_races_the_reference_loop_past_its_bound(cls, two_threads):
    # No torch kernel to hand over to: the kernel won up to the largest size swept; past it the
    # reference loop, whose products use torch's threads, is what remains.
    small, large = cls(I, 16), cls(I, 512)
    assert engines.choose(small.spec(), _x(1)) == "fused"
    assert engines.choose(large.spec(), _x(64)) == "fused"
    assert engines.choose(large.spec(), _x(128)) == "reference"
    with torch.no_grad():
        assert engines.choose(large.spec(), _x(128)) == "reference"


def test_the_min_cells_stay_fused_at_every_size():
    for cls in (gated.MinGRU, gated.MinLSTM):
        assert engines.choose(cls(I, 512).spec(), _x(64)) == "fused"


@pytest.mark.parametrize("record", [False, True])
@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("batch", [1, 3, 300])
@pytest.mark.parametrize("cls", [gated.RNN, gated.LSTM, gated.GRU])
def test_the_chosen_engine_runs_and_agrees_with_reference(cls, batch, grad, record):
    torch.manual_seed(0)
    auto, reference = cls(I, H), cls(I, H, engine="reference")
    reference.load_state_dict(auto.state_dict())
    x = _x(batch)
    with torch.set_grad_enabled(grad):
        got = auto.trace(x) if record else auto(x)
        want = reference.trace(x) if record else reference(x)
    if record:
        got_values = [got[name] for name in want.names]
        want_values = [want[name] for name in want.names]
    else:
        got_values, want_values = list(got[:1]), list(want[:1])
    for g, w in zip(got_values, want_values):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)
    if grad:
        # The engine auto chose must also give the reference engine's gradients, for every
        # weight, through every recorded gate and state.
        for values in (got_values, want_values):
            seeds = (torch.Generator().manual_seed(i) for i in range(len(values)))
            sum((v * torch.randn(v.shape, generator=g)).sum() for v, g in zip(values, seeds)).backward()
        for (name, p), q in zip(auto.named_parameters(), reference.parameters()):
            assert p.grad is not None and p.grad.abs().sum() > 0, name
            # float32 sums over the batch in a different order: the tolerance grows with it.
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5 * batch, msg=name)


def test_unknown_engine_names_are_refused():
    with pytest.raises(ValueError, match="engine must be one of"):
        engines.select("fast", gated.GRU(I, H).spec(), _x())


def test_importing_gated_loads_neither_numba_nor_scipy():
    # The fused engine limits SciPy's BLAS to one thread as it loads it (fused.available); a kernel
    # module imported with gated would load that BLAS first, with all its threads.
    code = "import sys, gated; print('numba' in sys.modules, 'scipy.linalg' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_convert_and_onnx_load_on_first_use_and_not_before():
    code = ("import sys, gated; print('gated.convert' in sys.modules, 'gated.onnx' in sys.modules); "
            "print(callable(gated.convert.from_keras), callable(gated.onnx.export), 'keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False", "True", "True", "False"]


def test_with_torch_on_one_thread_the_kernels_win_further():
    # One thread takes torch's second core away from its kernels and from the reference loop.
    rnn, peephole = gated.RNN(I, 128), gated.PeepholeLSTM(I, 512)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with torch.no_grad():
            assert engines.choose(rnn.spec(), _x(64)) == "native"  # 64 * 128 = 8192: past two threads' bound
        assert engines.choose(peephole.spec(), _x(128)) == "reference"
        torch.set_num_threads(1)
        with torch.no_grad():
            assert engines.choose(rnn.spec(), _x(64)) == "fused"
        assert engines.choose(peephole.spec(), _x(128)) == "fused"
    finally:
        torch.set_num_threads(threads)
