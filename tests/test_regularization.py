"""Recurrent dropout (Gal and Ghahramani 2016) and zoneout (Krueger et al. 2017).

Every check recomputes what the papers define in the test itself, from the weights, the
input and the masks the trace shows, or with torch.nn's own cells: never through ``cells.py``.

    recurrent dropout: gates = W_ih x + b_ih + W_hh (m ⊙ h_prev) + b_hh, one m per sequence,
                       layer and direction, m_j in {0, 1/(1-p)}; nothing dropped in eval
    zoneout:           s = d ⊙ s_prev + (1 - d) ⊙ s_new, d ~ Bernoulli(p) per step (training);
                       s = p s_prev + (1 - p) s_new (eval)
"""

from __future__ import annotations

import copy
import json
import pickle

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import gated
from gated.cli import main
from gated.engines import choose, fused, native

F64 = torch.float64

# Every module over time that takes both settings, with its size arguments.
MODULES = {
    "lstm": gated.LSTM, "gru": gated.GRU, "rnn": gated.RNN, "peephole-lstm": gated.PeepholeLSTM,
    "ln-lstm": gated.LayerNormLSTM, "ln-gru": gated.LayerNormGRU,
}
HAS_CELL = {"lstm", "peephole-lstm", "ln-lstm"}


def _module(name: str, **options) -> nn.Module:
    torch.manual_seed(0)
    module = MODULES[name](3, 6, dtype=F64, **options)
    with torch.no_grad():  # peepholes and norms away from their start, so that they matter
        for param_name, param in module.named_parameters():
            if param_name.startswith(("weight_c", "ln_")):
                param.uniform_(0.5, 1.5)
    return module


def _plain_twin(module: nn.Module, name: str, **options) -> nn.Module:
    """The same module and weights without recurrent regularisation."""
    twin = MODULES[name](3, 6, dtype=F64, **options)
    twin.load_state_dict(module.state_dict())
    return twin


# -- recurrent dropout: the mask ------------------------------------------------------------------


def test_the_recurrent_mask_is_the_same_at_every_step_and_new_for_each_sequence_layer_and_direction():
    p = 0.3
    lstm = gated.LSTM(3, 32, num_layers=2, bidirectional=True, recurrent_dropout=p).train()
    trace = lstm.trace(torch.randn(7, 5, 3))
    mask = trace.recurrent_mask  # (layers * directions, T, B, H)
    assert mask.shape == (4, 7, 5, 32)
    assert torch.equal(mask, mask[:, :1].expand_as(mask))  # one mask for the whole sequence
    first = mask[:, 0]  # (4, B, H)
    for a in range(4):
        for b in range(a + 1, 4):
            assert not torch.equal(first[a], first[b])  # each layer and direction draws its own
    for k in range(4):
        assert all(not torch.equal(first[k, 0], first[k, b]) for b in range(1, 5))  # and each sequence
    assert mask.unique().tolist() == pytest.approx([0.0, 1 / (1 - p)])


def test_about_p_of_the_units_are_dropped():
    p = 0.3
    gru = gated.GRU(2, 64, recurrent_dropout=p).train()
    mask = gru.trace(torch.randn(2, 1000, 2)).recurrent_mask[0, 0]
    assert (mask == 0).float().mean().item() == pytest.approx(p, abs=0.01)  # 64 000 draws: sd 0.0018
    assert mask.mean().item() == pytest.approx(1.0, abs=0.02)  # inverted dropout keeps the scale


def test_with_a_projection_the_mask_has_the_projected_size():
    lstm = gated.LSTM(3, 8, proj_size=3, recurrent_dropout=0.5).train()
    trace = lstm.trace(torch.randn(4, 2, 3))
    assert trace.recurrent_mask.shape == (1, 4, 2, 3)
    h, c = lstm(torch.randn(4, 2, 3))[1]
    assert h.shape == (1, 2, 3) and c.shape == (1, 2, 8)


def test_nothing_is_dropped_or_recorded_in_eval():
    lstm = gated.LSTM(3, 5, recurrent_dropout=0.5).eval()
    trace = lstm.trace(torch.randn(4, 2, 3))
    assert trace.names == ("input", "forget", "candidate", "output", "cell", "hidden")


# -- recurrent dropout: the gates, recomputed ------------------------------------------------------


def _sig(v):
    return torch.sigmoid(v)


def test_lstm_gates_read_the_masked_hidden_state():
    lstm = gated.LSTM(3, 6, recurrent_dropout=0.4, dtype=F64).train()
    x = torch.randn(5, 4, 3, dtype=F64)
    with torch.no_grad():
        trace = lstm.trace(x)
        mask = trace.recurrent_mask[0]
        h, c = torch.zeros(4, 6, dtype=F64), torch.zeros(4, 6, dtype=F64)
        unmasked_differs = False
        for t in range(5):
            share_x = x[t] @ lstm.weight_ih_l0.T + lstm.bias_ih_l0
            i, f, g, o = (share_x + (mask[t] * h) @ lstm.weight_hh_l0.T + lstm.bias_hh_l0).chunk(4, -1)
            plain_i = (share_x + h @ lstm.weight_hh_l0.T + lstm.bias_hh_l0).chunk(4, -1)[0]
            unmasked_differs |= not torch.allclose(_sig(plain_i), trace.input[0, t])
            for name, value in (("input", _sig(i)), ("forget", _sig(f)), ("candidate", torch.tanh(g)),
                                ("output", _sig(o))):
                torch.testing.assert_close(trace[name][0, t], value)
            c = _sig(f) * c + _sig(i) * torch.tanh(g)  # the cell state itself is not masked
            h = _sig(o) * torch.tanh(c)
            torch.testing.assert_close(trace.cell[0, t], c)
            torch.testing.assert_close(trace.hidden[0, t], h)
    assert unmasked_differs


def test_gru_masks_only_what_w_hh_reads_and_interpolates_with_the_unmasked_state():
    gru = gated.GRU(3, 6, recurrent_dropout=0.4, dtype=F64).train()
    x = torch.randn(5, 4, 3, dtype=F64)
    with torch.no_grad():
        trace = gru.trace(x)
        mask = trace.recurrent_mask[0]
        h = torch.zeros(4, 6, dtype=F64)
        for t in range(5):
            x_r, x_z, x_n = (x[t] @ gru.weight_ih_l0.T + gru.bias_ih_l0).chunk(3, -1)
            h_r, h_z, h_n = ((mask[t] * h) @ gru.weight_hh_l0.T + gru.bias_hh_l0).chunk(3, -1)
            r, z = _sig(x_r + h_r), _sig(x_z + h_z)
            n = torch.tanh(x_n + r * h_n)
            new = (1 - z) * n + z * h  # h_prev as it is
            torch.testing.assert_close(trace.reset[0, t], r)
            torch.testing.assert_close(trace.update[0, t], z)
            torch.testing.assert_close(trace.hidden[0, t], new)
            if t > 0:  # interpolating with the masked state would give something else
                assert not torch.allclose((1 - z) * n + z * mask[t] * h, new)
            h = new


def test_rnn_reads_the_masked_hidden_state():
    rnn = gated.RNN(3, 6, nonlinearity="relu", recurrent_dropout=0.4, dtype=F64).train()
    x = torch.randn(5, 4, 3, dtype=F64)
    with torch.no_grad():
        trace = rnn.trace(x)
        h = torch.zeros(4, 6, dtype=F64)
        for t in range(5):
            m = trace.recurrent_mask[0, t]
            h = torch.relu(x[t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + (m * h) @ rnn.weight_hh_l0.T + rnn.bias_hh_l0)
            torch.testing.assert_close(trace.hidden[0, t], h)


@pytest.mark.parametrize("name", MODULES)
def test_every_cell_equals_its_plain_twin_with_w_hh_scaled_by_the_mask(name):
    """With one sequence, W_hh (m ⊙ h) is (W_hh diag m) h: a twin without dropout, W_hh's columns scaled by m."""
    options = dict(num_layers=2, bidirectional=True)
    module = _module(name, recurrent_dropout=0.5, **options).train()
    x = torch.randn(6, 1, 3, dtype=F64)
    with torch.no_grad():
        trace = module.trace(x)
        twin = _plain_twin(module, name, **options)
        for layer in range(2):
            for direction, suffix in enumerate(("", "_reverse")):
                mask = trace.of("recurrent_mask", layer, direction)[0, 0]  # (H,)
                getattr(twin, f"weight_hh_l{layer}{suffix}").mul_(mask)
        out, _ = twin(x)
    torch.testing.assert_close(trace.output, out)
    assert not torch.allclose(module.eval()(x)[0], out)  # the mask did change something


@pytest.mark.parametrize("twin", [nn.LSTM, nn.GRU, nn.RNN])
def test_in_eval_recurrent_dropout_is_torch_nn_with_the_same_weights(twin):
    torch.manual_seed(0)
    theirs = twin(3, 5, num_layers=2, bidirectional=True)
    ours = getattr(gated, twin.__name__)(3, 5, num_layers=2, bidirectional=True, recurrent_dropout=0.5)
    ours.load_state_dict(theirs.state_dict())  # strict: the setting adds no parameter
    x = torch.randn(7, 3, 3)
    expected = theirs.eval()(x)
    got = ours.eval()(x)
    torch.testing.assert_close(got[0], expected[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got[1], expected[1], atol=1e-5, rtol=1e-5)


# -- zoneout ---------------------------------------------------------------------------------------


def test_lstm_zoneout_in_eval_is_the_expectation_over_torch_nn_lstm_cell():
    p_cell, p_hidden = 0.3, 0.2
    torch.manual_seed(0)
    cell = nn.LSTMCell(3, 5)
    lstm = gated.LSTM(3, 5, zoneout=(p_cell, p_hidden))
    lstm.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    x = torch.randn(8, 4, 3)
    h = c = torch.zeros(4, 5)
    outputs = []
    for x_t in x:
        h_new, c_new = cell(x_t, (h, c))
        h, c = p_hidden * h + (1 - p_hidden) * h_new, p_cell * c + (1 - p_cell) * c_new
        outputs.append(h)
    out, (h_n, c_n) = lstm.eval()(x)
    torch.testing.assert_close(out, torch.stack(outputs), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h_n[0], h, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c_n[0], c, atol=1e-5, rtol=1e-5)


def test_gru_zoneout_in_eval_is_the_expectation_over_torch_nn_gru_cell():
    p = 0.25
    torch.manual_seed(0)
    cell = nn.GRUCell(3, 5)
    gru = gated.GRU(3, 5, zoneout=p)
    gru.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    x = torch.randn(8, 4, 3)
    h = torch.zeros(4, 5)
    outputs = []
    for x_t in x:
        h = p * h + (1 - p) * cell(x_t, h)
        outputs.append(h)
    torch.testing.assert_close(gru.eval()(x)[0], torch.stack(outputs), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", MODULES)
def test_every_cell_in_eval_mixes_its_plain_step_with_the_previous_state(name):
    zoneout = (0.3, 0.2) if name in HAS_CELL else 0.2
    module = _module(name, zoneout=zoneout).eval()
    plain = _plain_twin(module, name)
    x = torch.randn(6, 2, 3, dtype=F64)
    p = dict(zip(("cell", "hidden"), zoneout)) if name in HAS_CELL else {"hidden": zoneout}
    state = None
    outputs = []
    with torch.no_grad():
        for x_t in x:
            _, new = plain(x_t[None], state)
            if state is None:
                state = tuple(torch.zeros_like(s) for s in new) if isinstance(new, tuple) else torch.zeros_like(new)
            if isinstance(new, tuple):  # (h, c)
                state = tuple(p[n] * s + (1 - p[n]) * s_new for n, s, s_new in zip(("hidden", "cell"), state, new))
                outputs.append(state[0][0])
            else:
                state = p["hidden"] * state + (1 - p["hidden"]) * new
                outputs.append(state[0])
        torch.testing.assert_close(module(x)[0], torch.stack(outputs))


@pytest.mark.parametrize("name", MODULES)
def test_in_training_each_unit_is_the_previous_or_the_new_value_and_about_p_keep_the_old(name):
    zoneout = (0.3, 0.2) if name in HAS_CELL else 0.2
    module = _module(name, zoneout=zoneout).train()
    plain = _plain_twin(module, name)
    x = torch.randn(12, 400, 3, dtype=F64)
    p = dict(zip(("cell", "hidden"), zoneout)) if name in HAS_CELL else {"hidden": zoneout}
    states = list(p)
    with torch.no_grad():
        trace = module.trace(x)
        assert torch.equal(trace.output, trace.hidden[0])  # the output is the zoned h
        prev = {n: torch.zeros_like(trace[n][0, 0]) for n in states}
        for t in range(12):
            hx = (prev["hidden"][None], prev["cell"][None]) if "cell" in p else prev["hidden"][None]
            _, new = plain(x[t : t + 1], hx)
            new = dict(zip(("hidden", "cell"), new)) if "cell" in p else {"hidden": new}
            for n in states:
                kept = trace[f"zoneout_{n}"][0, t].bool()
                expected = torch.where(kept, prev[n], new[n][0])
                torch.testing.assert_close(trace[n][0, t], expected)  # exactly one of the two, unit by unit
                prev[n] = trace[n][0, t]
    for n in states:
        masks = trace[f"zoneout_{n}"][0]
        assert masks.mean().item() == pytest.approx(p[n], abs=0.01)  # 12 * 400 * 6 draws
        assert not torch.equal(masks[0], masks[1])  # a fresh mask at every step


def test_zoneout_and_recurrent_dropout_together_record_every_mask():
    lstm = gated.LSTM(3, 5, num_layers=2, recurrent_dropout=0.2, zoneout=(0.1, 0.05)).train()
    trace = lstm.trace(torch.randn(4, 2, 3))
    assert {"recurrent_mask", "zoneout_hidden", "zoneout_cell"} <= set(trace.names)
    assert set(trace.zoneout_cell.unique().tolist()) <= {0.0, 1.0}
    assert trace.forget_gate is trace.forget  # the guide's names are as they were
    gru = gated.GRU(3, 5, zoneout=0.1).train()
    assert "zoneout_cell" not in gru.trace(torch.randn(4, 2, 3)).names


# -- randomness, gradients, packing ------------------------------------------------------------------


@pytest.mark.parametrize("options", [dict(recurrent_dropout=0.3), dict(zoneout=(0.2, 0.1))])
def test_the_same_seed_gives_the_same_result_and_another_seed_another(options):
    lstm = gated.LSTM(3, 8, num_layers=2, **options).train()
    x = torch.randn(6, 4, 3)
    results = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        results.append(lstm(x)[0])
    assert torch.equal(results[0], results[1])
    assert not torch.allclose(results[0], results[2])


@pytest.mark.parametrize("name, options", [
    ("lstm", dict(recurrent_dropout=0.3, zoneout=(0.2, 0.1))),
    ("gru", dict(recurrent_dropout=0.3, zoneout=0.2)),
    ("ln-lstm", dict(recurrent_dropout=0.3, zoneout=0.2)),
])
def test_gradients_are_right_with_the_masks_held_fixed(name, options):
    torch.manual_seed(0)
    module = MODULES[name](2, 3, dtype=F64, **options).train()
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in module.parameters()]
    x = torch.randn(4, 2, 2, dtype=F64, requires_grad=True)

    def run(x, *weights):
        torch.manual_seed(11)  # the same masks at every evaluation gradcheck makes
        out, state = torch.func.functional_call(module, dict(zip(names, weights)), (x,))
        return (out, *state) if isinstance(state, tuple) else (out, state)

    assert torch.autograd.gradcheck(run, (x, *params))
    out = run(x, *params)[0]
    torch.manual_seed(11)
    assert torch.equal(out, run(x, *params)[0])


@pytest.mark.parametrize("options", [dict(recurrent_dropout=0.4), dict(zoneout=(0.3, 0.2))])
def test_packed_input_keeps_each_finished_sequence_in_its_state(options):
    lstm = gated.LSTM(3, 5, bidirectional=True, **options).train()
    x = torch.randn(6, 3, 3)
    lengths = torch.tensor([6, 2, 4])
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    torch.manual_seed(1)
    trace = lstm.trace(packed)
    out, _ = pad_packed_sequence(trace.output)
    h_n, c_n = trace.state
    for b, length in enumerate(lengths.tolist()):
        torch.testing.assert_close(h_n[0, b], out[length - 1, b, :5])  # forward: the last real step
        torch.testing.assert_close(h_n[1, b], out[0, b, 5:])  # backward: the first
        torch.testing.assert_close(c_n[0, b], trace.cell[0, length - 1, b])
        assert (trace.hidden[:, length:, b] == 0).all()
    torch.manual_seed(1)
    torch.testing.assert_close(pad_packed_sequence(lstm(packed)[0])[0], out)  # forward is the same call


def test_packed_input_in_eval_is_each_sequence_alone():
    gru = gated.GRU(3, 5, zoneout=0.3, recurrent_dropout=0.5).eval()
    x = torch.randn(6, 3, 3)
    lengths = torch.tensor([6, 2, 4])
    out, h_n = gru(pack_padded_sequence(x, lengths, enforce_sorted=False))
    out = pad_packed_sequence(out)[0]
    for b, length in enumerate(lengths.tolist()):
        alone, h_alone = gru(x[:length, b])
        torch.testing.assert_close(out[:length, b], alone)
        torch.testing.assert_close(h_n[:, b], h_alone)


# -- engines and streams -----------------------------------------------------------------------------


REGULARIZED = pytest.mark.parametrize("options, training", [
    (dict(recurrent_dropout=0.3), True), (dict(zoneout=0.2), True), (dict(zoneout=0.2), False),
])


@REGULARIZED
@pytest.mark.parametrize("cls, engine", [
    (gated.LSTM, "native"), (gated.GRU, "native"), (gated.PeepholeLSTM, "fused"), (gated.LayerNormLSTM, "fused"),
])
def test_engines_without_them_refuse_where_the_setting_changes_the_result(cls, engine, options, training):
    module = cls(3, 5, engine=engine, **options).train(training)
    word = "recurrent dropout" if "recurrent_dropout" in options else "zoneout"
    with pytest.raises(RuntimeError, match=f"engine='{engine}' cannot run here: {word}.*runs on the reference engine"):
        module(torch.randn(4, 2, 3))


@REGULARIZED
@pytest.mark.parametrize("cls, engine", [(gated.LSTM, "fused"), (gated.GRU, "fused"), (gated.PeepholeLSTM, "reference")])
def test_auto_runs_the_fused_engine_where_its_kernels_have_them_else_the_reference(cls, engine, options, training):
    auto = cls(3, 5, **options).train(training)
    named = cls(3, 5, engine=engine, **options).train(training)
    named.load_state_dict(auto.state_dict())
    x = torch.randn(4, 2, 3)
    assert choose(auto.spec(), x) == engine
    torch.manual_seed(2)
    expected = named(x)[0]
    torch.manual_seed(2)
    torch.testing.assert_close(auto(x)[0], expected, rtol=0, atol=0)


def test_recurrent_dropout_in_eval_leaves_the_fast_engines_free():
    lstm = gated.LSTM(3, 5, recurrent_dropout=0.3).eval()
    x = torch.randn(4, 2, 3)
    assert native.supports(lstm.spec(), x, False) is None
    assert fused.supports(lstm.spec(), x, False) is None
    assert lstm.spec().regularization is None
    assert "recurrent dropout" in lstm.train().spec().regularization


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_a_stream_follows_zoneouts_expectation_even_from_a_module_in_training(name):
    module = _module(name, zoneout=0.3, recurrent_dropout=0.5).float()
    x = torch.randn(6, 2, 3)
    expected = module.eval()(x)[0]
    stream = module.train().stream()
    got = torch.stack([stream.step(x_t) for x_t in x])
    torch.testing.assert_close(got, expected[:, :, -module.hidden_size:])
    assert module.training  # the stream did not change the module's mode


# -- the module: settings, repr, state_dict, copies, errors -------------------------------------------


def test_off_by_default_and_not_in_the_state_dict():
    plain, regular = gated.LSTM(3, 5), gated.LSTM(3, 5, recurrent_dropout=0.2, zoneout=(0.1, 0.05))
    assert plain.recurrent_dropout == 0.0 and plain.zoneout == 0.0
    assert list(plain.state_dict()) == list(regular.state_dict()) == list(nn.LSTM(3, 5).state_dict())
    assert "recurrent_dropout" not in repr(plain) and "zoneout" not in repr(plain)
    assert repr(regular) == "LSTM(3, 5, recurrent_dropout=0.2, zoneout=(0.1, 0.05))"
    assert repr(gated.GRU(3, 5, zoneout=0.1)) == "GRU(3, 5, zoneout=0.1)"


@pytest.mark.parametrize("copied", [lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy])
def test_the_settings_survive_pickle_and_deepcopy(copied):
    lstm = gated.LayerNormLSTM(3, 5, recurrent_dropout=0.2, zoneout=(0.1, 0.05))
    twin = copied(lstm)
    assert twin.recurrent_dropout == 0.2 and twin.zoneout == (0.1, 0.05)
    x = torch.randn(4, 2, 3)
    torch.manual_seed(3)
    expected = lstm(x)[0]
    torch.manual_seed(3)
    torch.testing.assert_close(twin(x)[0], expected)


@pytest.mark.parametrize("cls, options, message", [
    (gated.LSTM, dict(recurrent_dropout=1.0), r"recurrent_dropout must be a probability in \[0, 1\)"),
    (gated.LSTM, dict(recurrent_dropout=-0.1), r"recurrent_dropout must be a probability in \[0, 1\)"),
    (gated.GRU, dict(recurrent_dropout=float("nan")), r"recurrent_dropout must be a probability"),
    (gated.RNN, dict(recurrent_dropout="0.1"), r"recurrent_dropout must be a probability"),
    (gated.LSTM, dict(zoneout=1.0), r"zoneout's probabilities must be in \[0, 1\)"),
    (gated.LSTM, dict(zoneout=(0.1, -0.2)), r"zoneout's probabilities must be in \[0, 1\)"),
    (gated.LSTM, dict(zoneout=(0.1, 0.2, 0.3)), r"one probability for every state or a pair \(p_cell, p_hidden\)"),
    (gated.GRU, dict(zoneout=(0.1, 0.2)), r"GRU cell has no cell state.*pass one float"),
    (gated.RNN, dict(zoneout=(0.1, 0.0)), r"RNN_TANH cell has no cell state.*pass one float"),
    (gated.LayerNormGRU, dict(zoneout=(0.1, 0.2)), r"no cell state"),
    (gated.MinGRU, dict(recurrent_dropout=0.1), r"MIN_GRU cell has no W_hh.*nothing is fed back"),
    (gated.MinLSTM, dict(recurrent_dropout=0.1), r"MIN_LSTM cell has no W_hh.*nothing is fed back"),
    (gated.MinGRU, dict(zoneout=0.1), r"MIN_GRU cell has none: its gates read the input only"),
    (gated.MinLSTM, dict(zoneout=(0.0, 0.1)), r"MIN_LSTM cell has none"),
])
def test_bad_settings_say_what_is_wrong(cls, options, message):
    with pytest.raises(ValueError, match=message):
        cls(3, 5, **options)


def test_a_setting_changed_later_is_checked_and_used():
    gru = gated.GRU(3, 5).train()
    gru.zoneout = 0.5
    assert gru.spec().zoneout == (0.5,)
    with pytest.raises(ValueError, match="no cell state"):
        gru.zoneout = (0.5, 0.5)
    with pytest.raises(ValueError, match="recurrent_dropout must be"):
        gru.recurrent_dropout = 2
    gru.zoneout = 0.0
    assert gru.spec().regularization is None


def test_min_cells_and_zero_settings_still_build():
    assert gated.MinGRU(3, 5, recurrent_dropout=0.0, zoneout=(0.0, 0.0)).zoneout == (0.0, 0.0)
    assert gated.GRU(3, 5, zoneout=(0.0, 0.3)).spec().zoneout == (0.3,)


def test_a_module_with_them_is_not_scripted_into_a_twin_that_lacks_them():
    with pytest.raises(RuntimeError, match="no recurrent dropout or zoneout"):
        torch.jit.script(gated.GRU(3, 5, zoneout=0.1))


# -- the command ------------------------------------------------------------------------------------


def test_the_flags_go_into_the_runs_config_and_come_back_on_resume_and_load(tmp_path, capsys):
    out = tmp_path / "run"
    flags = ["--zoneout", "0.1,0.05", "--recurrent-dropout", "0.25"]
    tiny = ["--hidden", "4", "--length", "6", "--steps-per-epoch", "2", "--quiet", "--checkpoint-every", "1"]
    assert main(["train", "adding", "--model", "lstm", "--out", str(out), "--steps", "2", *flags, *tiny]) == 0
    model = json.loads((out / "config.json").read_text())["model"]
    assert model["zoneout"] == [0.1, 0.05] and model["recurrent_dropout"] == 0.25
    assert main(["train", "adding", "--out", str(out), "--resume", "--steps", "3", *flags]) == 0
    capsys.readouterr()
    assert main(["train", "adding", "--out", str(out), "--resume", "--steps", "4", "--zoneout", "0.2"]) == 1
    assert "--zoneout cannot change on resume" in capsys.readouterr().err
    from gated.runs import load_run

    _, loaded, _ = load_run(out)
    assert loaded.rnn.zoneout == (0.1, 0.05) and loaded.rnn.recurrent_dropout == 0.25


def test_explain_reads_a_model_trained_with_them(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "poem.txt").write_text("to be or not to be that is the question\n" * 12)
    argv = ["train", "charlm", "--data", "poem.txt", "--batch-size", "2", "--seq-len", "8", "--layers", "1",
            "--hidden", "4", "--embedding", "4", "--epochs", "1", "--quiet", "--model", "gru", "--zoneout", "0.2",
            "--recurrent-dropout", "0.3", "--out", "run"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["explain", "run", "to be"]) == 0
    assert "GRU read 5 characters" in capsys.readouterr().out


# -- on a GPU ---------------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_the_masks_are_drawn_there_repeat_with_the_seed_and_eval_matches_the_cpu():
    lstm = gated.LSTM(3, 16, num_layers=2, bidirectional=True, recurrent_dropout=0.3, zoneout=(0.2, 0.1))
    x = torch.randn(5, 4, 3)
    expected = lstm.eval()(x)[0]
    gpu, x_gpu = copy.deepcopy(lstm).cuda(), x.cuda()
    torch.testing.assert_close(gpu.eval()(x_gpu)[0].cpu(), expected, atol=1e-5, rtol=1e-5)
    gpu.train()
    torch.manual_seed(4)
    trace = gpu.trace(x_gpu)
    assert {trace[name].device.type for name in ("recurrent_mask", "zoneout_hidden", "zoneout_cell")} == {"cuda"}
    torch.manual_seed(4)
    assert torch.equal(gpu(x_gpu)[0], trace.output)
    assert torch.equal(trace.recurrent_mask, trace.recurrent_mask[:, :1].expand_as(trace.recurrent_mask))


def test_a_cell_kind_whose_step_takes_no_recurrent_keyword_says_so():
    from gated import kinds

    def leaky_step(x_gates, state, w):  # the README's own cell, written before recurrent dropout
        return kinds.RNN_TANH.step(x_gates, state, w)

    leaky_step.fields = kinds.RNN_TANH.step.fields
    leaky = kinds.CellKind(name="LEAKY_TEST", family="leaky", rows=("hidden",), states=("hidden",), gates=(),
                           shown=("hidden",), step=leaky_step)
    from gated.layers import RecurrentBase

    with pytest.raises(ValueError, match="takes no keyword 'recurrent'"):
        RecurrentBase(leaky, 3, 5, recurrent_dropout=0.1)
    zoned = RecurrentBase(leaky, 3, 5, zoneout=0.1)  # zoneout needs nothing of the step
    assert zoned(torch.randn(4, 2, 3))[0].shape == (4, 2, 5)
