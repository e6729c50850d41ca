"""gated on a CUDA GPU: the parity matrix against torch.nn (cuDNN), and every cell kind against the CPU.

Skipped without a GPU. On the GPU the fused engine steps aside (it is numba on
the CPU): ``auto`` runs torch's cuDNN kernels for the four torch cells and the
reference engine for the others, whose loop (or, for MinGRU and MinLSTM, the
parallel scan) runs as torch operations on the device.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence

import gated
from oracle import pack, random_hx, tensors_of, twins, weighted_sum
from test_parity import LENGTHS, MATRIX, B, H, I, T, _case_id

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def _exact_float32():
    # TF32 would round matrix products to 10 bits of mantissa: the comparison is about our code.
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _leaf(t: torch.Tensor, device, dtype=torch.float32) -> torch.Tensor:
    return t.to(device, dtype).detach().requires_grad_()


def _run(module, layout, batch_first, with_hx, seed, device, dtype=torch.float32):
    """Outputs, state and every gradient of one call; the random numbers are drawn on the CPU."""
    g = torch.Generator().manual_seed(seed)
    if layout == "unbatched":
        leaf = _leaf(torch.randn(T, I, generator=g), device, dtype)
        inp = leaf
    else:
        leaf = _leaf(torch.randn((B, T, I) if batch_first else (T, B, I), generator=g), device, dtype)
        inp = pack(leaf, LENGTHS, batch_first) if layout == "packed" else leaf
    hx, hx_leaves = None, []
    if with_hx:
        hx = random_hx(module, None if layout == "unbatched" else B, g)
        hx_leaves = [_leaf(h, device, dtype) for h in (hx if isinstance(hx, tuple) else (hx,))]
        hx = tuple(hx_leaves) if isinstance(hx, tuple) else hx_leaves[0]
    output, state = module(inp, hx)
    weighted_sum([t.cpu().float() for t in tensors_of(output) + tensors_of(state)]).backward()
    grads = [leaf.grad] + [h.grad for h in hx_leaves] + [p.grad for p in module.parameters()]
    return output, state, grads


def _close(got, want, rtol=1e-5, atol=1e-5):
    torch.testing.assert_close(got.cpu(), want.cpu(), rtol=rtol, atol=atol)


def _agree(got, want, truth, rtol=1e-5, atol=1e-5):
    """``got`` matches torch.nn's ``want``, or is at least as close to the float64 ``truth`` as ``want`` is.

    cuDNN sums in its own order, so where the two float32 results differ by more than the
    tolerance (gradients of long tanh chains), the float64 result says which is off: gated's
    error may be at most twice cuDNN's own, plus the tolerance.
    """
    got, want, truth = got.cpu().double(), want.cpu().double(), truth.cpu().double()
    if torch.allclose(got, want, rtol=rtol, atol=atol):
        return
    ours, theirs = (got - truth).abs(), (want - truth).abs()
    worst = (ours - 2 * theirs - atol - rtol * truth.abs()).max().item()
    assert worst <= 0, f"gated is off the float64 result by up to {ours.max().item():.3g}, cuDNN by {theirs.max().item():.3g}"


@pytest.mark.parametrize("engine", ["auto", "native", "reference"])
@pytest.mark.parametrize("case", MATRIX, ids=_case_id)
def test_matches_torch_on_cuda(case, engine):
    kind, layers, bidirectional, batch_first, bias, proj, layout, with_hx = case
    options = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    if proj:
        options["proj_size"] = proj
    torch.manual_seed(0)
    theirs, ours = (m.to(CUDA) for m in twins(kind, I, H, engine=engine, **options))

    want_out, want_state, want_grads = _run(theirs, layout, batch_first, with_hx, 7, CUDA)
    got_out, got_state, got_grads = _run(ours, layout, batch_first, with_hx, 7, CUDA)
    truth_out, truth_state, truth_grads = _run(copy.deepcopy(theirs).double(), layout, batch_first, with_hx, 7, CUDA,
                                               torch.float64)

    assert type(got_out) is type(want_out)
    if isinstance(want_out, PackedSequence):
        assert torch.equal(got_out.batch_sizes, want_out.batch_sizes)
    values = zip(tensors_of(got_out) + tensors_of(got_state), tensors_of(want_out) + tensors_of(want_state),
                 tensors_of(truth_out) + tensors_of(truth_state))
    for got, want, truth in values:
        assert got.device.type == "cuda" and got.shape == want.shape
        _agree(got, want, truth)
    assert len(got_grads) == len(want_grads)
    for got, want, truth in zip(got_grads, want_grads, truth_grads):
        assert got is not None and got.device.type == "cuda"
        _agree(got, want, truth, rtol=1e-4)


BLOCK_CASES = [(kind, options) for kind in ("rnn_tanh", "lstm", "gru")
               for options in (dict(num_layers=2, bidirectional=True), dict(bias=False))] + [("lstm", dict(proj_size=3))]


@pytest.mark.parametrize("kind, options", BLOCK_CASES, ids=lambda v: v if isinstance(v, str) else "-".join(f"{k}={x}" for k, x in v.items()))
def test_weights_sit_in_one_block_for_cudnn(kind, options):
    theirs, ours = twins(kind, I, H, **options)
    moved = copy.deepcopy(ours).to(CUDA)
    built = type(ours)(I, H, **options, **({"nonlinearity": "tanh"} if kind == "rnn_tanh" else {}), device=CUDA)
    x = torch.randn(T, B, I, device=CUDA)
    for module in (moved, built):
        assert len({p.untyped_storage().data_ptr() for p in module.parameters()}) == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # cuDNN warns when it has to copy weights that are not one block
            module(x)
    with torch.no_grad():  # the values did not change on the way
        for got, want in zip(tensors_of(moved(x)), tensors_of(theirs.to(CUDA)(x))):
            _close(got, want)


NEW_CELLS = {
    "peephole-lstm": lambda: gated.PeepholeLSTM(I, H, num_layers=2, bidirectional=True),
    "ln-lstm": lambda: gated.LayerNormLSTM(I, H, num_layers=2, bidirectional=True),
    "ln-gru": lambda: gated.LayerNormGRU(I, H, num_layers=2, bidirectional=True),
    "min-gru": lambda: gated.MinGRU(I, H, num_layers=2, bidirectional=True),
    "min-lstm": lambda: gated.MinLSTM(I, H, num_layers=2, bidirectional=True),
}


def _randomise(module) -> None:
    # Norm gains start at 1 and biases at 0: random values make every weight's role visible.
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.5, 0.5)


@pytest.mark.parametrize("layout", ["batched", "packed"])
@pytest.mark.parametrize("name", sorted(NEW_CELLS))
def test_new_cells_on_cuda_match_the_cpu(name, layout):
    torch.manual_seed(0)
    cpu = NEW_CELLS[name]()
    _randomise(cpu)
    gpu = NEW_CELLS[name]().to(CUDA)
    gpu.load_state_dict(cpu.state_dict())
    want_out, want_state, want_grads = _run(cpu, layout, False, True, 3, "cpu")
    got_out, got_state, got_grads = _run(gpu, layout, False, True, 3, CUDA)
    for got, want in zip(tensors_of(got_out) + tensors_of(got_state), tensors_of(want_out) + tensors_of(want_state)):
        assert got.device.type == "cuda"
        _close(got, want)
    for got, want in zip(got_grads, want_grads):
        _close(got, want, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(NEW_CELLS))
def test_trace_on_cuda_matches_the_cpu(name):
    torch.manual_seed(0)
    cpu = NEW_CELLS[name]()
    _randomise(cpu)
    gpu = NEW_CELLS[name]().to(CUDA)
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(T, B, I)
    want, got = cpu.trace(x), gpu.trace(x.to(CUDA))
    assert set(got.names) == set(want.names)
    for gate in want.names:
        _close(got[gate], want[gate])


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_trace_and_stream_on_cuda(kind):
    torch.manual_seed(0)
    theirs, ours = twins(kind, I, H, num_layers=2)
    x = torch.randn(T, B, I)
    cpu_trace = ours.trace(x)
    ours = ours.to(CUDA).eval()
    gpu_trace = ours.trace(x.to(CUDA))
    for gate in cpu_trace.names:
        _close(gpu_trace[gate], cpu_trace[gate])
    stream = ours.stream()
    stepped = torch.stack([stream.step(x_t.to(CUDA)) for x_t in x])
    with torch.no_grad():
        whole = ours(x.to(CUDA))[0]
    _close(stepped, whole)


def test_fused_engine_refuses_cuda_with_the_reason():
    module = gated.GRU(I, H, engine="fused").to(CUDA)
    with pytest.raises(RuntimeError, match="CPU"):
        module(torch.randn(T, B, I, device=CUDA))


@pytest.mark.parametrize("cls", [gated.MinGRU, gated.MinLSTM])
def test_parallel_scan_on_cuda_matches_the_step_loop_at_4096_steps(cls):
    torch.manual_seed(0)
    module = cls(8, 16).to(CUDA)
    x = torch.randn(4096, 2, 8, device=CUDA)
    with torch.no_grad():
        scanned = module(x)[0]
        stream = module.eval().stream()
        stepped = torch.stack([stream.step(x_t) for x_t in x])
    _close(scanned, stepped)
