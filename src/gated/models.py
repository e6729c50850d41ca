"""Whole models around a gated layer: input -> RNN / LSTM / GRU -> head.

One class covers every task, so that ``--model rnn|lstm|gru|...`` swaps the cell
and nothing else. Its ``ModelConfig`` is plain JSON, stored beside the
weights, so a checkpoint rebuilds its model without running any code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .layers import GRU, LSTM, RNN, LayerNormGRU, LayerNormLSTM, MinGRU, MinLSTM, PeepholeLSTM, check_regularization

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU, "peephole-lstm": PeepholeLSTM,
         "ln-lstm": LayerNormLSTM, "ln-gru": LayerNormGRU}
CELLS |= {"min-gru": MinGRU, "min-lstm": MinLSTM}
READOUTS = ("last", "max", "every")


@dataclass(frozen=True)
class ModelConfig:
    cell: str  # a key of CELLS: rnn | lstm | gru | peephole-lstm | ln-lstm | ln-gru | min-gru | min-lstm
    output_size: int  # classes, vocabulary size, or 1 for regression
    readout: str  # last: the last real step; max: max over time; every: one output per step
    vocab_size: int = 0  # > 0: token ids in, through an embedding
    input_size: int = 0  # > 0: feature vectors in (vocab_size must then be 0)
    embedding_size: int = 64
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    forget_bias: float | None = 1.0  # LSTM only
    recurrent_dropout: float = 0.0  # of h where W_hh reads it, one mask per sequence (layers.RecurrentBase)
    zoneout: float | tuple[float, float] = 0.0  # one p for every state, or (p_cell, p_hidden)

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"unknown model {self.cell!r}: choose one of {', '.join(CELLS)}")
        if isinstance(self.zoneout, list):  # JSON has no tuples: config.json gives the pair back as a list
            object.__setattr__(self, "zoneout", tuple(self.zoneout))
        check_regularization(CELLS[self.cell], self.recurrent_dropout, self.zoneout)
        if self.readout not in READOUTS:
            raise ValueError(f"unknown readout {self.readout!r}: choose one of {', '.join(READOUTS)}")
        if (self.vocab_size > 0) == (self.input_size > 0):
            raise ValueError("give exactly one of vocab_size (token ids in) and input_size (vectors in)")
        if self.readout == "every" and self.bidirectional:
            raise ValueError("a model that predicts every next step cannot read the future: use bidirectional=False")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"model config has unknown keys {sorted(unknown)}; it was written by another version")
        return cls(**data)


class SequenceModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        if c.vocab_size:
            self.embedding = nn.Embedding(c.vocab_size, c.embedding_size, padding_idx=0)
            features = c.embedding_size
        else:
            self.embedding = None
            features = c.input_size
        extra = {"forget_bias": c.forget_bias} if issubclass(CELLS[c.cell], LSTM) else {}
        self.rnn = CELLS[c.cell](
            features, c.hidden_size, num_layers=c.num_layers, batch_first=True,
            dropout=c.dropout if c.num_layers > 1 else 0.0, bidirectional=c.bidirectional,
            recurrent_dropout=c.recurrent_dropout, zoneout=c.zoneout, **extra,
        )
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden_size * (2 if c.bidirectional else 1), c.output_size)

    def embed(self, inputs: Tensor) -> Tensor:
        return self.embedding(inputs) if self.embedding is not None else inputs

    def forward(self, inputs: Tensor, lengths: Tensor | None = None, state=None):
        """inputs (B, T) ids or (B, T, F) features; lengths (B,) real steps per sequence.

        Returns the head's output ((B, out) or (B, T, out) for ``readout="every"``)
        and the final recurrent state, which text generation feeds back in.
        """
        x = self.dropout(self.embed(inputs))
        if lengths is None:
            out, state = self.rnn(x, state)
        else:
            # Packing keeps padding out of the recurrence: no state is ever updated by a pad.
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, state = self.rnn(packed, state)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
        return self.head(self.dropout(self._read(out, state, lengths))), state

    def _read(self, out: Tensor, state, lengths: Tensor | None) -> Tensor:
        readout = self.config.readout
        if readout == "every":
            return out
        if readout == "max":
            if lengths is not None:
                pad = torch.arange(out.size(1), device=out.device)[None, :] >= lengths.to(out.device)[:, None]
                out = out.masked_fill(pad.unsqueeze(-1), float("-inf"))
            return out.max(dim=1).values
        # "last": the top layer's final hidden state, which with packed input is each
        # sequence's last real step (forward) and its first step (backward direction).
        h_n = state[0] if isinstance(state, tuple) else state
        directions = 2 if self.config.bidirectional else 1
        return torch.cat(list(h_n[-directions:]), dim=-1)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
