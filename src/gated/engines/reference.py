"""The reference engine: a plain Python loop over time around the cells of ``cells.py``.

It is the ground truth every other engine is measured against, so it favours
clarity over speed, with two exceptions that cost nothing in clarity:

* the input's share of the gates (``W_ih @ x + b_ih``) is computed for all
  time steps in one matrix product before the loop;
* the loop walks ``xp.unbind(0)`` rather than indexing ``xp[t]``: indexing in
  a loop makes backward allocate one full-size gradient per step.

Sequences of different lengths (packed input) are run padded, with a mask that
freezes each sequence's state once it has ended and zeroes its outputs.

Recurrent regularisation is defined here too: recurrent dropout draws one
mask per layer and direction (:func:`recurrent_dropout_mask`), and zoneout
mixes each step's new state with the previous one after the step
(:class:`Zoneout`), before the mask of packed input. Every random number of a
layer and direction is drawn before its loop, by :func:`draw_masks`, which the
fused engine calls too: under one seed both engines use the same masks. (The
native engine refuses such a call: ``StackSpec.regularization``.)

A cell kind with a ``sequence`` function (gates of the input only: MinGRU,
MinLSTM) has no loop to run: that function computes all steps at once, with
the same mask, and is checked against a loop over its ``step``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .spec import LayerWeights, StackSpec, State
Step = Callable[[Tensor, State], tuple[NamedTuple, State]]


class EngineOutput(NamedTuple):
    output: Tensor  # (T, B, num_directions * hidden), time-major
    state: State  # each (num_layers * num_directions, B, ·)
    steps: dict[str, Tensor] | None  # name -> (num_layers * num_directions, T, B, ·)


def supports(spec: StackSpec, x: Tensor, record: bool) -> str | None:
    """The reference engine runs anything torch can compute."""
    return None


def run(spec: StackSpec, x: Tensor, lengths: Tensor | None, state: State, record: bool) -> EngineOutput:
    """Run all layers and directions of ``spec`` over time-major ``x`` (T, B, I)."""
    return run_layers(spec, x, lengths, state, record, _reference_direction)


def _reference_direction(spec: StackSpec, weights: LayerWeights, layer_input, start: State, lengths, mask,
                         reverse: bool, record: bool):
    kind = spec.kind
    xp = kind.project(layer_input, weights) if kind.project else F.linear(layer_input, weights.w_ih, weights.b_ih)
    if kind.sequence is not None:
        return run_sequence(kind.sequence, xp, start, mask, lengths, reverse, record)
    masks = draw_masks(spec, start, xp.size(0))
    out, final, steps = run_direction(bind(kind, weights, masks.recurrent), xp, start, mask, lengths, reverse,
                                      record, masks.zoneout)
    if steps is not None and masks.recurrent is not None:
        steps["recurrent_mask"] = recorded_recurrent_mask(masks.recurrent, xp.size(0), mask)
    return out, final, steps


class Masks(NamedTuple):
    """The random numbers of recurrent regularisation for one layer and direction, drawn before its loop."""

    recurrent: Tensor | None  # recurrent dropout's (B, H): :func:`recurrent_dropout_mask`
    zoneout: Zoneout | None  # zoneout's, every step's at once: :class:`Zoneout`


def draw_masks(spec: StackSpec, start: State, steps: int) -> Masks:
    """Every mask one layer and direction needs, in a fixed order: recurrent dropout's, then zoneout's.

    Both the reference and the fused engine call this, before their loop over time, so
    under the same ``torch.manual_seed`` they run with the same masks.
    """
    hidden = start[spec.kind.states.index("hidden")]
    zoneout = Zoneout.draw(spec.kind.states, spec.zoneout, spec.training, start, steps) if spec.zones_out else None
    return Masks(recurrent_dropout_mask(spec, hidden), zoneout)


def recorded_recurrent_mask(dropped: Tensor, steps: int, mask: Tensor | None) -> Tensor:
    """What a trace shows of recurrent dropout: the same mask at every step, zero past a sequence's end."""
    return dropped.expand(steps, *dropped.shape) * (1 if mask is None else mask)


def recurrent_dropout_mask(spec: StackSpec, hidden: Tensor) -> Tensor | None:
    """Recurrent dropout's mask for one layer and direction (Gal and Ghahramani 2016), or None when off.

        W_hh reads m ⊙ h_prev instead of h_prev, with the same m at every step of the call
        m_j = 0 with probability p, else 1 / (1 - p)       (inverted dropout: E[m_j] = 1)

    One mask per sequence (a row per batch entry), drawn from torch's generator on the input's
    device, so ``torch.manual_seed`` repeats it. ``hidden`` is the start state, (B, H).
    """
    if not spec.drops_recurrent:
        return None
    keep = 1.0 - spec.recurrent_dropout
    return torch.empty(hidden.shape, dtype=hidden.dtype, device=hidden.device).bernoulli_(keep).div_(keep)


class Zoneout(NamedTuple):
    """Zoneout (Krueger et al. 2017) for one layer and direction: each unit may keep its previous value.

        training: s_t = m ⊙ s_(t-1) + (1 - m) ⊙ s_new,  m_j ~ Bernoulli(p_s), fresh at every step
        eval:     s_t = p_s s_(t-1) + (1 - p_s) s_new    (the expectation over m)

    for each state s (h with p_hidden, c with p_cell), where s_new is what the cell computed
    from s_(t-1) (the LSTM's h_new reads its c_new, not the zoned c_t, as in the paper).
    """

    names: tuple[str, ...]  # the kind's states, in order
    p: tuple[float, ...]  # the probability of keeping each one's previous value
    training: bool
    # Training: per state, every step's m at once (T, B, ·), drawn by :meth:`draw`; None where p = 0, and in eval.
    kept: tuple[Tensor | None, ...] = ()

    @classmethod
    def draw(cls, names, p, training: bool, start: State, steps: int) -> Zoneout:
        """Zoneout with all ``steps`` steps' masks drawn now, state by state (``start``: the state before them)."""
        # rand < p is Bernoulli(p), and on the CPU twice as fast as bernoulli_ (5 against 10 ms for
        # 100 x 32 x 256 masks: a tenth of the LSTM's training step at that shape went into drawing two).
        kept = tuple(
            torch.rand((steps, *s.shape), dtype=s.dtype, device=s.device).lt_(p_s)
            if training and p_s > 0 else None
            for p_s, s in zip(p, start)
        )
        return cls(tuple(names), tuple(p), training, kept)

    def __call__(self, t: int, new: State, prev: State) -> tuple[State, dict[str, Tensor]]:
        """Step ``t``'s zoned states, and its masks (1 where a unit kept its previous value) by name."""
        states, kept = [], {}
        for name, p, masks, n, s in zip(self.names, self.p, self.kept or (None,) * len(self.p), new, prev):
            if p == 0:
                states.append(n)
            elif self.training:
                m = masks[t]
                kept[f"zoneout_{name}"] = m
                states.append(torch.where(m.bool(), s, n))  # exactly one or the other
            else:
                states.append(p * s + (1 - p) * n)
        return tuple(states), kept


def run_layers(spec: StackSpec, x: Tensor, lengths: Tensor | None, state: State, record: bool,
               direction) -> EngineOutput:
    """The stack of layers and directions every engine shares; ``direction`` runs one of them.

    ``direction(spec, weights, layer_input, start_state, lengths, mask, reverse, record)``
    returns (output (T, B, ·), final state, recorded steps or None).
    """
    mask = None if lengths is None else step_mask(lengths, x.size(0)).unsqueeze(-1)
    final_states: list[State] = []
    recorded: list[dict[str, Tensor]] = []
    layer_input = x
    for layer, directions in enumerate(spec.layers):
        if layer > 0 and spec.dropout > 0:
            layer_input = F.dropout(layer_input, spec.dropout, spec.training)
        outputs = []
        for direction_index, weights in enumerate(directions):
            index = layer * len(directions) + direction_index
            start = tuple(s[index] for s in state)
            out, final, steps = direction(spec, weights, layer_input, start, lengths, mask, direction_index == 1, record)
            outputs.append(out)
            final_states.append(final)
            if record:
                recorded.append(steps)
        layer_input = torch.cat(outputs, dim=-1) if len(outputs) == 2 else outputs[0]
    new_state = tuple(torch.stack(parts) for parts in zip(*final_states))
    steps = {name: torch.stack([r[name] for r in recorded]) for name in recorded[0]} if record else None
    return EngineOutput(layer_input, new_state, steps)


def bind(kind, weights: LayerWeights, recurrent_mask: Tensor | None = None) -> Step:
    """One layer's step: the cell of ``kind`` with these weights, returning (all it computed, next state).

    ``recurrent_mask`` (recurrent dropout's, :func:`recurrent_dropout_mask`) multiplies the hidden
    state where ``W_hh`` reads it, and nowhere else; None: the cell reads h as it is.
    """
    if recurrent_mask is None:
        def step(x_t, state):
            values = kind.step(x_t, state, weights)
            return values, kind.next_state(values)

        return step
    hidden = kind.states.index("hidden")

    def dropped_step(x_t, state):
        values = kind.step(x_t, state, weights, recurrent=recurrent_mask * state[hidden])
        return values, kind.next_state(values)

    return dropped_step


def run_direction(step: Step, xp, state: State, mask, lengths, reverse: bool, record: bool,
                  zoneout: Zoneout | None = None):
    """The for loop over time of the guide, for one layer and one direction (with ``zoneout``, if any)."""
    if reverse:
        xp = _reverse_in_time(xp, lengths)
    hiddens, records = [], []
    for t, x_t in enumerate(xp.unbind(0)):
        values, new_state = step(x_t, state)
        kept = {}
        if zoneout is not None:
            new_state, kept = zoneout(t, new_state, state)
            values = values._replace(**dict(zip(zoneout.names, new_state)))  # the output is the zoned h
        if mask is not None:
            # A sequence that has ended keeps its last state.
            new_state = tuple(torch.where(mask[t], n, s) for n, s in zip(new_state, state))
        state = new_state
        hiddens.append(values.hidden)
        if record:
            records.append({**values._asdict(), **kept})
    output = torch.stack(hiddens)
    steps = {name: torch.stack([r[name] for r in records]) for name in records[0]} if record else None
    return _finish(output, state, steps, mask, lengths, reverse)


def run_sequence(sequence, xp, state: State, mask, lengths, reverse: bool, record: bool):
    """One layer and direction of a cell that computes the whole sequence at once (``CellKind.sequence``)."""
    if reverse:
        xp = _reverse_in_time(xp, lengths)  # padding stays at the end, so ``mask`` still fits
    output, state, steps = sequence(xp, state, mask, record)
    return _finish(output, state, steps, mask, lengths, reverse)


def _finish(output, state: State, steps, mask, lengths, reverse: bool):
    """Zero what lies past each sequence's end, and put a reversed direction back in time order."""
    if mask is not None:
        output = output * mask
        if steps is not None:
            steps = {name: value * mask for name, value in steps.items()}
    if reverse:
        output = _reverse_in_time(output, lengths)
        if steps is not None:
            steps = {name: _reverse_in_time(value, lengths) for name, value in steps.items()}
    return output, state, steps


def step_mask(lengths: Tensor, steps: int) -> Tensor:
    """(T, B) booleans, True where step t is part of sequence b."""
    t = torch.arange(steps, device=lengths.device).unsqueeze(1)
    return t < lengths.unsqueeze(0)


def _reverse_in_time(seq: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence within its own length; padding stays where it is."""
    if lengths is None:
        return seq.flip(0)
    steps = seq.size(0)
    t = torch.arange(steps, device=seq.device).unsqueeze(1)
    lengths = lengths.to(seq.device).unsqueeze(0)
    index = torch.where(t < lengths, lengths - 1 - t, t)  # (T, B), its own inverse
    return seq.gather(0, index.unsqueeze(-1).expand_as(seq))
