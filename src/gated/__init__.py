"""gated: the RNN, LSTM and GRU of the illustrated guide, gate by gate, drop-in for torch.nn.

Start at ``cells.py`` for the equations of one step, ``layers.py`` for the
modules, ``trace.py`` for reading gates over time.
"""

from .cell_modules import GRUCell, LSTMCell, RNNCell
from .cells import (
    GRUStep,
    LayerNormLSTMStep,
    LSTMStep,
    MinGRUStep,
    MinLSTMStep,
    RNNStep,
    gru_cell,
    layer_norm_gru_cell,
    layer_norm_lstm_cell,
    lstm_cell,
    min_gru_cell,
    min_lstm_cell,
    peephole_lstm_cell,
    rnn_cell,
)
from .layers import GRU, LSTM, RNN, LayerNormGRU, LayerNormLSTM, MinGRU, MinLSTM, PeepholeLSTM
from .trace import Trace, gradient_through_time

__version__ = "0.1.0"


def __getattr__(name: str):
    """``gated.convert`` and ``gated.onnx`` after a plain ``import gated``, loaded on first use so that
    Keras, onnx and their cells cost nothing to those who never touch them."""
    if name in ("convert", "onnx"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'gated' has no attribute {name!r}")


__all__ = [
    "RNN", "LSTM", "GRU", "PeepholeLSTM", "RNNCell", "LSTMCell", "GRUCell", "Trace", "gradient_through_time",
    "RNNStep", "LSTMStep", "GRUStep", "rnn_cell", "lstm_cell", "gru_cell", "peephole_lstm_cell",
    "LayerNormLSTM", "LayerNormGRU", "LayerNormLSTMStep", "layer_norm_lstm_cell", "layer_norm_gru_cell",
    "MinGRU", "MinLSTM", "MinGRUStep", "MinLSTMStep", "min_gru_cell", "min_lstm_cell",
]
