"""Fused kernels for the peephole cells: being written (issue 11)."""

PEEPHOLE_LSTM_KERNELS = None
