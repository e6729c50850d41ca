"""LayerNormLSTM and LayerNormGRU: checked against equations written out here, not against ``cells.py``.

The LSTM oracle follows Ba, Kiros and Hinton (2016), gate by gate with each gate's own
weight matrices and the norm computed by hand. The GRU oracle follows haste's
``LayerNormGRU`` (lmnt-com/haste) in haste's own layout (rows z, r, n; weights stored
transposed), so it also checks how torch's row order maps onto haste's. A norm is never
the identity, so there is no "switched off" twin in torch.nn: torch's weights are
checked to load, and every layer option against running the sequences one by one.
"""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import gated

EPS = 1e-5


def by_hand_norm(a: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Mean 0 and variance 1 over the last dimension (the biased variance, as in the paper), then gain and bias."""
    mean = a.mean(-1, keepdim=True)
    var = ((a - mean) ** 2).mean(-1, keepdim=True)
    out = (a - mean) / torch.sqrt(var + EPS) * gain
    return out if bias is None else out + bias


def paper_ln_lstm(module: gated.LayerNormLSTM, x: torch.Tensor, h=None, c=None) -> tuple:
    """One layer, one direction, time-major x (T, B, I): equations (20) to (22) of the paper."""
    H = module.hidden_size
    W = module.weight_ih_l0.split(H)  # W_i, W_f, W_g, W_o: each gate's own input weights
    U = module.weight_hh_l0.split(H)
    b = (module.bias_ih_l0 + module.bias_hh_l0).split(H)  # one bias per gate, after the norms
    h = x.new_zeros(x.size(1), H) if h is None else h
    c = x.new_zeros(x.size(1), H) if c is None else c
    outputs = []
    for x_t in x:
        # The norm runs over all four gates' pre-activations together.
        wx = by_hand_norm(torch.cat([x_t @ W_k.T for W_k in W], -1), module.ln_weight_ih_l0, module.ln_bias_ih_l0)
        uh = by_hand_norm(torch.cat([h @ U_k.T for U_k in U], -1), module.ln_weight_hh_l0, module.ln_bias_hh_l0)
        i, f, g, o = (a + b_k for a, b_k in zip((wx + uh).split(H, -1), b))
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(by_hand_norm(c, module.ln_weight_c_l0, module.ln_bias_c_l0))
        outputs.append(h)
    return torch.stack(outputs), h, c


def haste_ln_gru(module: gated.LayerNormGRU, x: torch.Tensor, h=None) -> torch.Tensor:
    """One layer, one direction: haste's LayerNormGRU loop, with our weights put in haste's layout."""
    H = module.hidden_size

    def to_haste(rows: torch.Tensor) -> torch.Tensor:  # torch's r, z, n -> haste's z, r, n
        r, z, n = rows.split(H)
        return torch.cat([z, r, n])

    kernel, recurrent_kernel = to_haste(module.weight_ih_l0).T, to_haste(module.weight_hh_l0).T
    bias, recurrent_bias = to_haste(module.bias_ih_l0), to_haste(module.bias_hh_l0)
    gamma = torch.stack([to_haste(module.ln_weight_ih_l0), to_haste(module.ln_weight_hh_l0)])
    h = x.new_zeros(x.size(1), H) if h is None else h
    outputs = []
    for x_t in x:
        vx = (by_hand_norm(x_t @ kernel, gamma[0]) + bias).split(H, -1)
        vh = (by_hand_norm(h @ recurrent_kernel, gamma[1]) + recurrent_bias).split(H, -1)
        z = torch.sigmoid(vx[0] + vh[0])
        r = torch.sigmoid(vx[1] + vh[1])
        g = torch.tanh(vx[2] + r * vh[2])
        h = z * h + (1 - z) * g
        outputs.append(h)
    return torch.stack(outputs)


def _with_random_norms(module):
    """Gains and biases away from 1 and 0, so that a norm applied in the wrong place shows."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.startswith("ln_weight"):
                p.uniform_(0.5, 2.0)
            elif name.startswith("ln_bias"):
                p.normal_(0, 0.5)
    return module


def test_lstm_matches_the_papers_equations():
    torch.manual_seed(0)
    module = _with_random_norms(gated.LayerNormLSTM(3, 5, dtype=torch.float64))
    x = torch.randn(9, 4, 3, dtype=torch.float64)
    h0, c0 = torch.randn(1, 4, 5, dtype=torch.float64), torch.randn(1, 4, 5, dtype=torch.float64)
    out, (h_n, c_n) = module(x, (h0, c0))
    want_out, want_h, want_c = paper_ln_lstm(module, x, h0[0], c0[0])
    torch.testing.assert_close(out, want_out)
    torch.testing.assert_close(h_n[0], want_h)
    torch.testing.assert_close(c_n[0], want_c)  # the carried cell state, not its normalised copy


def test_gru_matches_hastes_equations():
    torch.manual_seed(0)
    module = _with_random_norms(gated.LayerNormGRU(3, 5, dtype=torch.float64))
    x, h0 = torch.randn(9, 4, 3, dtype=torch.float64), torch.randn(1, 4, 5, dtype=torch.float64)
    out, h_n = module(x, h0)
    want = haste_ln_gru(module, x, h0[0])
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(h_n[0], want[-1])


@pytest.mark.parametrize("cls", [gated.LayerNormLSTM, gated.LayerNormGRU])
def test_the_norms_make_the_weights_scale_free(cls):
    # The defining property of the norms: scaling W_ih or W_hh by a constant changes nothing
    # (up to the norm's epsilon, which matters less as the weights grow).
    torch.manual_seed(0)
    module = _with_random_norms(cls(3, 4, dtype=torch.float64))
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    before = module(x)[0]
    with torch.no_grad():
        module.weight_ih_l0.mul_(10.0)
        module.weight_hh_l0.mul_(10.0)
    torch.testing.assert_close(module(x)[0], before, atol=1e-3, rtol=0)


@pytest.mark.parametrize("ours, theirs, norms", [
    (gated.LayerNormLSTM, nn.LSTM, {"ln_weight_ih", "ln_bias_ih", "ln_weight_hh", "ln_bias_hh", "ln_weight_c",
                                    "ln_bias_c"}),
    (gated.LayerNormGRU, nn.GRU, {"ln_weight_ih", "ln_weight_hh"}),
], ids=["lstm", "gru"])
def test_a_torch_state_dict_loads_and_only_the_norms_are_new(ours, theirs, norms):
    torch.manual_seed(0)
    trained = theirs(3, 4, num_layers=2, bidirectional=True)
    module = ours(3, 4, num_layers=2, bidirectional=True)
    missing, unexpected = module.load_state_dict(trained.state_dict(), strict=False)
    assert not unexpected
    suffixes = ("_l0", "_l0_reverse", "_l1", "_l1_reverse")
    assert set(missing) == {name + suffix for name in norms for suffix in suffixes}
    for name, value in trained.state_dict().items():
        assert torch.equal(getattr(module, name), value), name
    for name in missing:  # a fresh norm: gain 1, bias 0
        want = 1.0 if name.startswith("ln_weight") else 0.0
        assert bool((getattr(module, name) == want).all()), name


@pytest.mark.parametrize("cls", [gated.LayerNormLSTM, gated.LayerNormGRU])
def test_packed_input_is_each_sequence_run_alone(cls):
    torch.manual_seed(0)
    module = _with_random_norms(cls(3, 4, num_layers=2, bidirectional=True))
    x, lengths = torch.randn(6, 3, 3), torch.tensor([6, 2, 4])
    states = (torch.randn(4, 3, 4),) * (2 if cls is gated.LayerNormLSTM else 1)
    hx = states if len(states) == 2 else states[0]
    out, final = module(pack_padded_sequence(x, lengths, enforce_sorted=False), hx)
    out, _ = pad_packed_sequence(out)
    final = final if isinstance(final, tuple) else (final,)
    for b, n in enumerate(lengths.tolist()):
        alone_hx = tuple(s[:, b:b + 1] for s in states)
        alone_out, alone_final = module(x[:n, b:b + 1], alone_hx if len(states) == 2 else alone_hx[0])
        alone_final = alone_final if isinstance(alone_final, tuple) else (alone_final,)
        torch.testing.assert_close(out[:n, b], alone_out[:, 0])
        assert bool((out[n:, b] == 0).all())  # padding stays zero
        for got, want in zip(final, alone_final):
            torch.testing.assert_close(got[:, b], want[:, 0])


@pytest.mark.parametrize("cls", [gated.LayerNormLSTM, gated.LayerNormGRU])
@pytest.mark.parametrize("options", [
    {}, {"num_layers": 2, "bidirectional": True}, {"batch_first": True, "bias": False}, {"num_layers": 3},
], ids=["plain", "2-layer-bidirectional", "batch-first-no-bias", "3-layer"])
def test_layer_options_give_torchs_shapes(cls, options):
    torch.manual_seed(0)
    module = cls(3, 5, **options)
    twin = (nn.LSTM if cls is gated.LayerNormLSTM else nn.GRU)(3, 5, **options)
    x = torch.randn(4, 7, 3)
    got, want = module(x), twin(x)
    assert got[0].shape == want[0].shape
    got_states = got[1] if isinstance(got[1], tuple) else (got[1],)
    want_states = want[1] if isinstance(want[1], tuple) else (want[1],)
    assert [s.shape for s in got_states] == [s.shape for s in want_states]
    # Unbatched input: the same as a batch of one.
    seq, batch_dim = torch.randn(7, 3), 0 if options.get("batch_first") else 1
    torch.testing.assert_close(module(seq)[0], module(seq.unsqueeze(batch_dim))[0].squeeze(batch_dim))


@pytest.mark.parametrize("cls", [gated.LayerNormLSTM, gated.LayerNormGRU])
def test_dropout_acts_between_layers_only_while_training(cls):
    torch.manual_seed(0)
    module = cls(3, 4, num_layers=2, dropout=0.5)
    x = torch.randn(5, 2, 3)
    evaluated = module.eval()(x)[0]
    torch.testing.assert_close(module(x)[0], evaluated)
    assert not torch.allclose(module.train()(x)[0], evaluated)
    with pytest.raises(ValueError):
        cls(3, 4, num_layers=2, dropout=1.5)


@pytest.mark.parametrize("cls", [gated.LayerNormLSTM, gated.LayerNormGRU])
def test_gradients_and_second_derivatives_are_right(cls):
    torch.manual_seed(0)
    module = _with_random_norms(cls(2, 3, dtype=torch.float64))
    names = [name for name, _ in module.named_parameters()]
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)

    def run(x, *weights):
        return torch.func.functional_call(module, dict(zip(names, weights)), (x,))[0]

    inputs = (x, *[p.detach().clone().requires_grad_(True) for p in module.parameters()])
    assert torch.autograd.gradcheck(run, inputs)
    assert torch.autograd.gradgradcheck(run, inputs)


@pytest.mark.parametrize("cls", [gated.LayerNormLSTM, gated.LayerNormGRU])
def test_the_norms_learn(cls):
    module = _with_random_norms(cls(3, 4))
    module(torch.randn(5, 2, 3))[0].sum().backward()
    for name, p in module.named_parameters():
        if name.startswith("ln_"):
            assert p.grad.abs().sum() > 0, name


def test_lstm_trace_shows_the_normalised_cell_and_carries_the_raw_one():
    torch.manual_seed(0)
    module = gated.LayerNormLSTM(3, 6, num_layers=2).eval()  # fresh norms: gain 1, bias 0
    x = torch.randn(6, 2, 3)
    trace = module.trace(x)
    assert trace.names == ("input", "forget", "candidate", "output", "cell", "cell_normalized", "hidden")
    for gate in ("input", "forget", "output"):
        assert bool(((trace[gate] > 0) & (trace[gate] < 1)).all())
    normalized, cell = trace["cell_normalized"], trace["cell"]
    torch.testing.assert_close(normalized.mean(-1), torch.zeros_like(normalized.mean(-1)), atol=1e-5, rtol=0)
    torch.testing.assert_close(normalized.var(-1, unbiased=False), torch.ones_like(cell[..., 0]), atol=1e-3, rtol=0)
    assert cell.mean(-1).abs().max() > 1e-2  # what is carried is not normalised
    torch.testing.assert_close(trace["hidden"], trace["output"] * torch.tanh(normalized))
    out, (_, c_n) = module(x)
    torch.testing.assert_close(trace.of("hidden", layer=-1), out)
    torch.testing.assert_close(trace.of("cell", layer=-1)[-1], c_n[-1])


def test_gru_trace_has_the_guides_names():
    torch.manual_seed(0)
    module = gated.LayerNormGRU(3, 4).eval()
    x = torch.randn(6, 2, 3)
    trace = module.trace(x)
    assert trace.names == ("reset", "update", "candidate", "hidden")
    for gate in ("reset", "update"):
        assert bool(((trace[gate] > 0) & (trace[gate] < 1)).all())
    torch.testing.assert_close(trace.of("hidden", layer=-1), module(x)[0])


@pytest.mark.parametrize("cls", [gated.LayerNormLSTM, gated.LayerNormGRU])
def test_streams_and_pickles(cls):
    torch.manual_seed(0)
    module = _with_random_norms(cls(3, 4, num_layers=2)).eval()
    x = torch.randn(6, 2, 3)
    want = module(x)[0]
    stream = module.stream()
    torch.testing.assert_close(torch.stack([stream.step(x_t) for x_t in x]), want)
    clone = pickle.loads(pickle.dumps(module))
    assert type(clone) is cls and clone.kind is module.kind
    torch.testing.assert_close(clone(x)[0], want)


@pytest.mark.parametrize("cls, kind", [(gated.LayerNormLSTM, "LAYER_NORM_LSTM"), (gated.LayerNormGRU, "LAYER_NORM_GRU")])
def test_what_they_cannot_do_is_said(cls, kind):
    with pytest.raises(RuntimeError, match=f"torch has no kernel for the {kind} cell"):
        cls(3, 4, engine="native")(torch.randn(2, 1, 3))
    with pytest.raises(RuntimeError, match="no torch.nn counterpart"):
        torch.jit.script(cls(3, 4))
    with pytest.raises(ValueError, match="proj_size"):
        cls(3, 4, proj_size=2)
    # The reference engine, named or chosen, runs them.
    x = torch.randn(2, 1, 3)
    assert cls(3, 4, engine="reference")(x)[0].shape == cls(3, 4)(x)[0].shape == (2, 1, 4)


def test_trained_and_explained_from_the_command(tmp_path, capsys):
    from gated.cli import main

    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat and the dog sat on the log. " * 60, encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "charlm", "--model", "ln-gru", "--data", str(text), "--hidden", "8",
                 "--seq-len", "16", "--batch-size", "4", "--steps", "2", "--ngram-order", "2",
                 "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["explain", str(run), "the cat"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("LN-GRU read 7 characters")
    assert out.splitlines()[1].split()[-2:] == ["reset", "update"]
