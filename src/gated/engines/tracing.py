"""Is one of torch's program tools tracing this call? The fused engine must then step aside.

The fused kernels read a tensor's memory through ``.numpy()`` and compute outside
torch, so torch sees nothing of what they do. That is fine for a call that just
runs, but the tools that turn a module into a program record torch's operations
instead of running them: ``torch.compile`` (dynamo) and ``torch.export`` trace
with fake tensors, ``torch.func``'s transforms wrap tensors, ``torch.jit.trace``
records the ops it sees, and a dispatch mode (``make_fx``, ``FlopCounterMode``)
intercepts them. Under any of them a numba call either fails (fake tensors have
no memory) or, worse, vanishes from the recorded program. So ``engine="auto"``
runs torch's own kernel (or the reference cells) there, and ``engine="fused"``
says why it cannot run.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

_PLAIN = (Tensor, nn.Parameter)


def traced_by(x: Tensor, weights=()) -> str | None:
    """The tool tracing this call, in words for an error message; None for a plain call."""
    if torch.compiler.is_compiling():  # dynamo folds this to a constant while it traces
        return "torch.export" if torch.compiler.is_exporting() else "torch.compile"
    if torch._C._get_tracing_state() is not None:  # torch.jit.is_tracing() without its Python layers
        return "torch.jit.trace"
    if torch._C._functorch.peek_interpreter_stack() is not None:
        return "a torch.func transform (grad, vmap, jacrev, ...)"
    if torch._C._len_torch_dispatch_stack() > 0:
        return "a torch dispatch mode (make_fx, FakeTensorMode, FlopCounterMode, ...)"
    for t in (x, *weights):
        if type(t) not in _PLAIN:  # FakeTensor (torch.export), functorch wrappers, other subclasses
            return f"a tensor subclass ({type(t).__name__}, as torch.export and others trace with)"
    # (torch.jit.script never runs this Python: scripting goes through layers.scriptable_twin.)
    return None


def vmapping() -> bool:
    """Is ``torch.func.vmap`` (alone or inside other transforms) running this call?"""
    if torch.compiler.is_compiling():  # dynamo cannot trace the stack's getter, and handles vmap itself
        return False
    stack = torch._C._functorch.get_interpreter_stack()
    return bool(stack) and any(level.key() == torch._C._functorch.TransformType.Vmap for level in stack)
