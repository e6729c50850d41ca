"""torch.nn as the oracle: build twin modules with the same weights and compare them."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import gated

KINDS = {
    "rnn_tanh": (nn.RNN, gated.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNN, gated.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, gated.LSTM, {}),
    "gru": (nn.GRU, gated.GRU, {}),
}
CELL_KINDS = {
    "rnn_tanh": (nn.RNNCell, gated.RNNCell, {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNNCell, gated.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTMCell, gated.LSTMCell, {}),
    "gru": (nn.GRUCell, gated.GRUCell, {}),
}


def twins(kind: str, *args, engine: str = "auto", **kwargs):
    """(torch.nn module, gated module) holding identical weights."""
    theirs_cls, ours_cls, extra = KINDS[kind]
    theirs = theirs_cls(*args, **extra, **kwargs)
    ours = ours_cls(*args, **extra, **kwargs, engine=engine)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return theirs, ours


def cell_twins(kind: str, *args, **kwargs):
    theirs_cls, ours_cls, extra = CELL_KINDS[kind]
    theirs = theirs_cls(*args, **extra, **kwargs)
    ours = ours_cls(*args, **extra, **kwargs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return theirs, ours


def random_hx(module, batch: int | None, generator=None):
    """A random initial state shaped for ``module``; batch None means unbatched."""
    rows = module.num_layers * (2 if module.bidirectional else 1)
    h_size = module.proj_size or module.hidden_size
    lead = (rows,) if batch is None else (rows, batch)
    h = torch.randn(*lead, h_size, generator=generator)
    # gated's modules name what they carry (their cell kind's states); torch.nn's only their mode.
    carries_cell = "cell" in module.kind.states if hasattr(module, "kind") else module.mode == "LSTM"
    if carries_cell:
        return (h, torch.randn(*lead, module.hidden_size, generator=generator))
    return h


def tensors_of(value) -> list[torch.Tensor]:
    """Flatten outputs (tensor, tuple of tensors, PackedSequence) to a list of tensors."""
    if isinstance(value, PackedSequence):
        return [value.data]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in tensors_of(v)]
    return [value]


def pack(x: torch.Tensor, lengths: list[int], batch_first: bool) -> PackedSequence:
    return pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)


def weighted_sum(values: list[torch.Tensor], seed: int = 1) -> torch.Tensor:
    """A loss that weighs every element differently, so every gradient entry is checked."""
    g = torch.Generator().manual_seed(seed)
    return sum((v * torch.randn(v.shape, generator=g)).sum() for v in values)
