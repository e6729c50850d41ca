"""Module-level drop-in behaviour: initialisation, state_dicts, repr, forget bias, engines, gradcheck."""

from __future__ import annotations

import copy
import gc
import pickle
import weakref

import pytest
import torch
from torch import nn

import gated
from oracle import KINDS, pack, tensors_of, twins

CONFIGS = [
    dict(num_layers=2, bidirectional=True),
    dict(num_layers=3, bias=False, batch_first=True),
    dict(num_layers=2, dropout=0.25),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_initialisation_draws_the_same_numbers_as_torch(kind, config):
    theirs_cls, ours_cls, extra = KINDS[kind]
    torch.manual_seed(123)
    theirs = theirs_cls(7, 9, **extra, **config)
    torch.manual_seed(123)
    ours = ours_cls(7, 9, **extra, **config)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert p.shape == q.shape and torch.equal(p, q), name
    assert ours._flat_weights_names == theirs._flat_weights_names
    assert [[p.shape for p in ws] for ws in ours.all_weights] == [[p.shape for p in ws] for ws in theirs.all_weights]


@pytest.mark.parametrize("kind", KINDS)
def test_state_dicts_load_both_ways_strictly(kind):
    theirs_cls, ours_cls, extra = KINDS[kind]
    options = dict(num_layers=2, bidirectional=True, **({"proj_size": 3} if kind == "lstm" else {}))
    theirs, ours = theirs_cls(4, 6, **extra, **options), ours_cls(4, 6, **extra, **options)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    back = theirs_cls(4, 6, **extra, **options)
    back.load_state_dict(ours.state_dict(), strict=True)
    for p, q in zip(back.parameters(), theirs.parameters()):
        assert torch.equal(p, q)
    x = torch.randn(5, 2, 4)
    for g, w in zip(tensors_of(ours(x)), tensors_of(back(x))):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "config", [{}, dict(num_layers=2, bias=False, batch_first=True, dropout=0.5, bidirectional=True)], ids=str
)
def test_repr_matches_torch(kind, config):
    theirs_cls, ours_cls, extra = KINDS[kind]
    want = repr(theirs_cls(3, 5, **extra, **config))
    if kind == "rnn_relu":  # torch's repr leaves the nonlinearity out; ours names it
        want = want[:-1] + ", nonlinearity='relu')"
    assert repr(ours_cls(3, 5, **extra, **config)) == want


def test_lstm_repr_with_projection_and_a_forced_engine():
    assert repr(gated.LSTM(3, 5, proj_size=2)) == repr(nn.LSTM(3, 5, proj_size=2))
    assert repr(gated.GRU(3, 5, engine="reference")) == "GRU(3, 5, engine='reference')"


def test_positional_arguments_follow_torch():
    # nn.RNN's fourth positional argument is the nonlinearity; nn.LSTM's eighth is proj_size.
    rnn = gated.RNN(3, 5, 2, "relu", False, True, 0.0, True)
    assert (rnn.nonlinearity, rnn.bias, rnn.batch_first, rnn.bidirectional) == ("relu", False, True, True)
    lstm = gated.LSTM(3, 5, 1, True, False, 0.0, False, 2)
    assert lstm.proj_size == 2 and lstm.weight_hr_l0.shape == (2, 5)


def test_modules_move_between_dtypes_and_pickle():
    torch.manual_seed(0)
    theirs, ours = twins("lstm", 3, 5, num_layers=2)
    ours, theirs = ours.double(), theirs.double()
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    for g, w in zip(tensors_of(ours(x)), tensors_of(theirs(x))):
        torch.testing.assert_close(g, w)
    clone = pickle.loads(pickle.dumps(ours))
    torch.testing.assert_close(clone(x)[0], ours(x)[0])


def test_forget_bias_sets_the_forget_rows_only():
    torch.manual_seed(0)
    plain = gated.LSTM(3, 4, num_layers=2, bidirectional=True)
    torch.manual_seed(0)
    biased = gated.LSTM(3, 4, num_layers=2, bidirectional=True, forget_bias=1.0)
    forget = slice(4, 8)
    for name, p in biased.named_parameters():
        q = plain.get_parameter(name)
        if name.startswith("bias_ih"):
            assert torch.all(p[forget] == 1.0)
        elif name.startswith("bias_hh"):
            assert torch.all(p[forget] == 0.0)
        else:
            assert torch.equal(p, q), name
        if name.startswith("bias"):
            # The input, candidate and output rows keep torch's initialisation.
            keep = torch.cat([p[:4], p[8:]])
            assert torch.equal(keep, torch.cat([q[:4], q[8:]]))
    # An untrained cell with forget bias 1 keeps more of its cell state.
    x = torch.randn(20, 8, 3)
    assert biased.trace(x).forget.mean() > plain.trace(x).forget.mean() + 0.1


def test_forget_bias_survives_reset_parameters():
    lstm = gated.LSTM(3, 4, forget_bias=2.0)
    lstm.reset_parameters()
    assert torch.all(lstm.bias_ih_l0[4:8] == 2.0)


@pytest.mark.parametrize("engine", ["auto", "reference"])
def test_engine_can_be_forced_and_gives_torchs_numbers(engine):
    torch.manual_seed(0)
    theirs, ours = twins("gru", 3, 5, engine=engine)
    x = torch.randn(4, 2, 3)
    torch.testing.assert_close(ours(x)[0], theirs(x)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layout", ["batched", "packed"])
def test_gradcheck_float64(kind, layout):
    _, ours_cls, extra = KINDS[kind]
    options = dict(num_layers=2, bidirectional=True, **({"proj_size": 2} if kind == "lstm" else {}))
    module = ours_cls(3, 4, **extra, **options, dtype=torch.float64)
    x = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    rows, h_size = 4, module.real_hidden_size
    h = torch.randn(rows, 3, h_size, dtype=torch.float64, requires_grad=True)
    c = torch.randn(rows, 3, 4, dtype=torch.float64, requires_grad=True)
    states = (h, c) if kind == "lstm" else (h,)
    params = list(module.parameters())

    def f(x, *leaves):
        state = leaves[: len(states)]
        inp = pack(x, [4, 2, 3], batch_first=False) if layout == "packed" else x
        out, final = module(inp, tuple(state) if kind == "lstm" else state[0])
        return tuple(tensors_of(out) + tensors_of(final))

    # The module reads its own parameters; passing them as inputs makes gradcheck perturb them.
    assert torch.autograd.gradcheck(f, (x, *states, *params))


# -- a module keeps what its engines run between calls (layers.RecurrentBase.spec): it must follow every change


@pytest.mark.parametrize("kind", KINDS)
def test_a_replaced_weight_is_read_at_the_next_call(kind):
    theirs, ours = twins(kind, 3, 5, num_layers=2)
    x = torch.randn(4, 2, 3)
    ours(x)  # the first call builds what the next would reuse
    replacement = torch.randn_like(ours.weight_hh_l1)
    ours.weight_hh_l1 = nn.Parameter(replacement.clone())
    theirs.weight_hh_l1 = nn.Parameter(replacement.clone())
    torch.testing.assert_close(ours(x)[0], theirs(x)[0], atol=1e-5, rtol=1e-5)


def test_switching_train_eval_and_dropout_between_calls_follows_torch():
    theirs, ours = twins("lstm", 3, 5, num_layers=3, dropout=0.5)
    x = torch.randn(6, 2, 3)
    for mode, dropout in [("eval", 0.5), ("train", 0.5), ("eval", 0.5), ("train", 0.0), ("train", 0.5)]:
        for module in (theirs, ours):
            getattr(module, mode)()
            module.dropout = dropout
        torch.manual_seed(7)
        want = theirs(x)[0]
        torch.manual_seed(7)
        torch.testing.assert_close(ours(x)[0], want, atol=1e-5, rtol=1e-5, msg=f"{mode}, dropout {dropout}")


def test_a_copy_runs_its_own_weights():
    theirs, ours = twins("gru", 3, 5)
    x = torch.randn(4, 2, 3)
    ours(x)
    for twin in (copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
        with torch.no_grad():
            twin.weight_hh_l0.mul_(2)
        assert all(w is not v for w, v in zip(twin.parameters(), ours.parameters()))
        mirror = copy.deepcopy(theirs)
        mirror.load_state_dict(twin.state_dict())
        torch.testing.assert_close(twin(x)[0], mirror(x)[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours(x)[0], theirs(x)[0], atol=1e-5, rtol=1e-5)  # the original is untouched


def test_moving_a_module_lets_go_of_its_old_weights():
    ours = gated.LSTM(3, 5)
    ours(torch.randn(4, 2, 3))  # the module now keeps what it handed the engine, weights included
    old = weakref.ref(ours.weight_hh_l0)
    before = torch.__future__.get_overwrite_module_params_on_conversion()
    torch.__future__.set_overwrite_module_params_on_conversion(True)  # .to() makes new Parameters, as for a GPU
    try:
        ours.double()
    finally:
        torch.__future__.set_overwrite_module_params_on_conversion(before)
    gc.collect()
    assert old() is None
    assert ours(torch.randn(4, 2, 3, dtype=torch.float64))[0].dtype == torch.float64
