"""MinGRU and MinLSTM (Feng et al. 2024): the parallel scan against the step-by-step loop and the paper.

Three views of one recurrence must agree: the step of ``cells.py`` looped in Python (the
definition), the whole-sequence scan the modules run (``engines/scan.py``), and an oracle
written here from the paper's equations, gate by gate with each gate's own weights.
"""

from __future__ import annotations

import pickle

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import gated
from gated.cells import min_gru_cell, min_lstm_cell
from gated.engines.scan import linear_scan

MODULES = {"min-gru": (gated.MinGRU, min_gru_cell), "min-lstm": (gated.MinLSTM, min_lstm_cell)}


def _module(name, *args, spread=None, **kwargs):
    torch.manual_seed(0)
    module = MODULES[name][0](*args, **kwargs)
    if spread:  # larger weights: gates near 0 and 1 as well as in between, so every path is exercised
        with torch.no_grad():
            for p in module.parameters():
                p.uniform_(-spread, spread)
    return module


def _step_by_step(name, module, x, h):
    """One layer, one direction: ``cells.py``'s step in a Python loop, the definition of the cell."""
    cell = MODULES[name][1]
    xp = F.linear(x, module.weight_ih_l0, module.bias_ih_l0)
    outputs = []
    for x_t in xp:
        h = cell(x_t, h).hidden
        outputs.append(h)
    return torch.stack(outputs), h


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize("steps", [1, 7, 64, 65, 4096])
def test_the_scan_is_the_step_by_step_recurrence(name, steps):
    module = _module(name, 3, 4, spread=2.0)
    x, h0 = torch.randn(steps, 2, 3), torch.randn(1, 2, 4)
    out, h_n = module(x, h0)
    want_out, want_h = _step_by_step(name, module, x, h0[0])
    torch.testing.assert_close(out, want_out, atol=1e-5, rtol=0)
    torch.testing.assert_close(h_n[0], want_h, atol=1e-5, rtol=0)


def paper_min_gru(module, x):
    """minGRU as written in the paper (section 3.1), zero start, time-major x (T, B, I)."""
    W_z, W_h = module.weight_ih_l0.split(module.hidden_size)
    b_z, b_h = module.bias_ih_l0.split(module.hidden_size)
    h, outputs = x.new_zeros(x.size(1), module.hidden_size), []
    for x_t in x:
        z = torch.sigmoid(x_t @ W_z.T + b_z)
        h_tilde = x_t @ W_h.T + b_h
        h = (1 - z) * h + z * h_tilde
        outputs.append(h)
    return torch.stack(outputs)


def paper_min_lstm(module, x):
    """minLSTM as written in the paper (section 3.2, with its length-independent scaling)."""
    W_f, W_i, W_h = module.weight_ih_l0.split(module.hidden_size)
    b_f, b_i, b_h = module.bias_ih_l0.split(module.hidden_size)
    h, outputs = x.new_zeros(x.size(1), module.hidden_size), []
    for x_t in x:
        f = torch.sigmoid(x_t @ W_f.T + b_f)
        i = torch.sigmoid(x_t @ W_i.T + b_i)
        h_tilde = x_t @ W_h.T + b_h
        h = f / (f + i) * h + i / (f + i) * h_tilde
        outputs.append(h)
    return torch.stack(outputs)


@pytest.mark.parametrize("name, paper", [("min-gru", paper_min_gru), ("min-lstm", paper_min_lstm)])
def test_matches_the_papers_equations(name, paper):
    module = _module(name, 3, 5, spread=1.5, dtype=torch.float64)
    x = torch.randn(40, 4, 3, dtype=torch.float64)
    torch.testing.assert_close(module(x)[0], paper(module, x))


def test_there_is_no_recurrent_weight():
    assert list(gated.MinGRU(3, 4, bidirectional=True).state_dict()) == [
        "weight_ih_l0", "bias_ih_l0", "weight_ih_l0_reverse", "bias_ih_l0_reverse"]
    module = gated.MinLSTM(3, 4, bias=False)
    assert [(n, tuple(p.shape)) for n, p in module.named_parameters()] == [("weight_ih_l0", (12, 3))]
    assert module.layer_weights(0).w_hh is None


@pytest.mark.parametrize("chunk", [2, 4, 16])
def test_the_scan_in_chunks_of_chunks(chunk):
    # 40 steps in chunks of 4: 10 chunks, whose starts are scanned in 3 chunks, then in 1.
    a, b, h0 = torch.rand(40, 2, 3, dtype=torch.float64), torch.randn(40, 2, 3, dtype=torch.float64), torch.randn(2, 3)
    h0 = h0.double()
    h, want = h0, []
    for a_t, b_t in zip(a, b):
        h = a_t * h + b_t
        want.append(h)
    torch.testing.assert_close(linear_scan(a, b, h0, chunk), torch.stack(want))


def test_the_scan_differentiates_twice():
    a = torch.rand(20, 1, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(20, 1, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: linear_scan(*t, chunk=3), (a, b, h0))
    assert torch.autograd.gradgradcheck(lambda *t: linear_scan(*t, chunk=3), (a, b, h0))


@pytest.mark.parametrize("name", MODULES)
def test_packed_sequences_are_each_sequence_alone(name):
    module = _module(name, 3, 4, num_layers=2, bidirectional=True, spread=1.0)
    x, lengths = torch.randn(6, 3, 3), torch.tensor([6, 2, 4])
    hx = torch.randn(4, 3, 4)
    out, h_n = module(pack_padded_sequence(x, lengths, enforce_sorted=False), hx)
    out, _ = pad_packed_sequence(out)
    for b, n in enumerate(lengths.tolist()):
        alone, h_alone = module(x[:n, b:b + 1], hx[:, b:b + 1])
        torch.testing.assert_close(out[:n, b:b + 1], alone)
        torch.testing.assert_close(h_n[:, b:b + 1], h_alone)
        assert not out[n:, b].any()  # past its end a sequence has zero outputs


@pytest.mark.parametrize("name", MODULES)
def test_layer_options_and_shapes(name):
    module = _module(name, 3, 4, num_layers=3, bidirectional=True, batch_first=True)
    x = torch.randn(2, 5, 3)
    out, h_n = module(x)
    assert out.shape == (2, 5, 8) and h_n.shape == (6, 2, 4)
    time_major = _module(name, 3, 4, num_layers=3, bidirectional=True)
    torch.testing.assert_close(time_major(x.transpose(0, 1))[0].transpose(0, 1), out)
    unbatched, h_1 = module(x[0])
    torch.testing.assert_close(unbatched, out[0])
    assert h_1.shape == (6, 4)
    # One layer: the forward direction at t = 0 has seen x_0 only, the backward one the whole sequence.
    one = _module(name, 3, 4, bidirectional=True, batch_first=True)
    whole, first = one(x)[0], one(x[:, :1])[0]
    torch.testing.assert_close(first[:, 0, :4], whole[:, 0, :4])
    assert not torch.allclose(first[:, 0, 4:], whole[:, 0, 4:])


@pytest.mark.parametrize("name", MODULES)
def test_gradients_and_second_derivatives_are_right(name):
    # Packed, both directions; the scan's chunks are checked in test_the_scan_differentiates_twice.
    module = _module(name, 2, 2, bidirectional=True, dtype=torch.float64)
    names = [n for n, _ in module.named_parameters()]
    x = torch.randn(5, 2, 2, dtype=torch.float64, requires_grad=True)

    def run(x, *weights):
        packed = pack_padded_sequence(x, torch.tensor([5, 3]), enforce_sorted=False)
        return torch.func.functional_call(module, dict(zip(names, weights)), (packed,))[0].data

    inputs = (x, *[p.detach().clone().requires_grad_(True) for p in module.parameters()])
    assert torch.autograd.gradcheck(run, inputs)
    assert torch.autograd.gradgradcheck(run, inputs)


def test_trace_names_and_gates():
    x = torch.randn(9, 2, 3)
    gru = _module("min-gru", 3, 4, num_layers=2, spread=2.0)
    trace = gru.trace(x)
    assert trace.names == ("update", "candidate", "hidden") and trace.gates == ("update",)
    assert bool(((trace.update > 0) & (trace.update < 1)).all())
    torch.testing.assert_close(trace.of("hidden", layer=-1), gru(x)[0])

    lstm = _module("min-lstm", 3, 4, num_layers=2, spread=2.0)
    trace = lstm.trace(x)
    assert trace.names == ("forget", "input", "forget_share", "input_share", "candidate", "hidden")
    for gate in ("forget", "input", "forget_share", "input_share"):
        assert bool(((trace[gate] > 0) & (trace[gate] < 1)).all()), gate
    torch.testing.assert_close(trace.forget_share + trace.input_share, torch.ones_like(trace.forget))
    torch.testing.assert_close(trace.forget_share, trace.forget / (trace.forget + trace.input))
    torch.testing.assert_close(trace.of("hidden", layer=-1), lstm(x)[0])


@pytest.mark.parametrize("name", MODULES)
def test_streams_and_pickles(name):
    module = _module(name, 3, 4, num_layers=2).eval()
    x, h0 = torch.randn(6, 2, 3), torch.randn(2, 2, 4)
    want, h_n = module(x, h0)
    stream = module.stream(h0)
    torch.testing.assert_close(torch.stack([stream.step(x_t) for x_t in x]), want)
    torch.testing.assert_close(stream.state, h_n)
    clone = pickle.loads(pickle.dumps(module))
    torch.testing.assert_close(clone(x)[0], module(x)[0])


@pytest.mark.parametrize("name, kind", [("min-gru", "MIN_GRU"), ("min-lstm", "MIN_LSTM")])
def test_what_it_cannot_do_is_said(name, kind):
    cls = MODULES[name][0]
    x = torch.randn(2, 1, 3)
    with pytest.raises(RuntimeError, match=f"torch has no kernel for the {kind} cell"):
        cls(3, 4, engine="native")(x)
    with pytest.raises(RuntimeError, match="no torch.nn counterpart"):
        torch.jit.script(cls(3, 4))
    with pytest.raises(ValueError, match="proj_size"):  # as gated.GRU and torch.nn.GRU refuse it
        cls(3, 4, proj_size=2)


def test_trained_and_explained_from_the_command(tmp_path, capsys):
    from gated.cli import main

    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat and the dog sat on the log. " * 60, encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "charlm", "--model", "min-gru", "--data", str(text), "--hidden", "8",
                 "--seq-len", "16", "--batch-size", "4", "--steps", "2", "--ngram-order", "2",
                 "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["explain", str(run), "the cat"]) == 0
    out = capsys.readouterr().out
    # The summary names the cell as it was chosen, and the table reads its one gate by name.
    assert out.startswith("MIN-GRU read 7 characters")
    assert out.splitlines()[1].split()[-1] == "update"
