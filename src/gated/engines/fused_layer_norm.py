"""Fused kernels for the layer_norm cells: being written (issue 11)."""

LAYER_NORM_LSTM_KERNELS = None
LAYER_NORM_GRU_KERNELS = None
