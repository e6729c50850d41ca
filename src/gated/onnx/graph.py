"""A small builder for ONNX graphs: named constants, one call per operator, unique names.

``onnx.helper`` asks for every name by hand; this keeps them unique (a counter shared
by a graph and its Scan bodies, so a body may read the outer graph's weights by name)
and turns numpy arrays into initializers. Only the exporter uses it.
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT, INT64, INT32, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32, TensorProto.BOOL


class Graph:
    """Nodes, initializers, inputs and outputs of one ONNX graph (the model's, or a Scan body)."""

    def __init__(self, opset: int, names=None) -> None:
        self.opset = opset
        self._names = names if names is not None else itertools.count()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []

    def fresh(self, hint: str) -> str:
        return f"{hint}_{next(self._names)}"

    def body(self) -> Graph:
        """A subgraph (a Scan body) whose names cannot clash with this graph's."""
        return Graph(self.opset, self._names)

    def const(self, value, hint: str = "const", dtype=np.float32) -> str:
        """An initializer holding ``value`` (a float32 array unless ``dtype`` says otherwise)."""
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name))
        return name

    def ints(self, *values: int) -> str:
        return self.const(np.array(values, dtype=np.int64), "ints", np.int64)

    def op(self, op_type: str, *inputs: str | None, outputs: int = 1, hint: str | None = None, **attrs):
        """Add one node; returns its output's name, or a list of names when ``outputs`` > 1.

        An input given as None is an omitted optional input (the empty name in ONNX).
        """
        names = [self.fresh(hint or op_type.lower()) for _ in range(outputs)]
        self.named(op_type, list(inputs), names, **attrs)
        return names[0] if outputs == 1 else names

    def named(self, op_type: str, inputs: list[str | None], outputs: list[str], **attrs) -> None:
        """A node whose outputs carry the given names (the graph's outputs, a body's state)."""
        names = ["" if i is None else i for i in inputs]
        self.nodes.append(helper.make_node(op_type, names, outputs, **attrs))

    def add_input(self, name: str, elem_type: int, shape, default=None) -> str:
        """A graph input; with ``default`` (an array), an optional one: ONNX runtimes use the
        initializer of the same name when the caller feeds nothing."""
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        if default is not None:
            self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(default), name))
        return name

    def add_output(self, name: str, elem_type: int, shape) -> None:
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))

    def graph(self, name: str) -> onnx.GraphProto:
        return helper.make_graph(self.nodes, name, self.inputs, self.outputs, self.initializers)

    # -- operators whose form changed between opsets ------------------------------------------

    def reduce(self, op_type: str, x: str, axis: int, keepdims: int = 0) -> str:
        """ReduceMax/ReduceMean over one axis: an attribute until opset 18, an input from then on."""
        if self.opset >= 18:
            return self.op(op_type, x, self.ints(axis), keepdims=keepdims)
        return self.op(op_type, x, axes=[axis], keepdims=keepdims)

    def concat(self, parts: list[str], axis: int) -> str:
        """Concat, or the one part itself when there is only one."""
        return parts[0] if len(parts) == 1 else self.op("Concat", *parts, axis=axis)

    def split(self, x: str, sizes: list[int], axis: int = -1) -> list[str]:
        """Split into pieces of ``sizes`` along ``axis`` (the sizes as an input: opset 13 and later)."""
        return self.op("Split", x, self.ints(*sizes), outputs=len(sizes), axis=axis)

    def matmul_t(self, x: str, weight: np.ndarray, bias: np.ndarray | None = None, hint: str = "w") -> str:
        """``x @ weight.T + bias``: torch's F.linear, weight given as torch stores it (out, in)."""
        y = self.op("MatMul", x, self.const(weight.T, hint))
        return y if bias is None else self.op("Add", y, self.const(bias, hint + "_b"))
