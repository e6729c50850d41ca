"""The cells gated ships, each described once: tanh and relu RNN, LSTM, GRU, peephole LSTM,
layer-normalised LSTM and GRU.

A :class:`CellKind` says what a cell is called, how its gates sit in the
weight rows, what it carries from step to step, how one step is computed (the
functions of ``cells.py``), and which fast implementations it has. Modules,
engines, traces, streams and the explanations read these objects; none of
them asks "is this an LSTM?". The class itself is defined with the rest of
what engines are handed, in ``engines/spec.py``.

Adding a cell is: its step function in ``cells.py``, one ``CellKind`` here
(``register`` it, so that modules using it can be pickled), and, if it should
be fast, its kernels (``engines/fused_cells.py`` for torch's four; a ``fused_*.py`` of its own, with
its numba loops in ``kernels_*.py``, for the others). Without kernels it runs on
the reference engine, traces, streams and is explained like any other.
"""

from __future__ import annotations

from torch import nn

from .cells import (
    GRUStep,
    LayerNormLSTMStep,
    LSTMStep,
    MinGRUStep,
    MinLSTMStep,
    RNNStep,
    gru_cell,
    layer_norm_gru_cell,
    layer_norm_input,
    layer_norm_lstm_cell,
    lstm_cell,
    min_gru_cell,
    min_gru_sequence,
    min_lstm_cell,
    min_lstm_sequence,
    peephole_lstm_cell,
    rnn_cell,
)
from .engines.fused_cells import GRU_KERNELS, LSTM_KERNELS, RNN_RELU_KERNELS, RNN_TANH_KERNELS
from .engines.fused_layer_norm import LAYER_NORM_GRU_KERNELS, LAYER_NORM_LSTM_KERNELS
from .engines.fused_min import MIN_GRU_KERNELS, MIN_LSTM_KERNELS
from .engines.fused_peephole import PEEPHOLE_LSTM_KERNELS
from .engines.spec import KINDS, CellKind, Extra, StepFunction, register

__all__ = ["CellKind", "Extra", "KINDS", "register", "RNN_TANH", "RNN_RELU", "LSTM", "GRU", "PEEPHOLE_LSTM",
           "LAYER_NORM_LSTM", "LAYER_NORM_GRU", "MIN_GRU", "MIN_LSTM"]


def _step(cell, result: type) -> StepFunction:
    """Give a step function of ``cells.py`` the one signature every engine calls.

    ``result`` is the named tuple the cell returns; its fields are what a trace records.
    ``recurrent``, when given, is the hidden state as ``W_hh`` reads it (recurrent dropout's
    ``mask * h``); the cells that have no ``W_hh`` never get it.
    """

    def step(x_gates, state, w, recurrent=None):
        if recurrent is None:
            return cell(x_gates, *state, w)
        return cell(x_gates, *state, w, recurrent=recurrent)

    step.fields = result._fields
    return step


RNN_TANH = register(CellKind(
    name="RNN_TANH", family="rnn", rows=("hidden",), states=("hidden",), gates=(), shown=("hidden",),
    step=_step(lambda x, h, w, **r: rnn_cell(x, h, w.w_hh, w.b_hh, "tanh", **r), RNNStep),
    kernels=RNN_TANH_KERNELS, native="rnn_tanh", torch_twins=(nn.RNN, nn.RNNCell),
))
RNN_RELU = register(CellKind(
    name="RNN_RELU", family="rnn", rows=("hidden",), states=("hidden",), gates=(), shown=("hidden",),
    step=_step(lambda x, h, w, **r: rnn_cell(x, h, w.w_hh, w.b_hh, "relu", **r), RNNStep),
    kernels=RNN_RELU_KERNELS, native="rnn_relu", torch_twins=(nn.RNN, nn.RNNCell),
))
LSTM = register(CellKind(
    name="LSTM", family="lstm",
    rows=("input", "forget", "candidate", "output"),  # torch's i, f, g, o
    states=("hidden", "cell"),
    gates=("input", "forget", "output"),
    shown=("forget", "input", "output", "cell"),
    step=_step(lambda x, h, c, w, **r: lstm_cell(x, h, c, w.w_hh, w.b_hh, w.w_hr, **r), LSTMStep),
    projects=True,
    kernels=LSTM_KERNELS, native="lstm", torch_twins=(nn.LSTM, nn.LSTMCell),
))
GRU = register(CellKind(
    name="GRU", family="gru",
    rows=("reset", "update", "candidate"),  # torch's r, z, n
    states=("hidden",),
    gates=("reset", "update"),
    shown=("reset", "update", "hidden"),
    step=_step(lambda x, h, w, **r: gru_cell(x, h, w.w_hh, w.b_hh, **r), GRUStep),
    kernels=GRU_KERNELS, native="gru", torch_twins=(nn.GRU, nn.GRUCell),
))
# The LSTM with peepholes: torch's LSTM weights, plus one peephole weight per unit for each of
# the three sigmoid gates. Fused kernels in engines/fused_peephole.py; torch has no op for it.
PEEPHOLE_LSTM = register(CellKind(
    name="PEEPHOLE_LSTM", family="peephole-lstm",
    rows=LSTM.rows, states=LSTM.states, gates=LSTM.gates, shown=LSTM.shown,
    extras=(Extra("weight_ci", "hidden"), Extra("weight_cf", "hidden"), Extra("weight_co", "hidden")),
    step=_step(lambda x, h, c, w, **r: peephole_lstm_cell(x, h, c, w.w_hh, w.b_hh, w.extras["weight_ci"],
                                                          w.extras["weight_cf"], w.extras["weight_co"], **r),
               LSTMStep),
    kernels=PEEPHOLE_LSTM_KERNELS,
))
# Layer-normalised LSTM and GRU (Ba, Kiros and Hinton 2016): torch's weights, plus each norm's
# gain and bias as extras. The input's norm runs over all steps at once, in ``project``, since
# it does not depend on the state. Fused kernels in engines/fused_layer_norm.py; torch has no op.
LAYER_NORM_LSTM = register(CellKind(
    name="LAYER_NORM_LSTM", family="ln-lstm",
    rows=LSTM.rows, states=LSTM.states, gates=LSTM.gates, shown=LSTM.shown,
    extras=(Extra("ln_weight_ih", "gates", init=1.0), Extra("ln_bias_ih", "gates", init=0.0),
            Extra("ln_weight_hh", "gates", init=1.0), Extra("ln_bias_hh", "gates", init=0.0),
            Extra("ln_weight_c", "hidden", init=1.0), Extra("ln_bias_c", "hidden", init=0.0)),
    project=lambda x, w: layer_norm_input(x, w.w_ih, w.b_ih, w.extras["ln_weight_ih"], w.extras["ln_bias_ih"]),
    step=_step(lambda x, h, c, w, **r: layer_norm_lstm_cell(
        x, h, c, w.w_hh, w.b_hh, w.extras["ln_weight_hh"], w.extras["ln_bias_hh"],
        w.extras["ln_weight_c"], w.extras["ln_bias_c"], **r), LayerNormLSTMStep),
    kernels=LAYER_NORM_LSTM_KERNELS,
))
# haste's norms have a gain and no bias: torch's b_ih and b_hh, after the norms, are the biases.
LAYER_NORM_GRU = register(CellKind(
    name="LAYER_NORM_GRU", family="ln-gru",
    rows=GRU.rows, states=GRU.states, gates=GRU.gates, shown=GRU.shown,
    extras=(Extra("ln_weight_ih", "gates", init=1.0), Extra("ln_weight_hh", "gates", init=1.0)),
    project=lambda x, w: layer_norm_input(x, w.w_ih, w.b_ih, w.extras["ln_weight_ih"], None),
    step=_step(lambda x, h, w, **r: layer_norm_gru_cell(x, h, w.w_hh, w.b_hh, w.extras["ln_weight_hh"], **r),
               GRUStep),
    kernels=LAYER_NORM_GRU_KERNELS,
))
# minGRU and minLSTM (Feng et al. 2024): gates of the input only, so no W_hh or b_hh
# (``recurrent=False``); the reference engine runs the whole sequence as one parallel scan
# (``sequence``), the fused one as one pass over time (engines/fused_min.py).
MIN_GRU = register(CellKind(
    name="MIN_GRU", family="min-gru", rows=("update", "candidate"), states=("hidden",),
    gates=("update",), shown=("update", "hidden"),
    step=_step(lambda x, h, w: min_gru_cell(x, h), MinGRUStep),
    recurrent=False, sequence=min_gru_sequence,
    kernels=MIN_GRU_KERNELS,
))
MIN_LSTM = register(CellKind(
    name="MIN_LSTM", family="min-lstm", rows=("forget", "input", "candidate"), states=("hidden",),
    gates=("forget", "input"), shown=("forget", "input", "hidden"),
    step=_step(lambda x, h, w: min_lstm_cell(x, h), MinLSTMStep),
    recurrent=False, sequence=min_lstm_sequence,
    kernels=MIN_LSTM_KERNELS,
))
