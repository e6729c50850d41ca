"""Whole ONNX models: a recurrent module alone, or a task model (embedding, layers, head, readout).

Every model takes its initial state as optional inputs and gives its final state as
outputs, so a runtime can stream by feeding ``h_n`` (and ``c_n``) back as ``h0`` (``c0``).
An optional input is a graph input with an initializer of the same name, which ONNX
runtimes use when the caller feeds nothing: zeros of batch 1, broadcast to the batch,
for a state; ``[-1]`` for the lengths, read as "every sequence runs the whole time".
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from .graph import FLOAT, INT64, Graph
from .recurrent import Stack, as_numpy, run_stack, sequence_inputs, stack_of

MIN_OPSET = 17  # LayerNormalization, which the layer-normalised cells need, came with opset 17


def recurrent_model(module, opset: int) -> onnx.ModelProto:
    """A gated (or torch.nn) RNN, LSTM, GRU or other gated cell, with torch's inputs and outputs.

    Inputs: ``input`` (time, batch, features), or (batch, time, features) with batch_first;
    optional ``lengths`` (batch,) int64, each sequence's real steps (what a PackedSequence
    means); optional ``h0`` (and ``c0``) (layers * directions, batch, ·). Outputs: ``output``,
    ``h_n`` (and ``c_n``), as the module's forward returns them.
    """
    stack = stack_of(module)
    g = Graph(opset)
    layout = ["batch", "time"] if stack.batch_first else ["time", "batch"]
    x = g.add_input("input", FLOAT, [*layout, stack.input_size])
    if stack.batch_first:
        x = g.op("Transpose", x, perm=[1, 0, 2])
    output, h_n, c_n = _stack_with_state(g, stack, x)
    if stack.batch_first:
        output = g.op("Transpose", output, perm=[1, 0, 2])
    _outputs(g, {"output": (output, [*layout, stack.num_directions * stack.out_size])}, stack, h_n, c_n)
    return _model(g, "gated_" + stack.kind.name.lower(), opset)


def sequence_model(model, opset: int) -> onnx.ModelProto:
    """A gated SequenceModel (what 'gated train' trains) as it runs in eval mode.

    Inputs: ``tokens`` (batch, time) int64 ids, or ``features`` (batch, time, features) float;
    optional ``lengths``, ``h0``, ``c0`` as for a module. Outputs: ``logits`` ((batch, classes),
    or (batch, time, classes) for the readout "every"), ``probabilities`` (their softmax) where
    there are classes, and ``h_n`` (and ``c_n``).
    """
    config = model.config
    stack = stack_of(model.rnn)
    g = Graph(opset)
    if model.embedding is not None:
        tokens = g.add_input("tokens", INT64, ["batch", "time"])
        table = g.const(as_numpy(model.embedding.weight), "embedding")
        x = g.op("Gather", table, g.op("Transpose", tokens, perm=[1, 0]), axis=0)  # (T, B, E)
    else:
        features = g.add_input("features", FLOAT, ["batch", "time", config.input_size])
        x = g.op("Transpose", features, perm=[1, 0, 2])
    output, h_n, c_n, mask = _stack_with_state(g, stack, x, with_mask=True)
    read = _readout(g, config.readout, stack, output, h_n, mask)
    logits = g.matmul_t(read, as_numpy(model.head.weight), as_numpy(model.head.bias), "head")
    every = config.readout == "every"
    shape = ["batch", "time", config.output_size] if every else ["batch", config.output_size]
    named = {"logits": (logits, shape)}
    if config.output_size > 1:
        named["probabilities"] = (g.op("Softmax", logits, axis=-1), shape)
    _outputs(g, named, stack, h_n, c_n)
    return _model(g, f"gated_{config.cell.replace('-', '_')}_model", opset)


def _stack_with_state(g: Graph, stack: Stack, x: str, with_mask: bool = False):
    """The optional lengths and state inputs, then the stack over time-major ``x``."""
    states = stack.num_layers * stack.num_directions
    lengths = g.add_input("lengths", INT64, ["batch"], default=np.array([-1], np.int64))
    h0 = g.add_input("h0", FLOAT, [states, "batch", stack.out_size],
                     default=np.zeros((states, 1, stack.out_size), np.float32))
    c0 = None
    if stack.has_cell:
        c0 = g.add_input("c0", FLOAT, [states, "batch", stack.hidden_size],
                         default=np.zeros((states, 1, stack.hidden_size), np.float32))
    shape = g.op("Shape", x)
    steps = g.op("Slice", shape, g.ints(0), g.ints(1), g.ints(0))
    batch = g.op("Slice", shape, g.ints(1), g.ints(2), g.ints(0))
    # Not given ([-1]): every sequence is the whole input long. Given: (B,) as it is.
    given = g.op("Where", g.op("Less", lengths, g.const(0, "zero", np.int64)), steps, lengths)
    seq = sequence_inputs(g, g.op("Expand", given, batch), steps)
    h0 = g.op("Expand", h0, g.op("Concat", g.ints(states), batch, g.ints(stack.out_size), axis=0))
    if c0 is not None:
        c0 = g.op("Expand", c0, g.op("Concat", g.ints(states), batch, g.ints(stack.hidden_size), axis=0))
    output, h_n, c_n = run_stack(g, stack, x, seq, h0, c0)
    return (output, h_n, c_n, seq.mask) if with_mask else (output, h_n, c_n)


def _readout(g: Graph, readout: str, stack: Stack, output: str, h_n: str, mask: str) -> str:
    """What the head reads, as models.SequenceModel._read computes it."""
    if readout == "every":
        return g.op("Transpose", output, perm=[1, 0, 2])  # (B, T, D * H)
    if readout == "max":  # over real steps only: padding counts as -inf
        masked = g.op("Where", mask, output, g.const(-np.inf, "minus_inf"))
        return g.reduce("ReduceMax", masked, axis=0)
    # "last": the top layer's final h of each direction, side by side.
    directions = stack.num_directions
    top = g.op("Slice", h_n, g.ints(-directions), g.ints(stack.num_layers * directions), g.ints(0))
    return g.op("Reshape", g.op("Transpose", top, perm=[1, 0, 2]), g.ints(0, -1))  # (B, D * H)


def _outputs(g: Graph, named: dict, stack: Stack, h_n: str, c_n: str | None) -> None:
    """Give the results their public names, the final state after what the model computes."""
    states = stack.num_layers * stack.num_directions
    named = dict(named, h_n=(h_n, [states, "batch", stack.out_size]))
    if c_n is not None:
        named["c_n"] = (c_n, [states, "batch", stack.hidden_size])
    for name, (value, shape) in named.items():
        g.named("Identity", [value], [name])
        g.add_output(name, FLOAT, shape)


def _model(g: Graph, name: str, opset: int) -> onnx.ModelProto:
    opsets = [helper.make_opsetid("", opset)]
    # The oldest IR version that holds this opset: runtimes that lag behind onnx still read the file.
    model = helper.make_model(g.graph(name), opset_imports=opsets, producer_name="gated",
                              ir_version=helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(model, full_check=True)
    return model
