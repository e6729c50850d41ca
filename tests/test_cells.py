"""The one-step cells: parity with torch.nn's cells, gradcheck, and the guide's equations."""

from __future__ import annotations

import itertools

import pytest
import torch

import gated
from oracle import CELL_KINDS, cell_twins, tensors_of, weighted_sum

I, H, B = 4, 5, 3


def _hx(kind, batched, g):
    lead = (B,) if batched else ()
    h = torch.randn(*lead, H, generator=g, requires_grad=True)
    if kind == "lstm":
        return (h, torch.randn(*lead, H, generator=g, requires_grad=True))
    return h


@pytest.mark.parametrize(
    "kind,bias,batched,with_hx", list(itertools.product(CELL_KINDS, [True, False], [True, False], [True, False]))
)
def test_cell_matches_torch(kind, bias, batched, with_hx):
    torch.manual_seed(0)
    theirs, ours = cell_twins(kind, I, H, bias=bias)
    results = []
    for module in (theirs, ours):
        g = torch.Generator().manual_seed(3)
        x = torch.randn(*((B,) if batched else ()), I, generator=g, requires_grad=True)
        hx = _hx(kind, batched, g) if with_hx else None
        out = module(x, hx)
        weighted_sum(tensors_of(out)).backward()
        hx_grads = [h.grad for h in tensors_of(hx)] if with_hx else []
        grads = [x.grad] + hx_grads + [p.grad for p in module.parameters()]
        results.append((tensors_of(out), grads))
    (want_out, want_grads), (got_out, got_grads) = results
    for got, want in zip(got_out, want_out):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for got, want in zip(got_grads, want_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_cell_initialisation_is_torchs(kind):
    theirs_cls, ours_cls, extra = CELL_KINDS[kind]
    torch.manual_seed(42)
    theirs = theirs_cls(I, H, **extra)
    torch.manual_seed(42)
    ours = ours_cls(I, H, **extra)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert torch.equal(p, q), name
    assert repr(ours) == repr(theirs)
    theirs.load_state_dict(ours.state_dict(), strict=True)


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_cell_gradcheck(kind):
    _, ours_cls, extra = CELL_KINDS[kind]
    cell = ours_cls(I, H, **extra, dtype=torch.float64)
    x = torch.randn(B, I, dtype=torch.float64, requires_grad=True)
    h = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    if kind == "lstm":
        c = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda x, h, c, *w: cell(x, (h, c)), (x, h, c, *cell.parameters()))
    else:
        # relu has a kink at 0; random inputs almost surely avoid it.
        assert torch.autograd.gradcheck(lambda x, h, *w: cell(x, h), (x, h, *cell.parameters()))


def test_lstm_cell_trace_follows_the_guide():
    cell = gated.LSTMCell(I, H)
    x, h, c = torch.randn(B, I), torch.randn(B, H), torch.randn(B, H)
    step = cell.trace(x, (h, c))
    assert isinstance(step, gated.LSTMStep)
    # Recompute the gates from the weights, independently of cells.py's chunking.
    pre = x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
    i, f, g, o = (pre[:, k * H : (k + 1) * H] for k in range(4))
    torch.testing.assert_close(step.input, torch.sigmoid(i))
    torch.testing.assert_close(step.forget, torch.sigmoid(f))
    torch.testing.assert_close(step.candidate, torch.tanh(g))
    torch.testing.assert_close(step.output, torch.sigmoid(o))
    torch.testing.assert_close(step.cell, step.forget * c + step.input * step.candidate)
    torch.testing.assert_close(step.hidden, step.output * torch.tanh(step.cell))
    torch.testing.assert_close(step.hidden, cell(x, (h, c))[0])


def test_gru_cell_trace_follows_the_guide():
    cell = gated.GRUCell(I, H)
    x, h = torch.randn(B, I), torch.randn(B, H)
    step = cell.trace(x, h)
    xr, xz, xn = (x @ cell.weight_ih.T + cell.bias_ih).split(H, dim=1)
    hr, hz, hn = (h @ cell.weight_hh.T + cell.bias_hh).split(H, dim=1)
    torch.testing.assert_close(step.reset, torch.sigmoid(xr + hr))
    torch.testing.assert_close(step.update, torch.sigmoid(xz + hz))
    torch.testing.assert_close(step.candidate, torch.tanh(xn + step.reset * hn))
    torch.testing.assert_close(step.hidden, (1 - step.update) * step.candidate + step.update * h)


def test_unbatched_cell_trace_drops_the_batch_dimension():
    step = gated.LSTMCell(I, H).trace(torch.randn(I))
    assert all(value.shape == (H,) for value in step)


def test_lstm_cell_forget_bias():
    cell = gated.LSTMCell(I, H, forget_bias=1.0)
    assert torch.all(cell.bias_ih[H : 2 * H] == 1.0) and torch.all(cell.bias_hh[H : 2 * H] == 0.0)
    # The other gates keep torch's uniform initialisation.
    assert cell.bias_ih[:H].abs().max() <= 1 / H**0.5
