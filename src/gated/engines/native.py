"""The native engine: torch's own fused kernels (``torch._VF.lstm``, ``gru``, ``rnn_tanh``, ``rnn_relu``).

This is exactly what ``torch.nn.LSTM`` runs (MKL/oneDNN on CPU, cuDNN on GPU),
called with gated's parameters, which have torch's names and layout. It is the
fastest choice where the batch and hidden size are large, but it runs the whole
sequence inside one library call, so it cannot record a trace.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .reference import EngineOutput, State
from .spec import StackSpec
from .tracing import vmapping


def supports(spec: StackSpec, x: Tensor, record: bool) -> str | None:
    """None when torch's kernel can do what is asked, else why not."""
    if spec.kind.native is None:
        return f"torch has no kernel for the {spec.kind.name} cell"
    if spec.regularization:  # torch's kernels have neither
        return spec.regularization
    if record:
        return "torch's kernels run the sequence in one call and cannot record gates (trace)"
    if vmapping():
        return "torch.func.vmap has no batching rule for torch's recurrent kernels (torch.nn fails there too)"
    return None


def run(spec: StackSpec, x: Tensor, lengths: Tensor | None, state: State, record: bool) -> EngineOutput:
    reason = supports(spec, x, record)
    if reason:
        raise RuntimeError(f"engine='native' cannot do this: {reason}")
    kernel = _kernel(spec.kind.native)
    if spec.kind.native == "lstm" and torch.compiler.is_dynamo_compiling() and not torch.compiler.is_exporting():
        kernel = _eager(kernel)
    weights = spec.flat_weights()
    hx = state if len(state) > 1 else state[0]  # torch's kernels take (h, c) as a tuple, a lone h as it is
    flags = (spec.bias, spec.num_layers, float(spec.dropout), spec.training, spec.num_directions == 2)
    if lengths is None:
        output, *new_state = kernel(x, hx, weights, *flags, False)
        return EngineOutput(output, tuple(new_state), None)
    # Unequal lengths: torch's packed kernel; states come back in the packed (sorted) order.
    packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
    order, unorder = packed.sorted_indices, packed.unsorted_indices
    sorted_state = tuple(h.index_select(1, order) for h in state)
    hx = sorted_state if len(state) > 1 else sorted_state[0]
    data, *new_state = kernel(packed.data, packed.batch_sizes, hx, weights, *flags)
    output, _ = pad_packed_sequence(packed._replace(data=data), total_length=x.size(0))
    return EngineOutput(output, tuple(s.index_select(1, unorder) for s in new_state), None)


_KERNELS: dict[str, object] = {}


def _kernel(name: str):
    """torch's kernel of that name, looked up once: ``torch._VF``'s attribute lookup costs 5 us a call."""
    kernel = _KERNELS.get(name)
    if kernel is None:
        kernel = _KERNELS[name] = getattr(torch._VF, name)
    return kernel


def _eager(kernel):
    """``kernel`` run outside torch.compile's graph, as dynamo runs torch.nn.LSTM.

    AOT autograd and inductor cannot handle the CPU LSTM kernel (``mkldnn_rnn_layer``:
    "expected Tensor() for op"), which is why dynamo refuses torch.nn's RNN modules and
    runs them eagerly; a graph break does the same here. The GRU and RNN kernels compile.
    """

    @torch._dynamo.disable(reason="torch's LSTM kernel does not compile; torch.nn.LSTM runs eagerly too")
    def run(*args):
        return kernel(*args)

    return run

