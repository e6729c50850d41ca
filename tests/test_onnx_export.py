"""ONNX export of recurrent modules, checked in onnxruntime against gated's own forward.

Every configuration runs three ways: a padded batch of unequal lengths with a given
initial state (against a PackedSequence), the whole batch with nothing optional fed
(against a plain call), and step by step with the state fed back (against the whole).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from oracle import pack, random_hx
from torch import nn
from torch.nn.utils.rnn import pad_packed_sequence

import gated
import gated.onnx
from gated import kinds

ATOL = 1e-5

CASES = {
    "rnn-tanh-2-layers-bi": (gated.RNN, dict(num_layers=2, bidirectional=True)),
    "rnn-relu-batch-first-no-bias": (gated.RNN, dict(nonlinearity="relu", batch_first=True, bias=False)),
    "lstm-2-layers-bi": (gated.LSTM, dict(num_layers=2, bidirectional=True)),
    "lstm-batch-first-no-bias": (gated.LSTM, dict(batch_first=True, bias=False)),
    "lstm-proj-2-layers-bi": (gated.LSTM, dict(proj_size=3, num_layers=2, bidirectional=True)),
    "gru-2-layers-bi-batch-first": (gated.GRU, dict(num_layers=2, bidirectional=True, batch_first=True)),
    "gru-no-bias": (gated.GRU, dict(bias=False)),
    "peephole-lstm-bi": (gated.PeepholeLSTM, dict(bidirectional=True)),
    "ln-lstm-2-layers-bi": (gated.LayerNormLSTM, dict(num_layers=2, bidirectional=True)),
    "ln-gru-bi-batch-first": (gated.LayerNormGRU, dict(bidirectional=True, batch_first=True)),
    "min-gru-2-layers-bi": (gated.MinGRU, dict(num_layers=2, bidirectional=True)),
    "min-lstm-bi-no-bias": (gated.MinLSTM, dict(bidirectional=True, bias=False)),
    "lstm-zoneout": (gated.LSTM, dict(zoneout=(0.1, 0.3))),
    "gru-zoneout-2-layers": (gated.GRU, dict(zoneout=0.2, num_layers=2)),
}
STREAMING = [name for name, (_, options) in CASES.items() if not options.get("bidirectional")]
STREAMING += ["ln-lstm-2-layers", "min-lstm-2-layers", "peephole-lstm-2-layers"]
CASES |= {"ln-lstm-2-layers": (gated.LayerNormLSTM, dict(num_layers=2)),
          "min-lstm-2-layers": (gated.MinLSTM, dict(num_layers=2)),
          "peephole-lstm-2-layers": (gated.PeepholeLSTM, dict(num_layers=2))}
INPUT, HIDDEN, STEPS = 5, 6, 7


def session(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the optional inputs (initializers a caller may override) draw a warning
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def build(name: str) -> nn.Module:
    """The module of case ``name`` in eval mode, every weight moved off its initial value (norm gains from 1,
    their biases and the peepholes from 0), so that each weight's place in the graph is tested."""
    cls, options = CASES[name]
    module = cls(INPUT, HIDDEN, **options)
    with torch.no_grad():
        for weight in module.parameters():
            weight.add_(0.3 * torch.randn_like(weight))
    return module.eval()


def states_of(state) -> list[torch.Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


def feeds_of(module, x, lengths=None, state=None) -> dict:
    feeds = {"input": x.numpy()}
    if lengths is not None:
        feeds["lengths"] = np.asarray(lengths, dtype=np.int64)
    for name, value in zip(("h0", "c0"), states_of(state) if state is not None else []):
        feeds[name] = np.asarray(value)
    return feeds


def assert_close(got: list[np.ndarray], expected: list[torch.Tensor]) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e.numpy(), rtol=0, atol=ATOL)


@pytest.fixture(scope="module", params=sorted(CASES))
def exported(request, tmp_path_factory):
    torch.manual_seed(sorted(CASES).index(request.param))
    module = build(request.param)
    path = tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx"
    written = gated.onnx.export(module, path)
    assert written.model == path and written.preprocessing is None
    return module, session(path)


def test_unequal_lengths_and_a_given_state_match_a_packed_sequence(exported):
    module, runner = exported
    batch_first = module.batch_first
    lengths = [STEPS, 3, 5, 1]
    x = torch.randn(len(lengths), STEPS, INPUT) if batch_first else torch.randn(STEPS, len(lengths), INPUT)
    state = random_hx(module, len(lengths))
    with torch.no_grad():
        packed_output, final = module(pack(x, lengths, batch_first), state)
    output, _ = pad_packed_sequence(packed_output, batch_first=batch_first, total_length=STEPS)
    got = runner.run(None, feeds_of(module, x, lengths, state))
    assert_close(got, [output, *states_of(final)])


def test_with_nothing_optional_fed_it_is_a_plain_call_at_any_batch_and_length(exported):
    module, runner = exported
    for steps, batch in ((STEPS, 3), (2, 1), (11, 5)):
        shape = (batch, steps, INPUT) if module.batch_first else (steps, batch, INPUT)
        x = torch.randn(shape)
        with torch.no_grad():
            output, final = module(x)
        assert_close(runner.run(None, feeds_of(module, x)), [output, *states_of(final)])


@pytest.mark.parametrize("name", STREAMING)
def test_step_by_step_with_the_state_fed_back_equals_the_whole_sequence(name, tmp_path):
    module = build(name)
    gated.onnx.export(module, tmp_path / "m.onnx")
    runner = session(tmp_path / "m.onnx")
    x = torch.randn(2, STEPS, INPUT) if module.batch_first else torch.randn(STEPS, 2, INPUT)
    with torch.no_grad():
        whole, final = module(x)
    time_axis = 1 if module.batch_first else 0
    state = None  # the first step starts from the default, zeros
    for t in range(STEPS):
        step = x.narrow(time_axis, t, 1)
        output, *state = runner.run(None, feeds_of(module, step, state=tuple(state) if state else None))
        np.testing.assert_allclose(output, whole.narrow(time_axis, t, 1).numpy(), rtol=0, atol=ATOL)
    assert_close(state, states_of(final))


def _ops(path) -> list[onnx.NodeProto]:
    return list(onnx.load(str(path)).graph.node)


@pytest.mark.parametrize("cls, op", [(gated.LSTM, "LSTM"), (gated.GRU, "GRU"), (gated.RNN, "RNN"),
                                     (gated.PeepholeLSTM, "LSTM"), (gated.LayerNormLSTM, "Scan"),
                                     (gated.MinGRU, "Scan")])
def test_onnx_operators_are_used_where_their_formula_is_gateds(cls, op, tmp_path):
    gated.onnx.export(cls(INPUT, HIDDEN), tmp_path / "m.onnx")
    nodes = [node for node in _ops(tmp_path / "m.onnx") if node.op_type in ("LSTM", "GRU", "RNN", "Scan")]
    assert [node.op_type for node in nodes] == [op]
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in nodes[0].attribute}
    if op == "GRU":
        assert attributes["linear_before_reset"] == 1  # torch's formula: r ⊙ (W_hn h + b_hn)
    if cls is gated.PeepholeLSTM:
        assert len(nodes[0].input) == 8 and nodes[0].input[7]  # the peepholes in the P input


def test_a_torch_nn_lstm_with_projection_exports_too(tmp_path):
    lstm = nn.LSTM(INPUT, HIDDEN, num_layers=2, proj_size=2, bidirectional=True).eval()
    gated.onnx.export(lstm, tmp_path / "torch.onnx")
    x = torch.randn(STEPS, 3, INPUT)
    with torch.no_grad():
        output, (h, c) = lstm(x)
    assert_close(session(tmp_path / "torch.onnx").run(None, {"input": x.numpy()}), [output, h, c])


def test_the_written_model_passes_the_checker_and_keeps_batch_and_time_free(tmp_path):
    gated.onnx.export(gated.LSTM(INPUT, HIDDEN, batch_first=True), tmp_path / "m.onnx", opset=18)
    model = onnx.load(str(tmp_path / "m.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 18
    inputs = {value.name: value for value in model.graph.input}
    assert list(inputs) == ["input", "lengths", "h0", "c0"]
    dims = [d.dim_param or d.dim_value for d in inputs["input"].type.tensor_type.shape.dim]
    assert dims == ["batch", "time", INPUT]
    # The optional inputs are those with a default; the input itself has none.
    assert {i.name for i in model.graph.initializer} >= {"lengths", "h0", "c0"}
    assert "input" not in {i.name for i in model.graph.initializer}
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temporary file left behind


def test_what_cannot_be_exported_is_refused_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match="cannot export a Linear"):
        gated.onnx.export(nn.Linear(3, 4), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="cannot export a LSTMCell: give a gated recurrent module"):
        gated.onnx.export(gated.LSTMCell(3, 4), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="opset must be a whole number from 17"):
        gated.onnx.export(gated.GRU(3, 4), tmp_path / "m.onnx", opset=11)
    custom = kinds.CellKind(name="MY_CELL", family="my-cell", rows=("hidden",), states=("hidden",), gates=(),
                            shown=("hidden",), step=kinds.RNN_TANH.step)
    module = gated.RNN(3, 4)
    module.kind = custom
    with pytest.raises(ValueError, match="the MY_CELL cell has no ONNX form"):
        gated.onnx.export(module, tmp_path / "m.onnx")
    assert not any(tmp_path.iterdir())
