"""gated: the RNN, LSTM and GRU of the illustrated guide, gate by gate, drop-in for torch.nn.

Start at ``cells.py`` for the equations of one step, ``layers.py`` for the
modules, ``trace.py`` for reading gates over time.
"""

from .cell_modules import GRUCell, LSTMCell, RNNCell
from .cells import GRUStep, LSTMStep, RNNStep, gru_cell, lstm_cell, peephole_lstm_cell, rnn_cell
from .layers import GRU, LSTM, RNN, PeepholeLSTM
from .trace import Trace, gradient_through_time

__version__ = "0.1.0"

__all__ = [
    "RNN", "LSTM", "GRU", "PeepholeLSTM", "RNNCell", "LSTMCell", "GRUCell", "Trace", "gradient_through_time",
    "RNNStep", "LSTMStep", "GRUStep", "rnn_cell", "lstm_cell", "gru_cell", "peephole_lstm_cell",
]
