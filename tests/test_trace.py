"""Traces: the recorded gates obey the guide's equations, have the documented shapes, and mark padding."""

from __future__ import annotations

import pytest
import torch

import gated
from oracle import pack, tensors_of

T, B, I, H = 6, 3, 4, 5


def _previous(states: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
    """States shifted one step later in time: the value each step started from (forward direction)."""
    return torch.cat([initial.unsqueeze(0), states[:-1]])


def test_lstm_trace_recomputes_cell_and_hidden():
    lstm = gated.LSTM(I, H, num_layers=2)
    x = torch.randn(T, B, I)
    h0, c0 = torch.randn(2, B, H), torch.randn(2, B, H)
    trace = lstm.trace(x, (h0, c0))
    assert trace.names == ("input", "forget", "candidate", "output", "cell", "hidden")
    for layer in range(2):
        f, i, g, o = (trace.of(n, layer) for n in ("forget", "input", "candidate", "output"))
        c, h = trace.of("cell", layer), trace.of("hidden", layer)
        torch.testing.assert_close(c, f * _previous(c, c0[layer]) + i * g)
        torch.testing.assert_close(h, o * torch.tanh(c))
    # The top layer's hidden states are the output; the last step is the final state.
    torch.testing.assert_close(trace.hidden[-1], trace.output)
    torch.testing.assert_close(trace.hidden[:, -1], trace.state[0])
    torch.testing.assert_close(trace.cell[:, -1], trace.state[1])


def test_gru_trace_recomputes_hidden():
    gru = gated.GRU(I, H)
    x, h0 = torch.randn(T, B, I), torch.randn(1, B, H)
    trace = gru.trace(x, h0)
    z, n, h = trace.update[0], trace.candidate[0], trace.hidden[0]
    torch.testing.assert_close(h, (1 - z) * n + z * _previous(h, h0[0]))


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_trace_recomputes_hidden(nonlinearity):
    rnn = gated.RNN(I, H, nonlinearity=nonlinearity)
    x = torch.randn(T, B, I)
    trace = rnn.trace(x)
    h = trace.hidden[0]
    pre = x @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + _previous(h, torch.zeros(B, H)) @ rnn.weight_hh_l0.T + rnn.bias_hh_l0
    torch.testing.assert_close(h, torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre))


@pytest.mark.parametrize("cls", [gated.LSTM, gated.GRU])
def test_gates_lie_in_their_ranges(cls):
    # float64, so that saturated gates do not round to exactly 0 or 1.
    module = cls(I, H, num_layers=2, bidirectional=True, dtype=torch.float64)
    trace = module.trace(torch.randn(T, B, I, dtype=torch.float64) * 5)
    for name in trace.names:
        values = trace[name]
        if name in ("input", "forget", "output", "reset", "update"):
            assert values.min() > 0 and values.max() < 1, name
        elif name == "candidate":
            assert values.min() > -1 and values.max() < 1, name


@pytest.mark.parametrize("cls", [gated.RNN, gated.LSTM, gated.GRU])
@pytest.mark.parametrize("layout", ["batched", "batch_first", "unbatched", "packed"])
def test_trace_output_and_state_are_forwards(cls, layout):
    module = cls(I, H, num_layers=2, bidirectional=True, batch_first=layout == "batch_first")
    if layout == "unbatched":
        x, batch = torch.randn(T, I), 1
    elif layout == "batch_first":
        x, batch = torch.randn(B, T, I), B
    elif layout == "packed":
        x, batch = pack(torch.randn(T, B, I), [6, 2, 4], batch_first=False), B
    else:
        x, batch = torch.randn(T, B, I), B
    trace = module.trace(x)
    for got, want in zip(tensors_of((trace.output, trace.state)), tensors_of(module(x))):
        torch.testing.assert_close(got, want)
    for name in trace.names:
        assert trace[name].shape == (4, T, batch, H), name  # time-major whatever batch_first says


def test_reverse_direction_is_recorded_in_input_order():
    gru = gated.GRU(I, H, bidirectional=True)
    x = torch.randn(T, B, I)
    trace = gru.trace(x)
    # The backward direction ends at step 0: its final state is its hidden value at t = 0.
    torch.testing.assert_close(trace.of("hidden", 0, direction=1)[0], trace.state[1])
    torch.testing.assert_close(trace.of("hidden", 0, direction=1), trace.output[..., H:])


def test_packed_trace_masks_padding():
    lstm = gated.LSTM(I, H, bidirectional=True)
    lengths = [6, 2, 4]
    trace = lstm.trace(pack(torch.randn(T, B, I), lengths, batch_first=False))
    assert trace.mask.shape == (T, B) and trace.mask.dtype == torch.bool
    assert trace.mask.sum(0).tolist() == lengths
    for name in trace.names:
        assert torch.all(trace[name][:, ~trace.mask] == 0), name
    # Each sequence's final state is its value at its own last real step.
    for b, length in enumerate(lengths):
        torch.testing.assert_close(trace.cell[0, length - 1, b], trace.state[1][0, b])
        torch.testing.assert_close(trace.cell[1, 0, b], trace.state[1][1, b])


def test_full_length_input_has_no_mask():
    assert gated.GRU(I, H).trace(torch.randn(T, B, I)).mask is None


def test_trace_lookups_explain_mistakes():
    trace = gated.GRU(I, H, num_layers=2).trace(torch.randn(T, B, I))
    assert trace.of("update", layer=-1).shape == (T, B, H)
    torch.testing.assert_close(trace.of("update", layer=1), trace.update[1])
    with pytest.raises(AttributeError, match="records reset, update, candidate, hidden"):
        trace.forget
    with pytest.raises(KeyError, match="records reset"):
        trace["forget"]
    with pytest.raises(IndexError, match="2 layer"):
        trace.of("update", layer=2)
    with pytest.raises(IndexError, match="1 direction"):
        trace.of("update", direction=1)


def test_trace_follows_gradients():
    # A trace is part of the graph, so gates can be attributed to inputs.
    lstm = gated.LSTM(I, H)
    x = torch.randn(T, B, I, requires_grad=True)
    lstm.trace(x).forget[0, -1].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_gates_answer_to_gate_names_and_output_stays_forwards():
    lstm = gated.LSTM(I, H, batch_first=True)
    x = torch.randn(B, T, I)
    trace = lstm.trace(x)
    torch.testing.assert_close(trace.output, lstm(x)[0])  # forward's output, (B, T, H)
    assert trace.output_gate is trace["output"] and trace.output_gate.shape == (1, T, B, H)
    assert trace.forget_gate is trace.forget
    with pytest.raises(AttributeError):
        trace.hidden_gate


def test_gradient_through_time_is_the_jacobian_seen_along_a_fixed_direction():
    rnn = gated.RNN(I, H, num_layers=2, dtype=torch.float64)
    x = torch.randn(T, B, I, dtype=torch.float64)
    got = gated.gradient_through_time(rnn, x, generator=torch.Generator().manual_seed(5))
    v = torch.randn(H, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    v = v / v.norm()
    jacobian = torch.autograd.functional.jacobian(lambda x: rnn(x)[1][-1] @ v, x)  # (B, T, B, I)
    per_sample = torch.stack([jacobian[b, :, b].norm(dim=-1) for b in range(B)], dim=1)  # (T, B)
    torch.testing.assert_close(got, per_sample.mean(dim=1))


def test_plain_rnn_forgets_faster_than_an_lstm_that_keeps_its_forget_gate_open():
    torch.manual_seed(0)
    steps = 60
    x = torch.randn(steps, 16, I)
    rnn = gated.gradient_through_time(gated.RNN(I, H), x)
    lstm = gated.gradient_through_time(gated.LSTM(I, H, forget_bias=4.0), x)
    # How much of the last step's sensitivity survives back to the first input.
    assert rnn[0] / rnn[-1] < 1e-3
    assert lstm[0] / lstm[-1] > 10 * (rnn[0] / rnn[-1])
