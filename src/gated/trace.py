"""Traces: every gate and state of a recurrent module at every time step.

``module.trace(input, hx)`` runs the same computation as ``module(input, hx)``
and also keeps what each cell computed along the way. Values are stored per
gate name as one tensor of shape ``(num_layers * num_directions, T, B, size)``,
time-major whatever ``batch_first`` says, and ordered like ``h_n``: index
``layer * num_directions + direction``. ``size`` is ``hidden_size``, except the
LSTM's ``hidden`` with ``proj_size > 0``, which is ``proj_size``.

Names, as the guide uses them:

* RNN: ``hidden``
* LSTM: ``input``, ``forget``, ``candidate``, ``output``, ``cell``, ``hidden``
* GRU: ``reset``, ``update``, ``candidate``, ``hidden``

Each name is an attribute (``trace.forget``) and a key (``trace["forget"]``),
and gates also answer to ``trace.forget_gate``. One name clashes: like
``forward``, a trace has an ``output`` (the module's output), so the LSTM's
output gate is ``trace.output_gate`` or ``trace["output"]``.

For packed input of unequal lengths, ``mask[t, b]`` is True where step ``t``
belongs to sequence ``b``; values at padded steps are zero.

A module with recurrent regularisation, traced while training, also shows the
masks it drew, under plain names beside the guide's: ``recurrent_mask``
(recurrent dropout's, 0 or 1/(1-p), the same at every step, the size of h) and
``zoneout_hidden``, ``zoneout_cell`` (1 where a unit kept its previous value).
With zoneout, ``hidden`` and ``cell`` are the states after it, what the next
step reads and the module outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

if TYPE_CHECKING:
    from .engines.spec import CellKind


@dataclass(frozen=True)
class Trace:
    output: Tensor | PackedSequence  # exactly what forward returns first
    state: Tensor | tuple[Tensor, Tensor]  # exactly what forward returns second
    steps: dict[str, Tensor]  # gate or state name -> (layers * directions, T, B, size)
    mask: Tensor | None  # (T, B) bool, True at real steps; None when no step is padding
    num_layers: int
    num_directions: int
    kind: CellKind  # the cell that computed the steps: which names are gates, which states

    @property
    def gates(self) -> tuple[str, ...]:
        """The names of the sigmoid gates among ``names``, each in (0, 1)."""
        return self.kind.gates

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.steps)

    def __getattr__(self, name: str) -> Tensor:
        # Called only when normal lookup fails: trace.forget is trace.steps["forget"],
        # and trace.forget_gate too (the only way to the output gate as an attribute).
        steps = self.__dict__.get("steps", {})
        if name in steps:
            return steps[name]
        gate = name.removesuffix("_gate")
        kind = self.__dict__.get("kind")
        if kind is not None and kind.is_gate(gate) and gate in steps:
            return steps[gate]
        raise AttributeError(f"Trace has no {name!r}; it records {', '.join(steps)}")

    def __getitem__(self, name: str) -> Tensor:
        try:
            return self.steps[name]
        except KeyError:
            raise KeyError(f"Trace has no {name!r}; it records {', '.join(self.steps)}") from None

    def of(self, name: str, layer: int = 0, direction: int = 0) -> Tensor:
        """One layer's values over time, (T, B, size): ``trace.of("forget", layer=1)``."""
        if not -self.num_layers <= layer < self.num_layers:
            raise IndexError(f"layer {layer} is out of range for {self.num_layers} layer(s)")
        if direction not in range(self.num_directions):
            raise IndexError(
                f"direction {direction} is out of range: the module has {self.num_directions} "
                "direction(s) (0 forward, 1 backward)"
            )
        return self[name][(layer % self.num_layers) * self.num_directions + direction]


def gradient_through_time(module, input: Tensor, hx=None, generator: torch.Generator | None = None) -> Tensor:
    """How strongly the last step still feels each input: ``|d (v . h_T) / d x_t|`` for every step t.

    ``h_T`` is the top layer's final hidden state (forward direction) and ``v``
    a fixed random unit vector, so the number is one backward pass and does not
    favour any unit. ``input`` is time-major or batch-first as the module
    expects; the result, shape (T,), is averaged over the batch. A plain RNN's
    values fall off quickly with distance from the end (its short-term
    memory); gated cells keep them up over far longer spans.
    """
    x = input.detach().clone().requires_grad_(True)
    output, state = module(x, hx)
    h_n = state[0] if isinstance(state, tuple) else state
    directions = 2 if module.bidirectional else 1
    last = h_n[-directions]  # top layer, forward direction: (B, H) or (H,) unbatched
    v = torch.randn(last.shape[-1], generator=generator, dtype=last.dtype)
    (last @ (v / v.norm()).to(last.device)).sum().backward()
    grad = x.grad
    if grad.dim() == 2:  # unbatched (T, I)
        return grad.norm(dim=-1)
    if module.batch_first:
        grad = grad.transpose(0, 1)
    return grad.norm(dim=-1).mean(dim=1)
