"""What the converters share: gate blocks in another order; gated modules built from, or read into, weights.

Other libraries keep a layer's weights as ``kernel`` (input, gates * H) and
``recurrent_kernel`` (H, gates * H): torch's matrices transposed, with the gate
blocks in their own order. Here a layer's weights travel as a :class:`LayerTensors`
in torch's layout, so each converter only says how its layout maps to torch's.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .. import layers
from .reset_before import ResetBeforeGRU

# gated's module for each family of cell the converters know; the RNN's nonlinearity is an argument.
MODULES = {"lstm": layers.LSTM, "gru": layers.GRU, "gru-reset-before": ResetBeforeGRU, "rnn": layers.RNN}
ROWS = {"lstm": 4, "gru": 3, "gru-reset-before": 3, "rnn": 1}  # blocks of H rows in W_ih


class LayerTensors(NamedTuple):
    """One layer and direction in torch's layout; the biases are None for a layer without them."""

    w_ih: Tensor  # (rows * H, input)
    w_hh: Tensor  # (rows * H, H)
    b_ih: Tensor | None  # (rows * H,)
    b_hh: Tensor | None


def reorder(t: Tensor, source: tuple[str, ...], target: tuple[str, ...], dim: int = 0) -> Tensor:
    """``t`` with its gate blocks (equal chunks along ``dim``, named by ``source``) in ``target``'s order."""
    blocks = dict(zip(source, t.chunk(len(source), dim=dim)))
    return torch.cat([blocks[name] for name in target], dim=dim)


def build(family: str, stack: list[list[LayerTensors]], *, batch_first: bool, **options) -> nn.Module:
    """A gated module holding ``stack`` ([layer][direction] in torch's layout), its weights loaded strictly.

    ``options`` are the module's other constructor arguments (nonlinearity, dropout, ...).
    """
    first = stack[0][0]
    rows = ROWS[family]
    module = MODULES[family](
        first.w_ih.shape[1], first.w_ih.shape[0] // rows, num_layers=len(stack),
        bias=first.b_ih is not None, batch_first=batch_first, bidirectional=len(stack[0]) == 2,
        dtype=first.w_ih.dtype, **options,
    )
    state = {}
    for k, layer in enumerate(stack):
        for direction, tensors in enumerate(layer):
            suffix = f"_l{k}" + ("_reverse" if direction else "")
            for name, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), tensors):
                if value is not None:
                    state[name + suffix] = value
    module.load_state_dict(state, strict=True)  # every weight given, none left at its random start
    return module


def read(module: nn.Module) -> list[list[LayerTensors]]:
    """``module``'s weights, [layer][direction], detached copies in torch's layout."""
    stack = []
    for k in range(module.num_layers):
        layer = []
        for direction in range(2 if module.bidirectional else 1):
            suffix = f"_l{k}" + ("_reverse" if direction else "")
            names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            layer.append(LayerTensors(*(_copy(getattr(module, name + suffix, None)) for name in names)))
        stack.append(layer)
    return stack


def _copy(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.detach().clone()


def family_of(module, converter: str) -> str:
    """The family ("lstm", "gru", ...) of a gated or torch.nn module over time; a clear error for others."""
    mode = getattr(module, "mode", None)
    known = {"LSTM": "lstm", "GRU": "gru", "GRU_RESET_BEFORE": "gru-reset-before", "RNN_TANH": "rnn",
             "RNN_RELU": "rnn"}
    if not isinstance(module, nn.Module) or mode not in known:
        what = type(module).__name__
        raise ValueError(f"{converter} takes gated's (or torch.nn's) LSTM, GRU or RNN module; got {what}"
                         + (f" (cell {mode})" if isinstance(mode, str) else "")
                         + ": other cells (peephole, layer norm, min) have weights these layouts cannot hold")
    if getattr(module, "proj_size", 0):
        raise ValueError(f"{converter}: the LSTM has proj_size={module.proj_size} (h = W_hr h), which this "
                         "layout cannot hold; convert an LSTM built with proj_size=0")
    return known[mode]
