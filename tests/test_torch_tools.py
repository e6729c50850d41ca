"""torch's program tools on every gated module under engine="auto", with torch.nn as the oracle.

torch.compile, torch.export, torch.func and torch.jit.script must work where they work
on torch.nn, with the same numbers; the fused engine (numba, outside torch) steps aside
while they trace, and engine="fused" says clearly that it cannot run there.
"""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from oracle import cell_twins, twins

# torch 2.13 deprecates TorchScript and says so on every call; jit.trace also warns that the
# input checks' Python comparisons become constants, true for the one traced shape, which is
# all a trace promises (torch.nn's own checks warn alike). Neither is what these tests check.
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
]

I, H = 3, 4
# Small enough that auto runs the fused engine for RNN and GRU outside the tools.
SEQ_KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
CELL_KINDS = ["rnn_tanh", "lstm", "gru"]
MODULES = [("seq", k) for k in SEQ_KINDS] + [("cell", k) for k in CELL_KINDS]
IDS = [f"{kind}_{form}" for form, kind in MODULES]


def _pair(form: str, kind: str):
    """(torch.nn module, gated module) with the same weights, and an input for both."""
    if form == "seq":
        return (*twins(kind, I, H), torch.randn(5, 2, I))
    return (*cell_twins(kind, I, H), torch.randn(2, I))


def _outputs(value) -> list[torch.Tensor]:
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _outputs(v)]
    return [value]


def _assert_same(got, want) -> None:
    for g, w in zip(_outputs(got), _outputs(want), strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)


def _loss(value) -> torch.Tensor:
    return sum(t.sum() for t in _outputs(value))


@pytest.mark.parametrize("form, kind", MODULES, ids=IDS)
def test_torch_compile(form, kind):
    theirs, ours, x = _pair(form, kind)
    torch._dynamo.reset()
    compiled = torch.compile(ours, backend="aot_eager")  # dynamo and AOT autograd, without inductor's codegen
    got, want = compiled(x), theirs(x)
    _assert_same(got, want)
    _loss(got).backward()
    _loss(want).backward()
    _assert_same([p.grad for p in ours.parameters()], [p.grad for p in theirs.parameters()])


def test_torch_compile_inductor_and_fullgraph():
    theirs, ours, x = _pair("seq", "gru")
    torch._dynamo.reset()
    _assert_same(torch.compile(ours, fullgraph=True)(x), theirs(x))


@pytest.mark.parametrize("form, kind", MODULES, ids=IDS)
def test_torch_export(form, kind):
    theirs, ours, x = _pair(form, kind)
    exported = torch.export.export(ours, (x,))
    _assert_same(exported.module()(x), theirs(x))


@pytest.mark.parametrize("form, kind", MODULES, ids=IDS)
def test_torch_func_grad_and_vmap(form, kind):
    theirs, ours, x = _pair(form, kind)

    def grads(module):
        params = dict(module.named_parameters())
        return torch.func.grad(lambda p: _loss(functional_call(module, p, (x,))))(params)

    want = grads(theirs)
    _assert_same([grads(ours)[name] for name in want], list(want.values()))
    # vmap over a batch of inputs: torch.nn's RNN kernels have no batching rule, the
    # reference cells do, so this is checked against running the inputs one by one.
    xs = torch.randn(3, *x.shape)
    got = torch.func.vmap(lambda xi: _outputs(ours(xi))[0])(xs)
    _assert_same(got, torch.stack([_outputs(theirs(xi))[0] for xi in xs]))


@pytest.mark.parametrize("form, kind", MODULES, ids=IDS)
def test_torch_jit_script_and_trace(form, kind):
    theirs, ours, x = _pair(form, kind)
    # Scripted inside a model, as torch.nn's RNN modules must be: scripted alone, torch's
    # overloaded forward (Tensor or PackedSequence) leaves them without a callable forward.
    scripted = torch.jit.script(torch.nn.Sequential(ours))
    _assert_same(scripted(x), theirs(x))
    # The scripted module trains the very parameters of the gated one.
    assert {p.data_ptr() for p in scripted.parameters()} == {p.data_ptr() for p in ours.parameters()}
    _assert_same(torch.jit.trace(ours, (x,))(x), theirs(x))


@pytest.mark.parametrize("form", ["seq", "cell"])
def test_script_alone_gives_what_torch_nn_gives(form):
    theirs, ours, x = _pair(form, "gru")
    want, got = torch.jit.script(theirs), torch.jit.script(ours)
    assert got.original_name == want.original_name
    if form == "cell":  # torch.nn's scripted GRU alone has no callable forward: nor has ours
        _assert_same(got(x), want(x))


@pytest.mark.parametrize(
    "tool, match",
    [
        (lambda m, x: torch.compile(m, backend="eager")(x), "torch.compile is tracing"),
        (lambda m, x: torch.export.export(m, (x,)), "torch.export is tracing"),
        (lambda m, x: torch.func.grad(lambda x: m(x)[0].sum())(x), "torch.func transform"),
        (lambda m, x: torch.jit.trace(m, (x,)), "torch.jit.trace is tracing"),
        (lambda m, x: torch.jit.script(m), "cannot be scripted"),
    ],
    ids=["compile", "export", "func", "jit_trace", "jit_script"],
)
def test_fused_engine_refuses_clearly(tool, match):
    _, ours = twins("gru", I, H, engine="fused")
    torch._dynamo.reset()
    with pytest.raises(RuntimeError, match=match) as error:
        tool(ours, torch.randn(5, 2, I))
    assert "engine='auto' or 'native'" in str(error.value)
