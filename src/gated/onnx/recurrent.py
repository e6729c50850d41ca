"""A recurrent stack (layers x directions) as ONNX operators.

Two ways to write one layer and direction:

* ONNX's own ``LSTM``, ``GRU`` and ``RNN`` operators, where their formula is gated's: the
  LSTM (peepholes go in the operator's P input), the GRU (``linear_before_reset=1``, torch's
  ``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``) and the tanh or relu RNN. The weight rows
  are reordered: torch's LSTM i, f, g, o become ONNX's i, o, f, c; torch's GRU r, z, n
  become ONNX's z, r, h. Sequence lengths go to the operator's ``sequence_lens``.
* A ``Scan`` over time whose body is the cell written out in elementwise operators, where
  the operators have no place for what the cell does: the LSTM's projection (h = W_hr h
  feeds back, and ONNX's LSTM has no W_hr), layer normalisation, minGRU and minLSTM, and
  zoneout (in eval: s = p s_prev + (1 - p) s_new). Sequence lengths become a mask: past a
  sequence's end the state stays and the output is 0, as with torch's PackedSequence.

Everything runs as in eval mode: no dropout, zoneout's expectation, no recurrent dropout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kinds
from ..cells import LAYER_NORM_EPS
from .graph import BOOL, FLOAT, INT32, Graph

# ONNX's gate order, as positions in torch's rows:
# LSTM i, o, f, c from torch's i, f, g, o; GRU z, r, h from torch's r, z, n.
ONNX_ROWS = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN": (0,)}

LSTM_KINDS = (kinds.LSTM, kinds.PEEPHOLE_LSTM, kinds.LAYER_NORM_LSTM)
GRU_KINDS = (kinds.GRU, kinds.LAYER_NORM_GRU)
RNN_KINDS = (kinds.RNN_TANH, kinds.RNN_RELU)
MIN_KINDS = (kinds.MIN_GRU, kinds.MIN_LSTM)
EXPORTABLE = LSTM_KINDS + GRU_KINDS + RNN_KINDS + MIN_KINDS


@dataclass(frozen=True)
class Stack:
    """What the exporter reads of a recurrent module: its kind, sizes and weights as numpy float32."""

    kind: kinds.CellKind
    input_size: int
    hidden_size: int
    proj_size: int
    num_layers: int
    num_directions: int
    batch_first: bool
    zoneout: tuple[float, ...]  # per state, in the kind's order; () when off
    layers: tuple[tuple[dict[str, np.ndarray | None], ...], ...]  # [layer][direction] -> name -> weight

    @property
    def out_size(self) -> int:
        """The size of h: proj_size when projecting, else hidden_size."""
        return self.proj_size or self.hidden_size

    @property
    def has_cell(self) -> bool:
        return "cell" in self.kind.states

    @property
    def native(self) -> bool:
        """Does ONNX's own operator compute exactly this cell?"""
        plain = (kinds.LSTM, kinds.PEEPHOLE_LSTM, kinds.GRU) + RNN_KINDS
        return self.kind in plain and not self.proj_size and not self.zoneout


def stack_of(module) -> Stack:
    """The Stack of a gated recurrent module (any of its cells), or of torch.nn.RNN, LSTM or GRU."""
    layered = hasattr(module, "weight_ih_l0")  # a stack over time, not a one-step cell
    kind = module.kind if layered and hasattr(module, "kind") else _torch_kind(module)
    if kind not in EXPORTABLE:
        names = ", ".join(k.name for k in EXPORTABLE)
        raise ValueError(f"the {kind.name} cell has no ONNX form: its step is Python code the exporter "
                         f"cannot read, and ONNX has no operator for it; gated exports {names}")
    directions = 2 if module.bidirectional else 1
    extras = [extra.name for extra in kind.extras]
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", *extras)

    def weights(layer: int, direction: int) -> dict:
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        found = {name: getattr(module, name + suffix, None) for name in names}
        return {name: None if w is None else as_numpy(w) for name, w in found.items()}

    layers = tuple(tuple(weights(layer, d) for d in range(directions)) for layer in range(module.num_layers))
    zoneout = tuple(getattr(module, "_zoneout_states", ()))  # torch.nn's modules have none
    return Stack(kind, module.input_size, module.hidden_size, getattr(module, "proj_size", 0),
                 module.num_layers, directions, module.batch_first, zoneout, layers)


def as_numpy(weight) -> np.ndarray:
    """A weight as the model holds it: float32 on the CPU, whatever the module's device and dtype."""
    import torch

    return weight.detach().to("cpu", dtype=torch.float32).numpy()


def _torch_kind(module) -> kinds.CellKind:
    """torch.nn.RNN, LSTM and GRU carry their cell in ``mode``, under the kinds' own names; anything else
    (a one-step cell, a Linear) is refused, saying what can be exported."""
    mode = getattr(module, "mode", None)
    if mode not in ("LSTM", "GRU", "RNN_TANH", "RNN_RELU") or not hasattr(module, "weight_ih_l0"):
        raise ValueError(f"cannot export a {type(module).__name__}: give a gated recurrent module (RNN, "
                         "LSTM, GRU, PeepholeLSTM, LayerNormLSTM, LayerNormGRU, MinGRU, MinLSTM), a torch.nn "
                         "RNN, LSTM or GRU, a gated SequenceModel, or a run folder written by 'gated train'")
    return kinds.KINDS[mode]


@dataclass(frozen=True)
class Sequence:
    """What every layer reads besides its input: the lengths, as each way of writing a layer wants them."""

    lengths32: str  # (B,) int32: the ONNX operators' sequence_lens
    mask: str  # (T, B, 1) bool: step t of sequence b is real


def run_stack(g: Graph, stack: Stack, x: str, seq: Sequence, h0: str, c0: str | None):
    """Every layer over time-major ``x`` (T, B, F) from states h0 (L*D, B, ·) and c0.

    Returns (output (T, B, D * out_size), h_n (L*D, B, out_size), c_n or None), torch's layout.
    """
    finals_h, finals_c = [], []
    layer_input = x
    for layer, directions in enumerate(stack.layers):
        first, last = layer * stack.num_directions, (layer + 1) * stack.num_directions
        if stack.native:
            h_l = g.op("Slice", h0, g.ints(first), g.ints(last), g.ints(0))
            c_l = g.op("Slice", c0, g.ints(first), g.ints(last), g.ints(0)) if c0 else None
            layer_input, h_n, c_n = _native_layer(g, stack, directions, layer_input, seq, h_l, c_l)
        else:
            outputs, h_parts, c_parts = [], [], []
            for direction, weights in enumerate(directions):
                index = g.ints(first + direction)
                start = [g.op("Squeeze", g.op("Gather", s, index, axis=0), g.ints(0)) for s in (h0, c0) if s]
                reverse = direction == 1
                out, final = _scan_direction(g, stack, weights, layer_input, seq, start, reverse)
                outputs.append(out)
                h_parts.append(g.op("Unsqueeze", final[0], g.ints(0)))
                if stack.has_cell:
                    c_parts.append(g.op("Unsqueeze", final[1], g.ints(0)))
            layer_input, h_n = g.concat(outputs, axis=-1), g.concat(h_parts, axis=0)
            c_n = g.concat(c_parts, axis=0) if c_parts else None
        finals_h.append(h_n)
        finals_c.append(c_n)
    c_n = g.concat(finals_c, axis=0) if stack.has_cell else None
    return layer_input, g.concat(finals_h, axis=0), c_n


# -- ONNX's own operators ---------------------------------------------------------------------


def _rows(weight: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """Reorder the gate blocks of a torch weight or bias (rows grouped by gate) into ONNX's order."""
    blocks = np.split(weight, len(order), axis=0)
    return np.concatenate([blocks[i] for i in order], axis=0)


def _native_layer(g: Graph, stack: Stack, directions, x: str, seq: Sequence, h0: str, c0: str | None):
    """One layer, both directions at once, as ONNX's LSTM, GRU or RNN operator."""
    kind = stack.kind
    family = "LSTM" if kind in LSTM_KINDS else "GRU" if kind in GRU_KINDS else "RNN"
    order = ONNX_ROWS[family]
    W = np.stack([_rows(w["weight_ih"], order) for w in directions])
    R = np.stack([_rows(w["weight_hh"], order) for w in directions])
    B = None  # ONNX's B is b_ih then b_hh
    if directions[0]["bias_ih"] is not None:
        B = g.const(np.stack([np.concatenate([_rows(w["bias_ih"], order), _rows(w["bias_hh"], order)])
                              for w in directions]), "B")
    both = len(directions) == 2
    attrs = {"hidden_size": stack.hidden_size, "direction": "bidirectional" if both else "forward"}
    inputs = [x, g.const(W, "W"), g.const(R, "R"), B, seq.lengths32, h0]
    if family == "LSTM":
        inputs.append(c0)
        if kind is kinds.PEEPHOLE_LSTM:  # ONNX's P holds the peepholes in the order i, o, f
            P = [np.concatenate([w["weight_ci"], w["weight_co"], w["weight_cf"]]) for w in directions]
            inputs.append(g.const(np.stack(P), "P"))
    elif family == "GRU":
        attrs["linear_before_reset"] = 1  # torch's GRU: r multiplies (W_hn h + b_hn), after the product
    else:
        attrs["activations"] = ["Tanh" if kind is kinds.RNN_TANH else "Relu"] * len(directions)
    outputs = 3 if family == "LSTM" else 2
    results = g.op(family, *inputs, outputs=outputs, **attrs)
    y = g.op("Transpose", results[0], perm=[0, 2, 1, 3])  # (T, D, B, H) -> (T, B, D, H)
    y = g.op("Reshape", y, g.ints(0, 0, -1))  # (T, B, D * H): forward then backward, as torch concatenates
    return y, results[1], results[2] if family == "LSTM" else None


# -- a Scan over the cell written out -----------------------------------------------------------


def _scan_direction(g: Graph, stack: Stack, w: dict, x: str, seq: Sequence, start: list[str], reverse: bool):
    """One layer and direction as a Scan; returns (output (T, B, out_size), final states)."""
    x_gates = _input_share(g, stack, w, x)
    body = g.body()
    states = [body.fresh(name) for name in stack.kind.states]
    for name in states:
        body.add_input(name, FLOAT, None)
    x_t, real = body.fresh("x_t"), body.fresh("real")
    body.add_input(x_t, FLOAT, None)
    body.add_input(real, BOOL, None)
    new = _CELLS[_family(stack.kind)](body, stack, w, x_t, states)
    if stack.zoneout:  # eval's expectation: s = p s_prev + (1 - p) s_new, per state
        new = [body.op("Add", body.op("Mul", s, body.const(p)), body.op("Mul", n, body.const(1 - p)))
               if p else n for p, s, n in zip(stack.zoneout, states, new)]
    kept = [body.fresh("state_out") for _ in states]
    for name, n, s in zip(kept, new, states):  # past a sequence's end its state stays as it was
        body.named("Where", [real, n, s], [name])
        body.add_output(name, FLOAT, None)
    y_t = body.fresh("y_t")
    body.named("Where", [real, new[0], body.const(0.0)], [y_t])  # and its output is 0, as torch pads it
    body.add_output(y_t, FLOAT, None)
    direction = [1 if reverse else 0]
    results = g.op("Scan", *start, x_gates, seq.mask, outputs=len(states) + 1, body=body.graph("cell"),
                   num_scan_inputs=2, scan_input_directions=direction * 2, scan_output_directions=direction)
    return results[-1], results[:-1]


def _family(kind) -> str:
    if kind in LSTM_KINDS:
        return "LSTM"
    if kind in GRU_KINDS:
        return "GRU"
    return "RNN" if kind in RNN_KINDS else kind.name


def _norm(g: Graph, x: str, gain: np.ndarray, bias: np.ndarray | None) -> str:
    """Layer normalisation over the last axis, torch's F.layer_norm with gated's epsilon."""
    # A norm without a bias (the GRU's) gets zeros: onnxruntime 1.32 crashed on the omitted input.
    bias = np.zeros_like(gain) if bias is None else bias
    return g.op("LayerNormalization", x, g.const(gain, "ln_gain"), g.const(bias, "ln_bias"), axis=-1,
                epsilon=LAYER_NORM_EPS)


def _input_share(g: Graph, stack: Stack, w: dict, x: str) -> str:
    """The input's share of the gates for every step at once, (T, B, rows * H), as gated computes it."""
    if stack.kind in (kinds.LAYER_NORM_LSTM, kinds.LAYER_NORM_GRU):  # LN_x(W_ih x) + b_ih
        normed = _norm(g, g.matmul_t(x, w["weight_ih"]), w["ln_weight_ih"], w.get("ln_bias_ih"))
        return normed if w["bias_ih"] is None else g.op("Add", normed, g.const(w["bias_ih"]))
    return g.matmul_t(x, w["weight_ih"], w["bias_ih"])


def _hidden_share(g: Graph, stack: Stack, w: dict, h: str) -> str:
    """The hidden state's share, W_hh h + b_hh (layer-normalised for the LN cells)."""
    if stack.kind in (kinds.LAYER_NORM_LSTM, kinds.LAYER_NORM_GRU):
        normed = _norm(g, g.matmul_t(h, w["weight_hh"]), w["ln_weight_hh"], w.get("ln_bias_hh"))
        return normed if w["bias_hh"] is None else g.op("Add", normed, g.const(w["bias_hh"]))
    return g.matmul_t(h, w["weight_hh"], w["bias_hh"])


def _lstm_body(g: Graph, stack: Stack, w: dict, x_t: str, states: list[str]) -> list[str]:
    h, c = states
    H = stack.hidden_size
    i, f, cand, o = g.split(g.op("Add", x_t, _hidden_share(g, stack, w, h)), [H] * 4)
    if stack.kind is kinds.PEEPHOLE_LSTM:  # input and forget gates peek at c_prev
        i = g.op("Add", i, g.op("Mul", g.const(w["weight_ci"]), c))
        f = g.op("Add", f, g.op("Mul", g.const(w["weight_cf"]), c))
    forget, input_, candidate = g.op("Sigmoid", f), g.op("Sigmoid", i), g.op("Tanh", cand)
    c_new = g.op("Add", g.op("Mul", forget, c), g.op("Mul", input_, candidate))
    if stack.kind is kinds.PEEPHOLE_LSTM:  # the output gate peeks at the new cell state
        o = g.op("Add", o, g.op("Mul", g.const(w["weight_co"]), c_new))
    shown = c_new
    if stack.kind is kinds.LAYER_NORM_LSTM:  # h reads a normalised copy; the carried c stays raw
        shown = _norm(g, c_new, w["ln_weight_c"], w["ln_bias_c"])
    h_new = g.op("Mul", g.op("Sigmoid", o), g.op("Tanh", shown))
    if w["weight_hr"] is not None:  # the projection: h = W_hr h, what ONNX's LSTM operator lacks
        h_new = g.matmul_t(h_new, w["weight_hr"])
    return [h_new, c_new]


def _gru_body(g: Graph, stack: Stack, w: dict, x_t: str, states: list[str]) -> list[str]:
    (h,) = states
    H = stack.hidden_size
    x_r, x_z, x_n = g.split(x_t, [H] * 3)
    h_r, h_z, h_n = g.split(_hidden_share(g, stack, w, h), [H] * 3)
    reset = g.op("Sigmoid", g.op("Add", x_r, h_r))
    update = g.op("Sigmoid", g.op("Add", x_z, h_z))
    candidate = g.op("Tanh", g.op("Add", x_n, g.op("Mul", reset, h_n)))
    keep_new = g.op("Sub", g.const(1.0), update)
    return [g.op("Add", g.op("Mul", keep_new, candidate), g.op("Mul", update, h))]


def _rnn_body(g: Graph, stack: Stack, w: dict, x_t: str, states: list[str]) -> list[str]:
    combined = g.op("Add", x_t, _hidden_share(g, stack, w, states[0]))
    return [g.op("Tanh" if stack.kind is kinds.RNN_TANH else "Relu", combined)]


def _min_gru_body(g: Graph, stack: Stack, w: dict, x_t: str, states: list[str]) -> list[str]:
    x_z, x_h = g.split(x_t, [stack.hidden_size] * 2)
    update = g.op("Sigmoid", x_z)
    keep = g.op("Sub", g.const(1.0), update)  # h = (1 - z) h_prev + z h~: z weighs the new value
    return [g.op("Add", g.op("Mul", keep, states[0]), g.op("Mul", update, x_h))]


def _min_lstm_body(g: Graph, stack: Stack, w: dict, x_t: str, states: list[str]) -> list[str]:
    x_f, x_i, x_h = g.split(x_t, [stack.hidden_size] * 3)
    forget, input_ = g.op("Sigmoid", x_f), g.op("Sigmoid", x_i)
    total = g.op("Add", forget, input_)  # the shares add up to 1
    forget_share, input_share = g.op("Div", forget, total), g.op("Div", input_, total)
    return [g.op("Add", g.op("Mul", forget_share, states[0]), g.op("Mul", input_share, x_h))]


_CELLS = {"LSTM": _lstm_body, "GRU": _gru_body, "RNN": _rnn_body, "MIN_GRU": _min_gru_body,
          "MIN_LSTM": _min_lstm_body}


def sequence_inputs(g: Graph, lengths: str, steps: str) -> Sequence:
    """From (B,) int64 lengths and the number of steps (a 1-element int64), both forms the layers read."""
    lengths32 = g.op("Cast", lengths, to=INT32)
    zero, one = g.const(0, "zero", np.int64), g.const(1, "one", np.int64)
    time = g.op("Range", zero, g.op("Squeeze", steps, g.ints(0)), one)
    real = g.op("Less", g.op("Unsqueeze", time, g.ints(1)), g.op("Unsqueeze", lengths, g.ints(0)))  # (T, B)
    return Sequence(lengths32, g.op("Unsqueeze", real, g.ints(2)))
