"""gated.RNN / LSTM / GRU against torch.nn over the whole matrix of options and input layouts.

Outputs and final states must agree to 1e-5 (float32), and so must the
gradients of the input, the initial state and every weight: for every engine.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence

from oracle import pack, random_hx, tensors_of, twins, weighted_sum

T, B, I, H, P = 5, 3, 4, 6, 3
LENGTHS = [5, 2, 4]  # unsorted, with padding, so packing and masking are exercised

MATRIX = [
    (kind, layers, bidirectional, batch_first, bias, proj, layout, with_hx)
    for kind, layers, bidirectional, batch_first, bias, proj, layout, with_hx in itertools.product(
        ["rnn_tanh", "rnn_relu", "lstm", "gru"], [1, 2], [False, True], [False, True], [True, False],
        [0, P], ["batched", "unbatched", "packed"], [False, True],
    )
    if proj == 0 or kind == "lstm"
]


def _case_id(case) -> str:
    kind, layers, bidirectional, batch_first, bias, proj, layout, with_hx = case
    return (
        f"{kind}-L{layers}-{'bi' if bidirectional else 'uni'}-{'bf' if batch_first else 'tf'}-"
        f"{'bias' if bias else 'nobias'}-p{proj}-{layout}-{'hx' if with_hx else 'nohx'}"
    )


def _inputs(layout: str, batch_first: bool, generator):
    """(input for the module, leaf tensor whose gradient we compare)."""
    if layout == "unbatched":
        x = torch.randn(T, I, generator=generator, requires_grad=True)
        return x, x
    shape = (B, T, I) if batch_first else (T, B, I)
    x = torch.randn(shape, generator=generator, requires_grad=True)
    if layout == "packed":
        return pack(x, LENGTHS, batch_first), x
    return x, x


def _run(module, layout, batch_first, with_hx, seed):
    g = torch.Generator().manual_seed(seed)
    inp, leaf = _inputs(layout, batch_first, g)
    hx = random_hx(module, None if layout == "unbatched" else B, g) if with_hx else None
    hx_leaves = []
    if hx is not None:
        hx = tuple(h.requires_grad_() for h in hx) if isinstance(hx, tuple) else hx.requires_grad_()
        hx_leaves = list(hx) if isinstance(hx, tuple) else [hx]
    output, state = module(inp, hx)
    weighted_sum(tensors_of(output) + tensors_of(state)).backward()
    grads = [leaf.grad] + [h.grad for h in hx_leaves] + [p.grad for p in module.parameters()]
    return output, state, grads


ENGINES = ["reference", "fused", "native"]
# The native engine is torch's own kernel: only its glue (packing, state order) is ours, and
# batch_first and bias are handled before the engine, so a quarter of the matrix covers it.
ENGINE_MATRIX = [
    (case, engine)
    for engine in ENGINES
    for case in MATRIX
    if engine != "native" or (not case[3] and case[4])
]


@pytest.mark.parametrize("case,engine", ENGINE_MATRIX, ids=lambda v: v if isinstance(v, str) else _case_id(v))
def test_matches_torch(case, engine):
    kind, layers, bidirectional, batch_first, bias, proj, layout, with_hx = case
    options = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    if proj:
        options["proj_size"] = proj
    torch.manual_seed(0)
    theirs, ours = twins(kind, I, H, engine=engine, **options)

    want_out, want_state, want_grads = _run(theirs, layout, batch_first, with_hx, seed=7)
    got_out, got_state, got_grads = _run(ours, layout, batch_first, with_hx, seed=7)

    assert type(got_out) is type(want_out)
    if isinstance(want_out, PackedSequence):
        assert torch.equal(got_out.batch_sizes, want_out.batch_sizes)
        assert torch.equal(got_out.sorted_indices, want_out.sorted_indices)
        assert torch.equal(got_out.unsorted_indices, want_out.unsorted_indices)
    for got, want in zip(tensors_of(got_out) + tensors_of(got_state), tensors_of(want_out) + tensors_of(want_state)):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert len(got_grads) == len(want_grads)
    for got, want in zip(got_grads, want_grads):
        assert got is not None and got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize(
    "lengths,enforce_sorted",
    # All full length: the engine runs without a mask. Sorted: the pack carries no sorted_indices.
    [([T] * B, False), ([5, 4, 2], True)],
    ids=["equal-lengths", "sorted"],
)
def test_other_packings(kind, engine, lengths, enforce_sorted):
    torch.manual_seed(0)
    theirs, ours = twins(kind, I, H, num_layers=2, bidirectional=True, engine=engine)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.randn(T, B, I), torch.tensor(lengths), enforce_sorted=enforce_sorted
    )
    want, got = theirs(packed), ours(packed)
    assert (got[0].sorted_indices is None) == (want[0].sorted_indices is None)
    for g, w in zip(tensors_of(got), tensors_of(want)):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_float64_and_empty_batch(kind, engine):
    torch.manual_seed(0)
    theirs, ours = twins(kind, I, H, num_layers=2, dtype=torch.float64, engine=engine)
    x = torch.randn(T, B, I, dtype=torch.float64)
    for g, w in zip(tensors_of(ours(x)), tensors_of(theirs(x))):
        assert g.dtype == torch.float64
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)
    empty = torch.randn(T, 0, I, dtype=torch.float64)
    for g, w in zip(tensors_of(ours(empty)), tensors_of(theirs(empty))):
        assert g.shape == w.shape


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_dropout_between_layers(kind, engine):
    torch.manual_seed(0)
    theirs, ours = twins(kind, I, H, num_layers=3, dropout=0.5, engine=engine)
    x = torch.randn(T, B, I)
    theirs.eval(), ours.eval()
    # Evaluation: dropout is off, results are torch's.
    for g, w in zip(tensors_of(ours(x)), tensors_of(theirs(x))):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    ours.train()
    first, second = ours(x)[0], ours(x)[0]
    assert not torch.allclose(first, second), "training mode must drop units, differently each call"
    assert not torch.allclose(first, ours.eval()(x)[0])


def test_dropout_on_a_single_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        twins("gru", I, H, dropout=0.3)
