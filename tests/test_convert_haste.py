"""gated.convert.from_haste / to_haste against haste's own equations.

haste (lmnt-com/haste) runs on NVIDIA GPUs only, so its layers cannot run here.
The oracle is its documented forward pass, written out below from the layout
its layers define: ``kernel`` (input, gates * H), ``recurrent_kernel``
(H, gates * H), LSTM gate blocks i, g, f, o with one ``bias``; GRU blocks z, r, h
with ``bias`` and ``recurrent_bias``, the latter inside the reset gate's product;
zoneout on h, in eval ``h = p h_prev + (1 - p) h_new``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import gated
from gated.convert import from_haste, to_haste

torch.set_num_threads(1)


def haste_lstm(x, kernel, recurrent_kernel, bias, zoneout=0.0):
    """haste's LSTM over time-major x (T, B, I): every step's h, and the final (h, c)."""
    hidden = recurrent_kernel.shape[0]
    h = c = x.new_zeros(x.shape[1], hidden)
    outputs = []
    for x_t in x:
        v = x_t @ kernel + h @ recurrent_kernel + bias
        i, g, f, o = v.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c)
        h = zoneout * h + (1 - zoneout) * h_new
        outputs.append(h)
    return torch.stack(outputs), (h, c)


def haste_gru(x, kernel, recurrent_kernel, bias, recurrent_bias, zoneout=0.0):
    """haste's GRU over time-major x (T, B, I): every step's h, and the final h."""
    h = x.new_zeros(x.shape[1], recurrent_kernel.shape[0])
    outputs = []
    for x_t in x:
        x_z, x_r, x_h = (x_t @ kernel + bias).chunk(3, dim=1)
        h_z, h_r, h_h = (h @ recurrent_kernel + recurrent_bias).chunk(3, dim=1)
        z = torch.sigmoid(x_z + h_z)
        r = torch.sigmoid(x_r + h_r)
        candidate = torch.tanh(x_h + r * h_h)
        h_new = z * h + (1 - z) * candidate
        h = zoneout * h + (1 - zoneout) * h_new
        outputs.append(h)
    return torch.stack(outputs), h


def random_haste(kind: str, input_size: int, hidden: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    blocks = 4 if kind == "lstm" else 3
    shapes = {"kernel": (input_size, blocks * hidden), "recurrent_kernel": (hidden, blocks * hidden),
              "bias": (blocks * hidden,)}
    if kind == "gru":
        shapes["recurrent_bias"] = (blocks * hidden,)
    return {name: 0.5 * torch.randn(shape, generator=g) for name, shape in shapes.items()}


def run_haste(kind: str, x, weights: dict, zoneout: float = 0.0):
    forward = haste_lstm if kind == "lstm" else haste_gru
    return forward(x, *weights.values(), zoneout=zoneout)


class FakeHasteLayer(nn.Module):
    """A haste layer's Python side, without its CUDA op: the parameters and settings from_haste reads."""

    def __init__(self, weights: dict, batch_first=False, zoneout=0.0, dropout=0.0):
        super().__init__()
        for name, value in weights.items():
            self.register_parameter(name, nn.Parameter(value.clone()))
        self.batch_first, self.zoneout, self.dropout = batch_first, zoneout, dropout


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("batch", [1, 4])
def test_haste_weights_give_haste_outputs(kind, batch):
    weights = random_haste(kind, 5, 6, seed=1)
    x = torch.randn(9, batch, 5)
    module = from_haste(weights)
    assert type(module) is {"lstm": gated.LSTM, "gru": gated.GRU}[kind]
    assert not module.batch_first and module.num_layers == 1
    with torch.no_grad():
        out, state = module(x)
    expected, expected_state = run_haste(kind, x, weights)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    states = state if kind == "lstm" else (state,)
    wanted = expected_state if kind == "lstm" else (expected_state,)
    for got, want in zip(states, wanted):
        torch.testing.assert_close(got[0], want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("bias", [True, False])
def test_gated_weights_run_the_same_in_haste(kind, bias):
    torch.manual_seed(2)
    module = {"lstm": gated.LSTM, "gru": gated.GRU}[kind](3, 5, bias=bias)
    x = torch.randn(6, 2, 3)
    weights = to_haste(module)
    names = ["kernel", "recurrent_kernel", "bias"] + (["recurrent_bias"] if kind == "gru" else [])
    assert list(weights) == names
    if not bias:  # haste always has biases: they come out as zeros
        assert all(not weights[k].any() for k in weights if "bias" in k)
    with torch.no_grad():
        expected, _ = module(x)
    torch.testing.assert_close(run_haste(kind, x, weights)[0], expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_haste_round_trip_is_exact(kind):
    weights = random_haste(kind, 4, 3, seed=3)
    back = to_haste(from_haste(weights))
    assert back.keys() == weights.keys()
    for name in weights:
        assert torch.equal(back[name], weights[name]), name


def test_lstm_bias_splits_in_halves_as_haste_does():
    # haste's to_native_weights gives bias_ih = bias_hh = bias / 2 (torch's rows).
    weights = random_haste("lstm", 4, 3, seed=4)
    module = from_haste(weights)
    torch.testing.assert_close(module.bias_ih_l0, module.bias_hh_l0, atol=0, rtol=0)
    reordered = torch.cat([weights["bias"].chunk(4)[k] for k in (0, 2, 1, 3)])  # i, g, f, o -> i, f, g, o
    assert torch.equal(module.bias_ih_l0 + module.bias_hh_l0, reordered)


def test_gated_round_trip_keeps_weights_and_outputs():
    torch.manual_seed(5)
    gru = gated.GRU(4, 3, num_layers=2)
    back = from_haste(to_haste(gru))
    for name, value in gru.state_dict().items():  # the GRU's two biases each have a place in haste
        assert torch.equal(back.state_dict()[name], value), name
    lstm = gated.LSTM(4, 3)
    back = from_haste(to_haste(lstm))
    for name in ("weight_ih_l0", "weight_hh_l0"):
        assert torch.equal(getattr(back, name), getattr(lstm, name))
    # haste's LSTM has one bias: the pair comes back as two halves of their sum, the same cell.
    torch.testing.assert_close(back.bias_ih_l0 + back.bias_hh_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0)
    x = torch.randn(5, 2, 4)
    with torch.no_grad():
        torch.testing.assert_close(back(x)[0], lstm(x)[0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_a_list_of_haste_layers_is_a_stack(kind):
    layers = [random_haste(kind, 5, 4, seed=6), random_haste(kind, 4, 4, seed=7),
              random_haste(kind, 4, 4, seed=8)]
    module = from_haste(layers)
    assert module.num_layers == 3
    x = torch.randn(7, 3, 5)
    expected = x
    for weights in layers:
        expected, _ = run_haste(kind, expected, weights)
    with torch.no_grad():
        torch.testing.assert_close(module(x)[0], expected, atol=1e-5, rtol=0)
    back = to_haste(module)
    assert len(back) == 3 and all(torch.equal(b[k], w[k]) for b, w in zip(back, layers) for k in w)


def test_tensors_in_haste_order_are_accepted():
    weights = random_haste("gru", 3, 2, seed=9)
    module = from_haste(tuple(weights.values()))
    x = torch.randn(4, 2, 3)
    with torch.no_grad():
        torch.testing.assert_close(module(x)[0], run_haste("gru", x, weights)[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_a_haste_layer_brings_batch_first_and_zoneout(kind):
    weights = random_haste(kind, 3, 4, seed=10)
    layer = FakeHasteLayer(weights, batch_first=True, zoneout=0.25)
    module = from_haste(layer).eval()
    assert module.batch_first
    assert module.zoneout == ((0.0, 0.25) if kind == "lstm" else 0.25)  # haste zones out h only
    x = torch.randn(2, 6, 3)  # batch first
    expected, _ = run_haste(kind, x.transpose(0, 1), weights, zoneout=0.25)
    with torch.no_grad():
        torch.testing.assert_close(module(x)[0], expected.transpose(0, 1), atol=1e-5, rtol=0)
    assert not from_haste(layer, batch_first=False).batch_first


def test_haste_dropconnect_is_refused_unless_ignored():
    layer = FakeHasteLayer(random_haste("lstm", 3, 2, seed=11), dropout=0.1)
    with pytest.raises(ValueError, match="dropout=0.1.*ignore_dropout=True"):
        from_haste(layer)
    module = from_haste(layer, ignore_dropout=True)
    assert torch.equal(to_haste(module)["kernel"], layer.kernel.detach())


@pytest.mark.parametrize("weights, message", [
    ({"kernel": torch.zeros(3, 8)}, "missing"),
    (random_haste("gru", 3, 2, seed=0) | {"gamma": torch.ones(2, 6)}, "layer-norm"),
    ({"kernel": torch.zeros(3, 8), "recurrent_kernel": torch.zeros(2, 6), "bias": torch.zeros(8)},
     "recurrent_bias is missing"),
    ({"kernel": torch.zeros(3, 9), "recurrent_kernel": torch.zeros(2, 8), "bias": torch.zeros(8)},
     "kernel must be"),
    ({"kernel": torch.zeros(3, 8), "recurrent_kernel": torch.zeros(2, 8), "bias": torch.zeros(6)},
     "bias must"),
    ((torch.zeros(3, 8), torch.zeros(2, 8)), "got 2 tensors"),
    ([], "empty"),
    ("kernel.pt", "expected a haste"),
    ([random_haste("lstm", 3, 2, seed=0), random_haste("gru", 2, 2, seed=0)], "one kind of layer"),
    ([random_haste("lstm", 3, 2, seed=0), random_haste("lstm", 3, 2, seed=0)], "takes 3 inputs"),
])
def test_bad_haste_weights_get_one_clear_error(weights, message):
    with pytest.raises(ValueError, match=message):
        from_haste(weights)


@pytest.mark.parametrize("module, message", [
    (gated.LSTM(3, 4, bidirectional=True), "bidirectional"),
    (gated.RNN(3, 4), "no plain"),
    (gated.LSTM(3, 4, proj_size=2), "proj_size=2"),
    (gated.PeepholeLSTM(3, 4), "PEEPHOLE_LSTM"),
    (nn.Linear(3, 4), "Linear"),
])
def test_modules_haste_cannot_hold_are_refused(module, message):
    with pytest.raises(ValueError, match=message):
        to_haste(module)


def test_torch_nn_modules_convert_too():
    torch.manual_seed(12)
    module = nn.GRU(3, 4)
    weights = to_haste(module)
    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        torch.testing.assert_close(run_haste("gru", x, weights)[0], module(x)[0], atol=1e-5, rtol=0)
