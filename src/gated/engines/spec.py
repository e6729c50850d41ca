"""What an engine is asked to run: a recurrent stack, frozen at the moment of the call.

A module hands its engine a :class:`StackSpec` (its cell kind, sizes, dropout
and every layer's weights), never itself, so engines do not depend on how a
module stores its parameters, and a cell kind that a module does not know yet
runs the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

if TYPE_CHECKING:
    from ..kinds import CellKind


class LayerWeights(NamedTuple):
    """One layer and direction's weights, in torch's order (``torch.nn.LSTM``'s ``_flat_weights``)."""

    w_ih: Tensor
    w_hh: Tensor
    b_ih: Tensor | None
    b_hh: Tensor | None
    w_hr: Tensor | None  # the LSTM's projection (proj_size > 0)


@dataclass(frozen=True)
class StackSpec:
    kind: CellKind
    hidden_size: int
    layers: tuple[tuple[LayerWeights, ...], ...]  # [layer][direction]: direction 1 reads right to left
    dropout: float  # between layers, while training
    training: bool

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_directions(self) -> int:
        return len(self.layers[0])

    @property
    def bias(self) -> bool:
        return self.layers[0][0].b_ih is not None

    def flat_weights(self) -> list[Tensor]:
        """Every weight in torch's order: layer by layer, direction by direction, absent ones left out."""
        return [w for layer in self.layers for direction in layer for w in direction if w is not None]

    def needs_grad(self, x: Tensor, state=()) -> bool:
        """Will autograd want gradients of this call (input, state or any weight)?"""
        if not torch.is_grad_enabled():
            return False
        return x.requires_grad or any(s.requires_grad for s in state) or any(w.requires_grad for w in self.flat_weights())
