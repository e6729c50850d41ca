"""Cell kinds: one description per cell, and a new cell needs nothing else than that and its step.

The cell below is not part of gated: a "leaky" RNN whose hidden state moves only part
of the way to the new value at each step, through a gate learnt from input and state.
It is defined here the way a researcher would add one (a step function, a CellKind),
and then every part of gated that does not need kernels must take it as it is.
"""

from __future__ import annotations

import pickle
from typing import NamedTuple

import pytest
import torch
import torch.nn.functional as F

import gated
from gated import kinds
from gated.layers import RecurrentBase


class LeakyStep(NamedTuple):
    leak: torch.Tensor
    candidate: torch.Tensor
    hidden: torch.Tensor


def leaky_cell(x_gates, hidden, w_hh, b_hh):
    x_l, x_c = x_gates.chunk(2, -1)
    h_l, h_c = F.linear(hidden, w_hh, b_hh).chunk(2, -1)
    leak = torch.sigmoid(x_l + h_l)
    candidate = torch.tanh(x_c + h_c)
    return LeakyStep(leak, candidate, (1 - leak) * hidden + leak * candidate)


def _leaky_step(x, state, w):
    return leaky_cell(x, state[0], w.w_hh, w.b_hh)


_leaky_step.fields = LeakyStep._fields

LEAKY = kinds.register(kinds.CellKind(
    name="TEST_LEAKY", family="leaky", rows=("leak", "candidate"), states=("hidden",), gates=("leak",),
    shown=("leak", "hidden"), step=_leaky_step,
))


def _by_hand(module, x, h):
    """The leaky cell's loop written out, the oracle for a kind no other library has."""
    outputs = []
    w = module.layer_weights(0)
    for x_t in x:
        h = leaky_cell(F.linear(x_t, w.w_ih, w.b_ih), h, w.w_hh, w.b_hh).hidden
        outputs.append(h)
    return torch.stack(outputs), h


def test_a_new_kind_runs_traces_and_streams_from_its_description_alone():
    torch.manual_seed(0)
    module = RecurrentBase(LEAKY, 3, 5)
    assert module.weight_ih_l0.shape == (10, 3)  # two blocks of rows, from the description
    x = torch.randn(7, 2, 3)
    output, h_n = module(x)
    want_out, want_h = _by_hand(module, x, torch.zeros(2, 5))
    torch.testing.assert_close(output, want_out)
    torch.testing.assert_close(h_n[0], want_h)

    trace = module.trace(x)
    assert trace.names == ("leak", "candidate", "hidden")
    assert trace.leak_gate is trace["leak"] and trace.gates == ("leak",)
    assert bool(((trace.leak > 0) & (trace.leak < 1)).all())

    stream = module.eval().stream()
    streamed = torch.stack([stream.step(x_t) for x_t in x])
    torch.testing.assert_close(streamed, want_out)


def test_a_new_kind_trains_and_pickles():
    torch.manual_seed(0)
    module = RecurrentBase(LEAKY, 3, 4, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(2, 6, 3, requires_grad=True)
    module(x)[0].sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in module.parameters())
    clone = pickle.loads(pickle.dumps(module))
    assert clone.kind is LEAKY
    torch.testing.assert_close(clone(x)[0], module(x)[0])


@pytest.mark.parametrize("engine", ["fused", "native"])
def test_engines_without_an_implementation_say_so(engine):
    module = RecurrentBase(LEAKY, 3, 4, engine=engine)
    with pytest.raises(RuntimeError, match=f"engine='{engine}' cannot run here: .*TEST_LEAKY"):
        module(torch.randn(2, 1, 3))


def test_the_shipped_kinds_describe_torch_layout():
    # Row blocks in torch's gate order, and what the cells' named tuples record.
    assert kinds.LSTM.rows == ("input", "forget", "candidate", "output")
    assert kinds.GRU.rows == ("reset", "update", "candidate")
    assert kinds.LSTM.recorded == gated.LSTMStep._fields
    assert kinds.GRU.recorded == gated.GRUStep._fields
    for kind in (kinds.LSTM, kinds.GRU, kinds.RNN_TANH, kinds.RNN_RELU):
        assert set(kind.gates) <= set(kind.recorded) and set(kind.shown) <= set(kind.recorded)
        assert kind.states[0] == "hidden"
    assert gated.LSTM(2, 3).kind is kinds.LSTM and gated.RNN(2, 3, nonlinearity="relu").kind is kinds.RNN_RELU


def test_a_second_kind_cannot_take_a_registered_name():
    impostor = kinds.CellKind(name="LSTM", family="lstm", rows=("hidden",), states=("hidden",), gates=(),
                              shown=("hidden",), step=_leaky_step)
    with pytest.raises(ValueError, match="already registered as 'LSTM'"):
        kinds.register(impostor)
    with pytest.raises(TypeError, match="not registered"):
        pickle.dumps(impostor)


def test_a_kind_with_weights_and_an_input_projection_of_its_own():
    # A leaky cell whose input share is normalised per step and scaled by a learnt gain per row:
    # the gain is an extra weight, the normalisation its own projection.
    def project(x, w):
        raw = F.linear(x, w.w_ih)
        return F.layer_norm(raw, raw.shape[-1:]) * w.extras["gain"] + w.b_ih

    kind = kinds.register(kinds.CellKind(
        name="TEST_NORMED_LEAKY", family="normed-leaky", rows=("leak", "candidate"), states=("hidden",),
        gates=("leak",), shown=("leak", "hidden"), step=_leaky_step,
        extras=(kinds.Extra("gain", "gates", init=1.0),), project=project,
    ))
    torch.manual_seed(0)
    module = RecurrentBase(kind, 3, 4, bidirectional=True)
    assert module.gain_l0.shape == (8,) and bool((module.gain_l0_reverse == 1).all())  # init as described
    with torch.no_grad():
        module.gain_l0.uniform_(0.5, 2)
    x = torch.randn(5, 2, 3)
    w = module.layer_weights(0)
    h, outputs = torch.zeros(2, 4), []
    for x_t in x:
        h = leaky_cell(project(x_t, w), h, w.w_hh, w.b_hh).hidden
        outputs.append(h)
    torch.testing.assert_close(module(x)[0][..., :4], torch.stack(outputs))
    module(x)[0].sum().backward()
    assert module.gain_l0.grad.abs().sum() > 0 and module.gain_l0_reverse.grad.abs().sum() > 0


def test_only_a_kind_that_projects_takes_proj_size():
    # The LSTM's step applies W_hr; a kind whose step would ignore it refuses it instead.
    assert gated.LSTM(3, 4, proj_size=2).weight_hr_l0.shape == (2, 4)
    with pytest.raises(ValueError, match="the PEEPHOLE_LSTM cell has no projection; proj_size must be 0"):
        gated.PeepholeLSTM(3, 4, 1, True, False, 0.0, False, 2)  # by position too
    with pytest.raises(ValueError, match="TEST_LEAKY cell has no projection"):
        RecurrentBase(LEAKY, 3, 4, proj_size=2)
