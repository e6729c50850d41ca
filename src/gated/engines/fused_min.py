"""Fused kernels for the min cells: being written (issue 11)."""

MIN_GRU_KERNELS = None
MIN_LSTM_KERNELS = None
