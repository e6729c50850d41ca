"""What PyTorch's own recurrent tests check, checked here for every engine with torch.nn as the oracle.

PyTorch's ``test/test_nn.py`` (TestNN, TestNNDeviceType) and the ModuleInfo
error inputs of ``torch/testing/_internal/common_modules.py`` were read for
what they check; the cases below are written anew. docs/torch-test-coverage.md
maps each of torch's tests to the test here or elsewhere in this suite that
covers it, and names what is not copied and why.

Already covered elsewhere, so not repeated here: outputs and first gradients
against torch over every option and layout (test_parity.py), gradcheck
(test_modules.py, test_cells.py), the exception types and messages of bad
arguments (test_errors.py).
"""

from __future__ import annotations

import io
import pickle
import re
import warnings
from dataclasses import dataclass
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import gated
from oracle import CELL_KINDS, cell_twins, pack, tensors_of, twins, weighted_sum

ENGINES = ["reference", "fused", "native", "auto"]
F64 = torch.float64

# name -> (oracle kind, extra constructor arguments)
VARIANTS = {
    "rnn_tanh": ("rnn_tanh", {}),
    "rnn_relu": ("rnn_relu", {}),
    "lstm": ("lstm", {}),
    "lstm_nobias": ("lstm", {"bias": False}),
    "lstm_proj": ("lstm", {"proj_size": 2}),
    "gru": ("gru", {}),
    "gru_nobias": ("gru", {"bias": False}),
}
MAIN_VARIANTS = ["rnn_tanh", "lstm", "lstm_proj", "gru"]


def _is_lstm(module) -> bool:
    return isinstance(module, (nn.LSTM, gated.LSTM))


def _state(module, batch: int, generator=None, dtype=torch.float32, requires_grad=False):
    """A random initial state for ``module`` (torch's or ours), as forward takes it."""
    rows = module.num_layers * (2 if module.bidirectional else 1)
    shapes = [(rows, batch, module.proj_size or module.hidden_size)]
    if _is_lstm(module):
        shapes.append((rows, batch, module.hidden_size))
    parts = tuple(
        torch.randn(s, generator=generator, dtype=dtype).requires_grad_(requires_grad) for s in shapes
    )
    return parts if _is_lstm(module) else parts[0]


def _close(got, want, rtol=1e-5, atol=1e-5):
    got, want = tensors_of(got), tensors_of(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        torch.testing.assert_close(g, w, rtol=rtol, atol=atol)


# -- second derivatives (test_LSTM_grad_and_gradgrad, test_GRU_grad_and_gradgrad) ------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("engine", ENGINES)
def test_second_derivatives_are_correct(engine, variant):
    kind, extra = VARIANTS[variant]
    torch.manual_seed(0)
    _, module = twins(kind, 2, 3, dtype=F64, engine=engine, **extra)
    x = torch.randn(3, 2, 2, dtype=F64, requires_grad=True)
    state = _state(module, 2, dtype=F64, requires_grad=True)
    states = tuple(tensors_of(state))
    params = tuple(module.parameters())

    def f(x, *leaves):
        hx = leaves[: len(states)]
        out, final = module(x, hx if _is_lstm(module) else hx[0])
        return tuple(tensors_of(out) + tensors_of(final))

    # The module reads its own parameters; passing them as inputs makes the checks perturb them.
    # Batched gradients (vmap) are not part of the drop-in contract; torch's own test skips them too.
    # fast_mode compares the derivatives along random directions: far cheaper, and a wrong
    # derivative still fails unless the directions happen to be orthogonal to the error.
    inputs = (x, *states, *params)
    assert torch.autograd.gradcheck(f, inputs, check_batched_grad=False, fast_mode=True)
    assert torch.autograd.gradgradcheck(f, inputs, check_batched_grad=False, fast_mode=True)


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_cell_second_derivatives_are_correct(kind):
    torch.manual_seed(0)
    _, cell = cell_twins(kind, 2, 3, dtype=F64)
    x = torch.randn(2, 2, dtype=F64, requires_grad=True)
    count = 2 if kind == "lstm" else 1
    states = tuple(torch.randn(2, 3, dtype=F64, requires_grad=True) for _ in range(count))

    def f(x, *leaves):
        hx = leaves[: len(states)]
        return tuple(tensors_of(cell(x, hx if kind == "lstm" else hx[0])))

    inputs = (x, *states, *cell.parameters())
    assert torch.autograd.gradgradcheck(f, inputs, check_batched_grad=False, fast_mode=True)


@pytest.mark.parametrize("layout", ["batched", "packed"])
@pytest.mark.parametrize("variant", MAIN_VARIANTS)
@pytest.mark.parametrize("engine", ENGINES)
def test_a_gradient_penalty_trains_like_torch(engine, variant, layout):
    # Differentiating a gradient (a gradient penalty, as in WGAN-GP) gives torch's numbers,
    # through stacked, bidirectional and packed runs.
    kind, extra = VARIANTS[variant]
    torch.manual_seed(0)
    theirs, ours = twins(kind, 3, 4, num_layers=2, bidirectional=True, dtype=F64, engine=engine, **extra)
    results = []
    for module in (theirs, ours):
        g = torch.Generator().manual_seed(5)
        x = torch.randn(4, 3, 3, dtype=F64, generator=g, requires_grad=True)
        hx = _state(module, 3, g, dtype=F64)
        inp = pack(x, [4, 2, 3], batch_first=False) if layout == "packed" else x
        out, state = module(inp, hx)
        loss = weighted_sum(tensors_of(out) + tensors_of(state))
        (grad_x,) = torch.autograd.grad(loss, x, create_graph=True)
        penalty = (grad_x**2).sum()
        penalty.backward()
        results.append([penalty, x.grad] + [p.grad for p in module.parameters()])
    want, got = results
    for g, w in zip(got, want):
        assert g is not None
        torch.testing.assert_close(g, w, rtol=1e-7, atol=1e-9)


# -- cells: zero hidden size, bias given as any truthy or falsy value --------------------------


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_hx", [True, False])
@pytest.mark.parametrize("kind", CELL_KINDS)
def test_cells_with_zero_hidden_size_work_like_torch(kind, with_hx, batched):
    # test_RNN_cell_forward_zero_hidden_size: torch's cells return (batch, 0).
    torch.manual_seed(0)
    theirs, ours = cell_twins(kind, 4, 0)
    lead = (3,) if batched else ()
    x = torch.randn(*lead, 4, requires_grad=True)
    hx = None
    if with_hx:
        h = torch.randn(*lead, 0)
        hx = (h, h) if kind == "lstm" else h
    want, got = theirs(x, hx), ours(x, hx)
    shapes = [t.shape for t in tensors_of(got)]
    assert shapes == [t.shape for t in tensors_of(want)] == [(*lead, 0)] * len(shapes)
    sum(t.sum() for t in tensors_of(got)).backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_cells_with_zero_input_size_work_like_torch(kind):
    torch.manual_seed(0)
    theirs, ours = cell_twins(kind, 0, 3)
    x = torch.randn(2, 0)
    _close(ours(x), theirs(x))


BIAS_VALUES = [1, 0, "relu", "", None, 2.5, [], "tanh"]


@pytest.mark.parametrize("bias", BIAS_VALUES, ids=repr)
@pytest.mark.parametrize("kind", CELL_KINDS)
def test_cells_take_any_truthy_or_falsy_bias_like_torch(kind, bias):
    # torch.nn's cells keep the value as given and create biases when it is truthy; PyTorch's
    # ModuleInfo error inputs even pass a nonlinearity there by position: RNNCell(10, 20, 'relu').
    theirs_cls, ours_cls, _ = CELL_KINDS[kind]
    torch.manual_seed(0)
    theirs = theirs_cls(4, 5, bias)
    torch.manual_seed(0)
    ours = ours_cls(4, 5, bias)
    assert ours.bias is bias and theirs.bias is bias
    assert (ours.bias_ih is None) == (theirs.bias_ih is None) == (not bias)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert repr(ours) == repr(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(3, 4)
    _close(ours(x), theirs(x))


# -- dropout (test_RNN_dropout, test_RNN_dropout_state, test_RNN_change_dropout) ---------------


def _seeded(module, x, seed, hx=None):
    torch.manual_seed(seed)
    return module(x, hx)


@pytest.mark.parametrize("variant", MAIN_VARIANTS)
@pytest.mark.parametrize("engine", ENGINES)
def test_training_dropout_draws_torchs_masks(engine, variant):
    # Dropout between layers consumes the random generator exactly as torch's kernels do,
    # so a seeded run drops the same units: outputs and gradients equal torch's.
    kind, extra = VARIANTS[variant]
    torch.manual_seed(0)
    theirs, ours = twins(kind, 3, 4, num_layers=3, dropout=0.4, bidirectional=True, engine=engine, **extra)
    results = []
    for module in (theirs, ours):
        x = torch.randn(4, 3, 3, generator=torch.Generator().manual_seed(2), requires_grad=True)
        out = _seeded(module, x, seed=11)
        weighted_sum(tensors_of(out)).backward()
        results.append((out, [x.grad] + [p.grad for p in module.parameters()]))
    (want_out, want_grads), (got_out, got_grads) = results
    _close(got_out, want_out)
    _close(got_grads, want_grads, rtol=1e-4)


@pytest.mark.parametrize("p", [0.0, 0.3, 0.7, 1.0])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("engine", ENGINES)
def test_dropout_sits_between_layers_and_scales_the_kept_units(engine, training, p):
    # With all weights 1, no bias, relu and one step of ones, layer 1 gives 10 in every unit,
    # and layer 2 gives 10 / (1 - p) times the number of units dropout kept, in every unit.
    hidden = 40
    rnn = gated.RNN(10, hidden, 2, "relu", bias=False, dropout=p, engine=engine).double()
    with torch.no_grad():
        for weight in rnn.parameters():
            weight.fill_(1)
    rnn.train(training)
    output, h_n = rnn(torch.ones(1, 1, 10, dtype=F64), torch.zeros(2, 1, hidden, dtype=F64))
    value = output[0, 0, 0].item()
    assert torch.all(output == value) and torch.all(h_n[1] == value)
    assert torch.all(h_n[0] == 10), "the last layer's output is never dropped, nor the first's state"
    if not training or p == 0:
        assert value == 10 * hidden
    elif p == 1:
        assert value == 0
    else:
        kept = value * (1 - p) / 10
        assert abs(kept - round(kept)) < 1e-6 and 0 < round(kept) < hidden


@pytest.mark.parametrize("engine", ENGINES)
def test_changing_dropout_after_construction_takes_effect(engine):
    torch.manual_seed(0)
    theirs, ours = twins("rnn_relu", 8, 8, num_layers=2, dropout=0.0, engine=engine)
    x = torch.rand(3, 2, 8)
    plain = ours.eval()(x)
    for training in (True, False):
        theirs.train(training), ours.train(training)
        for p in (0.0, 0.5, 0.0, 0.7, 1.0, 0.2, 0.0):
            theirs.dropout = ours.dropout = p
            first, second = ours(x), ours(x)
            deterministic = p in (0.0, 1.0) or not training
            assert torch.equal(first[0], second[0]) == deterministic, (training, p)
            if not training or p == 0:
                _close(first, plain)
            elif p == 1:
                assert not torch.allclose(first[0], plain[0])
            _close(_seeded(ours, x, 3), _seeded(theirs, x, 3))


@pytest.mark.parametrize("p", [0.0, 0.3])
@pytest.mark.parametrize("engine", ENGINES)
def test_dropout_survives_saving_and_loading(engine, p):
    torch.manual_seed(0)
    rnn = gated.RNN(6, 6, 2, "relu", bias=False, dropout=p, engine=engine)
    x, hx = torch.rand(1, 1, 6), torch.rand(2, 1, 6)
    buffer = io.BytesIO()
    torch.save(rnn, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    loaded.flatten_parameters()  # kept for drop-in use; nothing to flatten here
    assert loaded.dropout == p
    again = pickle.loads(pickle.dumps(rnn))
    for clone in (loaded, again):
        _close(_seeded(clone, x, 4, hx), _seeded(rnn, x, 4, hx))
        clone.eval(), rnn.eval()
        _close(clone(x, hx), rnn(x, hx))
        clone.train(), rnn.train()


def test_dropout_warns_and_refuses_like_torch():
    with pytest.warns(UserWarning, match=r"but got dropout=0.2 and num_layers=1"):
        gated.GRU(2, 3, num_layers=1, dropout=0.2)
    for bad in (-0.1, 1.1):
        with pytest.raises(ValueError, match=r"dropout should be a number in range \[0, 1\]"):
            gated.LSTM(2, 3, num_layers=2, dropout=bad)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gated.GRU(2, 3, num_layers=2, dropout=1.0)  # p = 1 is allowed, silently


# -- retain_graph (test_rnn_retain_variables) ------------------------------------------------


@pytest.mark.parametrize("variant", MAIN_VARIANTS)
@pytest.mark.parametrize("engine", ENGINES)
def test_backward_can_run_again_with_retain_graph(engine, variant):
    kind, extra = VARIANTS[variant]
    torch.manual_seed(0)
    theirs, ours = twins(kind, 4, 5, num_layers=2, dtype=F64, engine=engine, **extra)
    grads = {}
    for name, module in (("theirs", theirs), ("ours", ours)):
        x = torch.randn(5, 3, 4, dtype=F64, generator=torch.Generator().manual_seed(1), requires_grad=True)
        output = module(x)
        runs = []
        for _ in range(3):
            module.zero_grad()
            x.grad = None
            weighted_sum(tensors_of(output)).backward(retain_graph=True)
            runs.append([x.grad.clone()] + [p.grad.clone() for p in module.parameters()])
        for run in runs[1:]:
            _close(run, runs[0], rtol=0, atol=0)
        grads[name] = runs[0]
    _close(grads["ours"], grads["theirs"], rtol=1e-10, atol=1e-12)


# -- variable-length sequences (test_variable_sequence) ----------------------------------------


@pytest.mark.parametrize(
    "enforce_sorted,with_hx", [(True, False), (False, True)], ids=["sorted-no_hx", "unsorted-hx"]
)
@pytest.mark.parametrize("variant", MAIN_VARIANTS)
@pytest.mark.parametrize("engine", ENGINES)
def test_a_packed_batch_equals_each_sequence_run_alone(engine, variant, enforce_sorted, with_hx):
    kind, extra = VARIANTS[variant]
    lengths = [5, 4, 4, 2, 1] if enforce_sorted else [2, 5, 1, 4, 4]
    steps, batch = max(lengths), len(lengths)
    torch.manual_seed(0)
    _, module = twins(kind, 3, 4, num_layers=2, bidirectional=True, dtype=F64, engine=engine, **extra)
    x = torch.randn(steps, batch, 3, dtype=F64, requires_grad=True)
    hx = _state(module, batch, dtype=F64) if with_hx else None
    params = list(module.parameters())

    packed_out, packed_state = module(pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted), hx)
    padded, got_lengths = pad_packed_sequence(packed_out, total_length=steps)
    assert got_lengths.tolist() == lengths

    outs, states = [], []
    for b, length in enumerate(lengths):
        hx_b = None if hx is None else tuple(h[:, b : b + 1] for h in tensors_of(hx))
        out, state = module(x[:length, b : b + 1], hx_b if _is_lstm(module) or hx_b is None else hx_b[0])
        outs.append(F.pad(out, (0, 0, 0, 0, 0, steps - length)))
        states.append(tensors_of(state))
    alone = torch.cat(outs, 1)
    alone_state = [torch.cat(parts, 1) for parts in zip(*states)]

    _close(padded, alone, rtol=1e-10, atol=1e-12)
    _close(tensors_of(packed_state), alone_state, rtol=1e-10, atol=1e-12)
    weights = [torch.randn(t.shape, dtype=F64) for t in [alone, *alone_state]]
    loss_packed = sum((t * w).sum() for t, w in zip([padded, *tensors_of(packed_state)], weights))
    loss_alone = sum((t * w).sum() for t, w in zip([alone, *alone_state], weights))
    grads_packed = torch.autograd.grad(loss_packed, [x, *params])
    grads_alone = torch.autograd.grad(loss_alone, [x, *params])
    _close(grads_packed, grads_alone, rtol=1e-9, atol=1e-11)


# -- initial states and projections (test_rnn_initial_hidden_state, ..._projections_...) -------


@pytest.mark.parametrize("variant", MAIN_VARIANTS)
@pytest.mark.parametrize("engine", ENGINES)
def test_a_zero_initial_state_is_the_default(engine, variant):
    kind, extra = VARIANTS[variant]
    torch.manual_seed(0)
    theirs, ours = twins(kind, 5, 4, num_layers=2, bidirectional=True, engine=engine, **extra)
    x = torch.randn(6, 3, 5)
    zeros = tuple(torch.zeros_like(t) for t in tensors_of(_state(ours, 3)))
    zeros = zeros if _is_lstm(ours) else zeros[0]
    _close(ours(x, zeros), ours(x), rtol=0, atol=0)
    _close(ours(x), theirs(x))


# -- what else torch's tests run: empty batches, weight norm, tied weights, layouts -----------


@pytest.mark.parametrize("variant", MAIN_VARIANTS)
@pytest.mark.parametrize("engine", ENGINES)
def test_an_empty_batch_runs_forward_and_backward(engine, variant):
    # test_RNN_input_size_zero
    kind, extra = VARIANTS[variant]
    theirs, ours = twins(kind, 3, 4, engine=engine, **extra)
    x = torch.zeros(5, 0, 3, requires_grad=True)
    want, got = theirs(x), ours(x)
    assert [t.shape for t in tensors_of(got)] == [t.shape for t in tensors_of(want)]
    assert got[0].shape == (5, 0, 2 if variant == "lstm_proj" else 4)
    got[0].sum().backward()
    assert x.grad.shape == x.shape
    assert all(p.grad is None or not p.grad.any() for p in ours.parameters())


@pytest.mark.filterwarnings("ignore:.*weight_norm.* is deprecated:FutureWarning")
@pytest.mark.parametrize("api", ["weight_norm", "parametrizations"])
@pytest.mark.parametrize("name,options", [("weight_ih_l0", {}), ("weight_hr_l0", {"proj_size": 2})])
@pytest.mark.parametrize("engine", ENGINES)
def test_weight_norm_reparametrises_a_weight(engine, name, options, api):
    # test_rnn_weight_norm, test_RNN_cudnn_weight_norm. torch's test also counts Parameters in
    # the private _flat_weights list; gated keeps no such list (it reads each weight by name at
    # every call), so what is checked is what a user sees: outputs, gradients, parameter names.
    torch.manual_seed(0)
    theirs, ours = twins("lstm", 4, 5, num_layers=2, engine=engine, **options)
    x = torch.randn(3, 2, 4)
    before = ours(x)
    if api == "weight_norm":
        ours = torch.nn.utils.weight_norm(ours, name=name)
        theirs = torch.nn.utils.weight_norm(theirs, name=name)
        new_names = {name + "_g", name + "_v"}
    else:
        ours = torch.nn.utils.parametrizations.weight_norm(ours, name=name)
        theirs = torch.nn.utils.parametrizations.weight_norm(theirs, name=name)
        new_names = {f"parametrizations.{name}.original0", f"parametrizations.{name}.original1"}
    names = {n for n, _ in ours.named_parameters()}
    assert name not in names and new_names <= names
    assert names == {n for n, _ in theirs.named_parameters()}
    after = ours(x)
    _close(after, before)
    _close(after, theirs(x))
    weighted_sum(tensors_of(after)).backward()
    weighted_sum(tensors_of(theirs(x))).backward()
    ours_grads, theirs_grads = dict(ours.named_parameters()), dict(theirs.named_parameters())
    for n in sorted(names):
        torch.testing.assert_close(ours_grads[n].grad, theirs_grads[n].grad, rtol=1e-4, atol=1e-5)
    if api == "weight_norm":
        ours = torch.nn.utils.remove_weight_norm(ours, name=name)
        names = dict(ours.named_parameters())
        assert name in names and not new_names & set(names)
        _close(ours(x), before)


@pytest.mark.parametrize("variant", MAIN_VARIANTS)
@pytest.mark.parametrize("engine", ENGINES)
def test_tied_weights_are_used_and_trained_once(engine, variant):
    # test_cudnn_weight_tying, on the CPU: one Parameter serving both directions.
    kind, extra = VARIANTS[variant]
    torch.manual_seed(0)
    theirs, ours = twins(kind, 4, 5, bidirectional=True, batch_first=True, engine=engine, **extra)
    results = []
    for module in (theirs, ours):
        module.bias_ih_l0_reverse = module.bias_ih_l0
        module.weight_hh_l0_reverse = module.weight_hh_l0
        x = torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(1), requires_grad=True)
        out = module(x, _state(module, 3, torch.Generator().manual_seed(2)))
        weighted_sum(tensors_of(out)).backward()
        results.append((out, [x.grad] + [p.grad for p in module.parameters()]))
    (want_out, want_grads), (got_out, got_grads) = results
    assert len(list(ours.parameters())) == len(list(theirs.parameters()))
    _close(got_out, want_out)
    _close(got_grads, want_grads, rtol=1e-4)


@pytest.mark.parametrize("variant", MAIN_VARIANTS)
@pytest.mark.parametrize("engine", ENGINES)
def test_non_contiguous_inputs_and_states(engine, variant):
    # _test_RNN_cpu_vs_cudnn's contig=False and ModuleInfo's test_non_contiguous_tensors.
    kind, extra = VARIANTS[variant]
    torch.manual_seed(0)
    theirs, ours = twins(kind, 4, 5, num_layers=2, bidirectional=True, engine=engine, **extra)
    results = []
    for module in (theirs, ours):
        g = torch.Generator().manual_seed(3)
        x_base = torch.randn(3, 6, 4, generator=g, requires_grad=True)
        x = x_base.transpose(0, 1)  # (6, 3, 4), batch and time strides swapped
        shapes = [h.shape for h in tensors_of(_state(module, 3))]
        h_bases = [torch.randn(*shape, 2, generator=g, requires_grad=True) for shape in shapes]
        hx = tuple(h[..., 0] for h in h_bases)  # every other element
        assert not x.is_contiguous() and not any(h.is_contiguous() for h in hx)
        out = module(x, hx if _is_lstm(module) else hx[0])
        grads = torch.autograd.grad(weighted_sum(tensors_of(out)), [x_base, *h_bases, *module.parameters()])
        results.append((out, grads))
    (want_out, want_grads), (got_out, got_grads) = results
    _close(got_out, want_out)
    _close(got_grads, want_grads, rtol=1e-4)


@pytest.mark.parametrize("variant", MAIN_VARIANTS)
@pytest.mark.parametrize("engine", ENGINES)
def test_gradients_reach_the_input_when_no_weight_wants_one(engine, variant):
    # test_rnn_backward_to_input_but_not_parameters (CUDA there; the behaviour is the engine's).
    kind, extra = VARIANTS[variant]
    torch.manual_seed(0)
    theirs, ours = twins(kind, 2, 3, engine=engine, **extra)
    grads = []
    for module in (theirs, ours):
        module.requires_grad_(False)
        x = torch.randn(4, 1, 2, generator=torch.Generator().manual_seed(1), requires_grad=True)
        module(x)[0].sum().backward()
        grads.append(x.grad)
    assert grads[1].abs().sum() > 0
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("which", [0, 1])
def test_lstm_cell_backward_from_one_output_only(which):
    # test_lstmcell_backward_only_one_output_grad: the other output's gradient is undefined.
    torch.manual_seed(0)
    theirs, ours = cell_twins("lstm", 2, 3, dtype=F64)
    grads = []
    for cell in (theirs, ours):
        x = torch.randn(1, 2, dtype=F64, generator=torch.Generator().manual_seed(1), requires_grad=True)
        cell(x)[which].sum().backward()
        grads.append(x.grad)
    assert grads[1].abs().sum() > 0
    torch.testing.assert_close(grads[1], grads[0])


# -- errors: the type torch raises and the words torch's tests match on -------------------------


def _build(m, name: str, *args, engine: str = "auto", **kwargs):
    """``m.<name>(*args, **kwargs)``, with our engine when ``m`` is gated."""
    if m is gated and not name.endswith("Cell"):
        kwargs["engine"] = engine
    return getattr(m, name)(*args, **kwargs)


@dataclass
class TorchMatch:
    id: str
    call: Callable  # (namespace, engine) -> raises
    error: type  # what torch.nn raises, and so must we
    pattern: str | None  # the regex torch's test matches with (None: it checks the type only)


def _shape_cases() -> list[TorchMatch]:
    """test_rnn_args_check and test_projections_lstm_args_check: every wrong shape is a RuntimeError."""
    cases = []
    seq, batch, inp, hid, layers, bad = 6, 4, 3, 5, 2, 7
    for mode, proj in (("RNN", 0), ("GRU", 0), ("LSTM", 0), ("LSTM", 2)):
        h_size = proj or hid
        good_x, good_h, good_c = (seq, batch, inp), (layers, batch, h_size), (layers, batch, hid)
        wrong = {
            "input batch": (((seq, bad, inp)), good_h, good_c),
            "hidden batch": (good_x, (layers, bad, h_size), (layers, bad, hid)),
            "input size": ((seq, batch, bad), good_h, good_c),
            "hidden size": (good_x, (layers, batch, bad), (layers, batch, bad)),
            "hidden layers": (good_x, (bad, batch, h_size), (bad, batch, hid)),
        }
        if mode == "LSTM":
            wrong["cell only"] = (good_x, good_h, (bad, batch, hid))
            wrong["h only"] = (good_x, (layers, batch, bad), good_c)
        for what, (xs, hs, cs) in wrong.items():
            def call(m, engine, mode=mode, proj=proj, xs=xs, hs=hs, cs=cs):
                kwargs = {"proj_size": proj} if proj else {}
                module = _build(m, mode, inp, hid, layers, engine=engine, **kwargs)
                hx = (torch.randn(hs), torch.randn(cs)) if mode == "LSTM" else torch.randn(hs)
                module(torch.randn(xs), hx)

            name = f"{mode}{'-proj' if proj else ''} wrong {what}"
            cases.append(TorchMatch(name, call, RuntimeError, None))
    return cases


def _forward(name, ctor, kwargs, x_shape, hx_shapes=None, dtype=torch.float32):
    """A case that builds ``name(*ctor, **kwargs)`` and runs it on random input of these shapes."""

    def call(m, engine):
        module = _build(m, name, *ctor, engine=engine, **kwargs)
        hx = None if hx_shapes is None else tuple(torch.zeros(s) for s in hx_shapes)
        module(torch.randn(x_shape, dtype=dtype), hx if hx is None or name == "LSTM" else hx[0])

    return call


MODULES = ("RNN", "GRU", "LSTM")
FORWARD_CASES = _shape_cases() + [
    # test_cudnn_forward_exception (it runs on the CPU too)
    *(
        TorchMatch(
            f"{name} hidden size{' proj' if proj else ''}",
            _forward(name, (10, 20), {"batch_first": True, **proj}, (2, 3, 10), [(1, 2, 19)] * 2),
            RuntimeError,
            r"Expected hidden.*size.*got",
        )
        for name, proj in (("LSTM", {}), ("LSTM", {"proj_size": 10}), ("GRU", {}), ("RNN", {}))
    ),
    *(
        TorchMatch(
            f"{name} input size",
            _forward(name, (10, 20), {"batch_first": True}, (2, 3, 3)),
            RuntimeError,
            re.escape("input.size(-1) must be equal to input_size"),
        )
        for name in MODULES
    ),
    # the exact words of torch's hidden-size messages
    TorchMatch(
        "GRU hidden size words",
        _forward("GRU", (4, 6), {}, (5, 3, 4), [(1, 3, 5)]),
        RuntimeError,
        re.escape("Expected hidden size (1, 3, 6), got [1, 3, 5]"),
    ),
    TorchMatch(
        "LSTM cell size words",
        _forward("LSTM", (4, 6), {}, (5, 3, 4), [(1, 3, 6), (1, 3, 5)]),
        RuntimeError,
        re.escape("Expected hidden[1] size (1, 3, 6), got [1, 3, 5]"),
    ),
    # test_error_RNN_seq_len_zero
    *(
        TorchMatch(
            f"{name} empty sequence{' bidirectional' if bi else ''}",
            _forward(name, (5, 6), {"bidirectional": bi}, (0, 10, 5)),
            RuntimeError,
            r"Expected sequence length to be larger than 0 in RNN",
        )
        for name in MODULES
        for bi in (False, True)
    ),
    # ModuleInfo error inputs of RNN, GRU and LSTM: the dtype mismatch
    *(
        TorchMatch(
            f"{name} input dtype",
            _forward(name, (3, 5), {}, (2, 4, 3), dtype=F64),
            ValueError,
            r"RNN input dtype .* does not match weight dtype .* "
            r"Convert input: input\.to\(.*\), or convert model: model\.to\(.*\)",
        )
        for name in MODULES
    ),
]


def _cell_call(name, ctor, x_shape, hx_shapes):
    def call(m, engine):
        cell = getattr(m, name)(*ctor)
        hx = tuple(torch.randn(s) for s in hx_shapes)
        cell(torch.randn(x_shape), hx if name == "LSTMCell" else hx[0])

    return call


def _construct(name, args, kwargs):
    return lambda m, engine: _build(m, name, *args, engine=engine, **kwargs)


GOT_21 = r"hidden0 has inconsistent hidden_size: got 21, expected 20"
CONSTRUCTION_AND_CELL_CASES = [
    # ModuleInfo error inputs of RNNCell, GRUCell and LSTMCell
    *(
        TorchMatch(f"{name} {what}", _cell_call(name, ctor, xs, hs), error, pattern)
        for name in ("RNNCell", "GRUCell", "LSTMCell")
        for what, ctor, xs, hs, error, pattern in (
            ("input size", (10, 20), (3, 11), [(3, 20)] * 2, RuntimeError,
             r"input has inconsistent input_size: got 11 expected 10"),
            ("hidden size", (10, 20), (3, 10), [(3, 21)] * 2, RuntimeError, GOT_21),
            ("batch", (10, 20), (3, 10), [(5, 20)] * 2, RuntimeError,
             r"Input batch size 3 doesn't match hidden0 batch size 5"),
            ("hidden 4-D", (10, 20), (3, 10), [(3, 1, 1, 20)] * 2, ValueError,
             r"Expected hx\[0\] to be 1D or 2D, got 4D instead" if name == "LSTMCell"
             else r"Expected hidden to be 1D or 2D, got 4D instead"),
            # a nonlinearity passed by position where the bias goes: a truthy bias
            ("bias 'relu'", (10, 20, "relu"), (3, 10), [(3, 21)] * 2, RuntimeError, GOT_21),
            ("bias 'tanh'", (10, 20, "tanh"), (3, 10), [(3, 21)] * 2, RuntimeError, GOT_21),
            # test_RNN_cell_no_broadcasting: sizes of 1 do not broadcast
            ("batch of one", (10, 20), (3, 10), [(1, 20)] * 2, RuntimeError, None),
            ("hidden of one", (10, 20), (3, 10), [(3, 1)] * 2, RuntimeError, None),
            ("input of one", (10, 20), (3, 1), [(3, 20)] * 2, RuntimeError, None),
        )
    ),
    # test_RNN_cell_no_broadcasting, test_LSTM_cell_forward_hidden_size: the cell state too
    *(
        TorchMatch(f"LSTMCell {what}", _cell_call("LSTMCell", (10, 20), (3, 10), hx), RuntimeError, None)
        for what, hx in (("cell of one", [(3, 20), (1, 20)]), ("cell size", [(3, 20), (3, 21)]))
    ),
    # ModuleInfo error inputs of RNN, GRU and LSTM: constructor arguments (those test_errors.py
    # does not already hold)
    *(
        TorchMatch(f"{name} {what}", _construct(name, args, kwargs), error, pattern)
        for name in MODULES
        for what, args, kwargs, error, pattern in (
            ("bias 0", (3, 5), {"bias": 0}, TypeError, r"bias should be of type bool, got: int"),
            ("bias 1", (3, 5), {"bias": 1}, TypeError, r"bias should be of type bool, got: int"),
            ("bias 'True'", (3, 5), {"bias": "True"}, TypeError, r"bias should be of type bool, got: str"),
            ("batch_first 0", (3, 5), {"batch_first": 0}, TypeError,
             r"batch_first should be of type bool, got: int"),
            ("batch_first 'False'", (3, 5), {"batch_first": "False"}, TypeError,
             r"batch_first should be of type bool, got: str"),
            ("input_size float", (3.0, 5), {}, TypeError, r"input_size should be of type int, got: float"),
            ("input_size str", ("10", 5), {}, TypeError, r"input_size should be of type int, got: str"),
            ("input_size 0", (0, 5), {}, ValueError, r"input_size must be greater than zero"),
            ("hidden_size float", (3, 5.0), {}, TypeError, r"hidden_size should be of type int, got: float"),
        )
    ),
]


def _check_torch_match(case: TorchMatch, engine: str) -> None:
    for namespace in (nn, gated):  # torch first: the case must hold for the oracle itself
        with pytest.raises(Exception) as caught:
            case.call(namespace, engine)
        assert type(caught.value) is case.error, f"{namespace.__name__}: {caught.value!r}"
        if case.pattern is not None:
            assert re.search(case.pattern, str(caught.value)), f"{namespace.__name__}: {caught.value}"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", FORWARD_CASES, ids=lambda c: c.id)
def test_forward_errors_match_torchs(case, engine):
    _check_torch_match(case, engine)


@pytest.mark.parametrize("case", CONSTRUCTION_AND_CELL_CASES, ids=lambda c: c.id)
def test_construction_and_cell_errors_match_torchs(case):
    _check_torch_match(case, "auto")
