"""Bad input: the same exception type as torch.nn, with a message that says what was wrong.

Each case runs twice, once against ``torch.nn`` (the oracle for the exception
type) and once against ``gated``. Where torch.nn fails by accident rather than
by design (an IndexError deep inside, an AttributeError on a list), the case
names the type we raise instead, and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest
import torch
from torch import nn

import gated
from oracle import pack

x = torch.randn(5, 3, 4)


@dataclass
class Case:
    id: str
    call: Callable  # takes the namespace (torch.nn or gated) and does the bad thing
    match: str  # regex our message must match
    ours: type | None = None  # our exception type where torch.nn's is an accident


CASES = [
    # constructor values
    Case("hidden_size zero", lambda m: m.LSTM(4, 0), r"hidden_size must be greater than zero, got 0"),
    Case("input_size negative", lambda m: m.GRU(-1, 6), r"input_size must be greater than zero, got -1"),
    Case("hidden_size float", lambda m: m.RNN(4, 2.5), r"hidden_size should be of type int, got: float"),
    Case("num_layers zero", lambda m: m.GRU(4, 6, num_layers=0), r"num_layers must be greater than zero"),
    Case("num_layers float", lambda m: m.LSTM(4, 6, num_layers=1.5), r"num_layers should be of type int"),
    Case("dropout above one", lambda m: m.LSTM(4, 6, 2, dropout=1.5), r"dropout should be a number in range \[0, 1\].*1\.5"),
    Case("dropout bool", lambda m: m.GRU(4, 6, 2, dropout=True), r"dropout should be a number in range"),
    Case("bias not bool", lambda m: m.LSTM(4, 6, bias="yes"), r"bias should be of type bool, got: str"),
    Case("batch_first not bool", lambda m: m.GRU(4, 6, batch_first=1), r"batch_first should be of type bool"),
    Case("proj_size negative", lambda m: m.LSTM(4, 6, proj_size=-1), r"proj_size should be a positive integer or zero"),
    Case("proj_size too big", lambda m: m.LSTM(4, 6, proj_size=6), r"proj_size has to be smaller than hidden_size.*6"),
    Case("proj_size float", lambda m: m.LSTM(4, 6, proj_size=2.0), r"proj_size should be of type int"),
    Case("proj_size on GRU", lambda m: m.GRU(4, 6, proj_size=2), r"only supported for LSTM"),
    Case("proj_size on RNN", lambda m: m.RNN(4, 6, proj_size=2), r"only supported for LSTM"),
    Case("unknown nonlinearity", lambda m: m.RNN(4, 6, nonlinearity="sigmoid"), r"Unknown nonlinearity 'sigmoid'"),
    # forward: input
    Case("input 4-D", lambda m: m.LSTM(4, 6)(torch.randn(2, 5, 3, 4)), r"Expected input to be 2D .* or 3D .*got 4D"),
    Case("input 1-D", lambda m: m.GRU(4, 6)(torch.randn(4)), r"got 1D instead"),
    Case("input size", lambda m: m.GRU(4, 6)(torch.randn(5, 3, 5)), r"input_size\. Expected 4, got 5"),
    Case("input dtype", lambda m: m.RNN(4, 6)(torch.ones(5, 3, 4, dtype=torch.long)), r"input dtype \(torch.int64\) does not match weight dtype \(torch.float32\)"),
    Case("empty sequence", lambda m: m.LSTM(4, 6)(torch.randn(0, 3, 4)), r"sequence length to be larger than 0"),
    Case("empty unbatched sequence", lambda m: m.GRU(4, 6)(torch.randn(0, 4)), r"sequence length to be larger than 0"),
    Case("packed data 3-D", lambda m: m.GRU(4, 6)(nn.utils.rnn.PackedSequence(torch.randn(5, 3, 4), torch.tensor([3, 2]))), r"2 dimensions"),
    Case("input a list", lambda m: m.GRU(4, 6)([[0.0] * 4]), r"input must be a torch.Tensor, got list", ours=TypeError),
    # forward: hx
    Case("hx batch", lambda m: m.GRU(4, 6)(x, torch.zeros(1, 2, 6)), r"Expected hidden size \(1, 3, 6\), got \[1, 2, 6\]"),
    Case("hx layers", lambda m: m.RNN(4, 6, 2)(x, torch.zeros(1, 3, 6)), r"Expected hidden size \(2, 3, 6\)"),
    Case("hx rank batched", lambda m: m.GRU(4, 6)(x, torch.zeros(3, 6)), r"batched 3-D input, hx should also be 3-D but got 2-D"),
    Case("hx rank unbatched", lambda m: m.RNN(4, 6)(torch.randn(5, 4), torch.zeros(1, 1, 6)), r"unbatched 2-D input, hx should also be 2-D but got 3-D"),
    Case("lstm h size", lambda m: m.LSTM(4, 6, proj_size=2)(x, (torch.zeros(1, 3, 6), torch.zeros(1, 3, 6))), r"Expected hidden\[0\] size \(1, 3, 2\), got \[1, 3, 6\]"),
    Case("lstm c size", lambda m: m.LSTM(4, 6)(x, (torch.zeros(1, 3, 6), torch.zeros(1, 3, 5))), r"Expected hidden\[1\] size \(1, 3, 6\), got \[1, 3, 5\]"),
    Case("lstm three states", lambda m: m.LSTM(4, 6)(x, (torch.zeros(1, 3, 6),) * 3), r"two hidden states \(h_0, c_0\), got 3"),
    Case("lstm hx not a tuple", lambda m: m.LSTM(4, 6)(x, torch.zeros(1, 3, 6)), r"hx must be a tuple \(h_0, c_0\)", ours=TypeError),
    Case("hx dtype", lambda m: m.GRU(4, 6)(x, torch.zeros(1, 3, 6, dtype=torch.float64)), r"hx dtype \(torch.float64\) does not match weight dtype"),
    # cells
    Case("cell input 3-D", lambda m: m.LSTMCell(4, 6)(x), r"LSTMCell: Expected input to be 1D .* or 2D .*got 3D"),
    Case("cell hx 3-D", lambda m: m.GRUCell(4, 6)(torch.randn(3, 4), torch.zeros(1, 3, 6)), r"GRUCell: Expected hidden to be 1D or 2D, got 3D instead"),
    Case("cell input size", lambda m: m.RNNCell(4, 6)(torch.randn(3, 5)), r"inconsistent input_size: got 5 expected 4"),
    Case("cell batch", lambda m: m.GRUCell(4, 6)(torch.randn(3, 4), torch.zeros(2, 6)), r"Input batch size 3 doesn't match hidden0 batch size 2"),
    Case("cell hidden size", lambda m: m.GRUCell(4, 6)(torch.randn(3, 4), torch.zeros(3, 5)), r"hidden0 has inconsistent hidden_size: got 5, expected 6"),
    Case("cell c size", lambda m: m.LSTMCell(4, 6)(torch.randn(3, 4), (torch.zeros(3, 6), torch.zeros(3, 5))), r"hidden1 has inconsistent hidden_size"),
    Case("cell dtype", lambda m: m.GRUCell(4, 6)(torch.randn(3, 4, dtype=torch.float64)), r"input dtype \(torch.float64\) does not match"),
    # torch.nn lets these through to torch.empty or to forward; we stop them at construction.
    Case("cell hidden negative", lambda m: m.GRUCell(4, -6), r"hidden_size must be zero or greater, got -6", ours=ValueError),
    Case("cell nonlinearity", lambda m: m.RNNCell(4, 6, nonlinearity="sig")(torch.randn(2, 4)), r"Unknown nonlinearity 'sig'", ours=ValueError),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_refused_clearly(case):
    with pytest.raises(Exception) as theirs:
        case.call(nn)
    expected = case.ours or type(theirs.value)
    if case.ours is None:
        assert expected is not AssertionError
    with pytest.raises(expected, match=case.match):
        case.call(gated)


def test_deviations_are_real_deviations():
    # Cases marked `ours=` must really differ from torch.nn, or the mark is stale.
    for case in CASES:
        if case.ours is not None:
            with pytest.raises(Exception) as theirs:
                case.call(nn)
            assert type(theirs.value) is not case.ours, case.id


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: gated.LSTM(4, 6, engine="fast"), r"engine must be one of 'auto', 'reference', 'fused', 'native', got 'fast'"),
        (lambda: gated.LSTM(4, 6, bias=False, forget_bias=1.0), r"forget_bias needs bias=True"),
        (lambda: gated.LSTM(4, 6, forget_bias=float("nan")), r"forget_bias must be a finite number"),
        (lambda: gated.GRU(4, 6, bogus=1), r"unexpected keyword argument\(s\): bogus"),
    ],
)
def test_our_own_arguments_are_checked(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_unsorted_packed_hx_must_match_the_batch():
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(1, 3, 6\)"):
        gated.GRU(4, 6)(pack(x, [5, 2, 4], batch_first=False), torch.zeros(1, 2, 6))
