"""PeepholeLSTM: checked against the paper's equations written out here, and against torch.nn.LSTM.

The oracle below is written from Gers, Schraudolph and Schmidhuber (2002), gate by gate
with each gate's own weight matrices, not from ``cells.py``. With its peepholes at zero
the cell is the plain LSTM, so ``torch.nn.LSTM`` checks every layer option on top.
"""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import gated


def paper_peephole_lstm(module: gated.PeepholeLSTM, x: torch.Tensor) -> torch.Tensor:
    """One layer, one direction, time-major x (T, B, I), zero start: the top of page 118 of the paper."""
    H = module.hidden_size
    W_i, W_f, W_g, W_o = module.weight_ih_l0.split(H)
    U_i, U_f, U_g, U_o = module.weight_hh_l0.split(H)
    b = module.bias_ih_l0 + module.bias_hh_l0
    b_i, b_f, b_g, b_o = b.split(H)
    p_i, p_f, p_o = module.weight_ci_l0, module.weight_cf_l0, module.weight_co_l0
    h = c = x.new_zeros(x.size(1), H)
    outputs = []
    for x_t in x:
        i = torch.sigmoid(x_t @ W_i.T + h @ U_i.T + p_i * c + b_i)
        f = torch.sigmoid(x_t @ W_f.T + h @ U_f.T + p_f * c + b_f)
        c = f * c + i * torch.tanh(x_t @ W_g.T + h @ U_g.T + b_g)
        o = torch.sigmoid(x_t @ W_o.T + h @ U_o.T + p_o * c + b_o)  # the new c
        h = o * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs)


def test_matches_the_papers_equations():
    torch.manual_seed(0)
    module = gated.PeepholeLSTM(3, 5, dtype=torch.float64)
    with torch.no_grad():  # peepholes big enough to matter
        for name in ("weight_ci_l0", "weight_cf_l0", "weight_co_l0"):
            getattr(module, name).uniform_(-2, 2)
    x = torch.randn(9, 4, 3, dtype=torch.float64)
    torch.testing.assert_close(module(x)[0], paper_peephole_lstm(module, x))


def _plain_lstm_twins(**options):
    torch.manual_seed(0)
    theirs = nn.LSTM(3, 5, **options)
    ours = gated.PeepholeLSTM(3, 5, **options)
    missing, unexpected = ours.load_state_dict(theirs.state_dict(), strict=False)
    assert not unexpected and all(name.startswith(("weight_ci", "weight_cf", "weight_co")) for name in missing)
    with torch.no_grad():
        for name in missing:
            getattr(ours, name).zero_()
    return theirs, ours


@pytest.mark.parametrize("options", [
    dict(), dict(num_layers=2, bidirectional=True), dict(batch_first=True, bias=False), dict(num_layers=2, dropout=0.0),
], ids=["plain", "2-layer-bidirectional", "batch-first-no-bias", "2-layer"])
def test_with_closed_peepholes_it_is_torchs_lstm(options):
    theirs, ours = _plain_lstm_twins(**options)
    x = torch.randn(4, 7, 3) if options.get("batch_first") else torch.randn(7, 4, 3)
    want, got = theirs(x), ours(x)
    torch.testing.assert_close(got[0], want[0])
    for g, w in zip(got[1], want[1]):
        torch.testing.assert_close(g, w)


def test_packed_sequences_and_a_given_state_with_closed_peepholes():
    theirs, ours = _plain_lstm_twins(num_layers=2, bidirectional=True)
    x, lengths = torch.randn(6, 3, 3), torch.tensor([6, 2, 4])
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    hx = (torch.randn(4, 3, 5), torch.randn(4, 3, 5))
    want, got = theirs(packed, hx), ours(packed, hx)
    torch.testing.assert_close(pad_packed_sequence(got[0])[0], pad_packed_sequence(want[0])[0])
    for g, w in zip(got[1], want[1]):
        torch.testing.assert_close(g, w)


def test_gradients_and_second_derivatives_are_right():
    torch.manual_seed(0)
    module = gated.PeepholeLSTM(2, 3, dtype=torch.float64)
    names = [name for name, _ in module.named_parameters()]
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)

    def run(x, *weights):
        return torch.func.functional_call(module, dict(zip(names, weights)), (x,))[0]

    inputs = (x, *[p.detach().clone().requires_grad_(True) for p in module.parameters()])
    assert torch.autograd.gradcheck(run, inputs)
    assert torch.autograd.gradgradcheck(run, inputs)


def test_the_peepholes_learn():
    module = gated.PeepholeLSTM(3, 4)
    module(torch.randn(5, 2, 3))[0].sum().backward()
    for name in ("weight_ci_l0", "weight_cf_l0", "weight_co_l0"):
        assert getattr(module, name).grad.abs().sum() > 0, name


def test_trace_streams_and_pickle():
    torch.manual_seed(0)
    module = gated.PeepholeLSTM(3, 4, num_layers=2).eval()
    x = torch.randn(6, 2, 3)
    trace = module.trace(x)
    assert trace.names == ("input", "forget", "candidate", "output", "cell", "hidden")
    for gate in ("input", "forget", "output"):
        assert bool(((trace[gate] > 0) & (trace[gate] < 1)).all())
    torch.testing.assert_close(trace.of("hidden", layer=-1), module(x)[0])
    stream = module.stream()
    torch.testing.assert_close(torch.stack([stream.step(x_t) for x_t in x]), module(x)[0])
    clone = pickle.loads(pickle.dumps(module))
    torch.testing.assert_close(clone(x)[0], module(x)[0])


def test_what_it_cannot_do_is_said():
    with pytest.raises(ValueError, match="proj_size must be 0"):
        gated.PeepholeLSTM(3, 4, proj_size=2)
    with pytest.raises(RuntimeError, match="engine='native' cannot run here"):
        gated.PeepholeLSTM(3, 4, engine="native")(torch.randn(2, 1, 3))
    with pytest.raises(RuntimeError, match="no torch.nn counterpart"):
        torch.jit.script(gated.PeepholeLSTM(3, 4))


def test_trained_and_explained_from_the_command(tmp_path, capsys):
    from gated.cli import main

    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat and the dog sat on the log. " * 60, encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "charlm", "--model", "peephole-lstm", "--data", str(text), "--hidden", "8",
                 "--seq-len", "16", "--batch-size", "4", "--steps", "2", "--ngram-order", "2",
                 "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["explain", str(run), "the cat"]) == 0
    out = capsys.readouterr().out
    # The summary names the cell as it was chosen, and the table has the LSTM's gates by name.
    assert out.startswith("PEEPHOLE-LSTM read 7 characters")
    assert out.splitlines()[1].split()[-3:] == ["forget", "input", "output"]
