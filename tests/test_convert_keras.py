"""gated.convert.from_keras / to_keras against Keras 3 itself (torch backend), both ways.

Keras runs its own layers on random weights and inputs; gated's module on the
converted weights must give the same outputs and final states (1e-5), and the
Keras layers built by ``to_keras`` must give the gated module's.
"""

from __future__ import annotations

import os
import pickle

import pytest

os.environ["KERAS_BACKEND"] = "torch"  # before the import: Keras picks its backend once

import keras  # after the backend is set

# Keras imported earlier with another backend would compare gated against that backend's numbers:
# say so and stop, rather than skip these checks.
if keras.backend.backend() != "torch":
    raise RuntimeError(f"these tests run Keras on torch, but it was imported with {keras.backend.backend()!r} "
                       "first: run them in a process that has not imported keras yet")
import numpy as np
import torch
from torch import nn

import gated
from gated.convert import ResetBeforeGRU, from_keras, to_keras

torch.set_num_threads(1)
# Keras's torch backend calls np.array on torch tensors, which numpy 2 warns about; that is Keras's own code.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
L = keras.layers
ATOL = 1e-5


def randomize(layer, seed: int):
    """Random weights in every variable, biases included, so that each lands somewhere that matters."""
    rng = np.random.default_rng(seed)
    for variable in layer.weights:
        variable.assign(0.5 * rng.normal(size=tuple(variable.shape)).astype("float32"))
    return layer


def numpy(x):
    """A Keras output (a torch tensor on this backend) or variable as a numpy array."""
    return x.numpy() if isinstance(x, keras.Variable) else x.detach().cpu().numpy()


def inputs(batch: int, steps: int = 7, features: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, steps, features)).astype("float32")


def built(layer, features: int = 5, seed: int = 1):
    layer.build((None, None, features))
    return randomize(layer, seed)


def gated_output(module, x: np.ndarray):
    with torch.no_grad():
        out, state = module(torch.from_numpy(x))
    return out.numpy(), state


def last_output(out: np.ndarray, bidirectional: bool) -> np.ndarray:
    """What Keras returns without return_sequences: each direction's output after its own last step."""
    if not bidirectional:
        return out[:, -1]
    half = out.shape[-1] // 2  # the backward direction ends at step 0
    return np.concatenate([out[:, -1, :half], out[:, 0, half:]], axis=1)


def assert_close(got, want):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=ATOL, rtol=0)


LAYERS = {  # name: (the Keras layer, the gated module it becomes)
    "lstm": (lambda: L.LSTM(4, return_sequences=True), gated.LSTM),
    "gru": (lambda: L.GRU(4, return_sequences=True), gated.GRU),  # reset_after=True, Keras's default
    "simple-tanh": (lambda: L.SimpleRNN(4, return_sequences=True), gated.RNN),
    "simple-relu": (lambda: L.SimpleRNN(4, return_sequences=True, activation="relu"), gated.RNN),
    "lstm-no-bias": (lambda: L.LSTM(4, return_sequences=True, use_bias=False), gated.LSTM),
    "gru-no-bias": (lambda: L.GRU(4, return_sequences=True, use_bias=False), gated.GRU),
    "gru-reset-before": (lambda: L.GRU(4, return_sequences=True, reset_after=False), ResetBeforeGRU),
    "bidirectional-gru-reset-before": (
        lambda: L.Bidirectional(L.GRU(4, return_sequences=True, reset_after=False)), ResetBeforeGRU),
    "rnn-over-lstm-cell": (lambda: L.RNN(L.LSTMCell(4), return_sequences=True), gated.LSTM),
    "bidirectional-lstm": (lambda: L.Bidirectional(L.LSTM(4, return_sequences=True)), gated.LSTM),
    "bidirectional-gru": (lambda: L.Bidirectional(L.GRU(4, return_sequences=True)), gated.GRU),
    "bidirectional-simple": (lambda: L.Bidirectional(L.SimpleRNN(4, return_sequences=True)), gated.RNN),
}


@pytest.mark.parametrize("name", LAYERS)
def test_keras_layer_converts_both_ways(name):
    make, module_type = LAYERS[name]
    layer = built(make())
    module = from_keras(layer)
    assert type(module) is module_type
    assert module.batch_first and module.bidirectional == name.startswith("bi")
    for batch in (1, 3, 8):  # one converted module, batches of every size
        x = inputs(batch, seed=batch)
        expected = numpy(layer(x))
        assert_close(gated_output(module, x)[0], expected)
        assert_close(numpy(to_keras(module)(x)), expected)
    # Keras -> gated -> Keras gives Keras's own weights back, bit for bit.
    back = to_keras(module)
    assert [v.path.split("/")[-1] for v in back.weights] == [v.path.split("/")[-1] for v in layer.weights]
    for mine, theirs in zip(back.weights, layer.weights):
        assert np.array_equal(numpy(mine), numpy(theirs)), theirs.path


@pytest.mark.parametrize("make", [
    lambda: gated.LSTM(5, 4, batch_first=True),
    lambda: gated.GRU(5, 4, batch_first=True),
    lambda: gated.RNN(5, 4, nonlinearity="relu", batch_first=True),
    lambda: gated.LSTM(5, 4, bias=False, batch_first=True),
    lambda: gated.GRU(5, 4, bidirectional=True, batch_first=True),
    lambda: ResetBeforeGRU(5, 4, batch_first=True),
    lambda: nn.LSTM(5, 4, batch_first=True),
], ids=["lstm", "gru", "rnn-relu", "lstm-no-bias", "gru-bidirectional", "gru-reset-before", "torch-lstm"])
def test_gated_module_converts_both_ways(make):
    torch.manual_seed(3)
    module = make().eval()  # torch's init: b_ih and b_hh both non-zero, so their sum is what Keras must get
    x = inputs(4)
    expected, _ = gated_output(module, x)
    layer = to_keras(module)
    assert_close(numpy(layer(x)), expected)
    last = to_keras(module, return_sequences=False)
    assert_close(numpy(last(x)), last_output(expected, module.bidirectional))
    again = from_keras(layer)
    assert_close(gated_output(again, x)[0], expected)
    if module.mode == "GRU":  # Keras's GRU keeps both biases: every weight comes back as it was
        for name, value in module.state_dict().items():
            assert torch.equal(again.state_dict()[name], value), name


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple", "bidirectional"])
def test_final_state_matches_keras_return_state(kind):
    make = {"lstm": L.LSTM, "gru": L.GRU, "simple": L.SimpleRNN}
    if kind == "bidirectional":
        layer = L.Bidirectional(L.LSTM(4, return_state=True))
    else:
        layer = make[kind](4, return_state=True)  # return_sequences=False: the last output only
    built(layer)
    x = inputs(3)
    keras_out, *keras_states = (numpy(t) for t in layer(x))
    out, state = gated_output(from_keras(layer), x)
    assert_close(last_output(out, kind == "bidirectional"), keras_out)
    states = state if isinstance(state, tuple) else (state,)
    if kind == "bidirectional":  # Keras: h_fw, c_fw, h_bw, c_bw; torch: h (2, B, H), c (2, B, H)
        mine = [states[0][0], states[1][0], states[0][1], states[1][1]]
    else:  # Keras: h (and c); torch: (1, B, H) each
        mine = [s[0] for s in states]
    for got, want in zip(mine, keras_states, strict=True):
        assert_close(got, want)


def test_keras_masking_matches_packed_sequences():
    # Keras skips masked (padded) steps and carries the state; gated does the same with a PackedSequence.
    layer = built(L.LSTM(4, return_state=True))
    x = inputs(3)
    lengths = [7, 4, 2]
    mask = np.arange(7)[None, :] < np.array(lengths)[:, None]
    _, keras_h, keras_c = (numpy(t) for t in layer(x, mask=mask))
    module = from_keras(layer)
    packed = nn.utils.rnn.pack_padded_sequence(torch.from_numpy(x), lengths, batch_first=True)
    with torch.no_grad():
        _, (h, c) = module(packed)
    assert_close(h[0], keras_h)
    assert_close(c[0], keras_c)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_stack_of_layers_is_one_multi_layer_module(bidirectional):
    def recurrent(units, sequences=True):
        layer = L.GRU(units, return_sequences=sequences)
        return L.Bidirectional(layer) if bidirectional else layer

    stack = [recurrent(4), L.Dropout(0.3), recurrent(4), L.Dropout(0.3), recurrent(4, sequences=False)]
    model = keras.Sequential([keras.Input((None, 5)), *stack])
    randomize(model, 4)
    x = inputs(2)
    expected = numpy(model(x))  # inference: Dropout passes everything
    module = from_keras(stack).eval()
    assert module.num_layers == 3 and module.dropout == 0.3 and module.bidirectional == bidirectional
    out, _ = gated_output(module, x)
    assert_close(last_output(out, bidirectional), expected)
    assert from_keras(model).num_layers == 3  # the same stack, picked from the model
    back = to_keras(module)  # a Sequential: the layers with Dropout between, filled
    assert [type(layer).__name__ for layer in back.layers] == [type(layer).__name__ for layer in model.layers]
    assert_close(numpy(back(x)), out)  # the top layer returns sequences, as the module does


def test_model_file_picks_its_recurrent_layers(tmp_path):
    model = keras.Sequential([
        keras.Input((None, 5)), L.Dense(5, activation="tanh"),
        L.LSTM(6, return_sequences=True), L.LSTM(6), L.Dense(1),
    ])
    randomize(model, 5)
    path = tmp_path / "model.keras"
    model.save(path)
    module = from_keras(path)
    assert type(module) is gated.LSTM and module.num_layers == 2 and module.input_size == 5
    x = inputs(3)
    features = numpy(model.layers[0](x))  # what the stack reads: the Dense layer's output
    expected = numpy(model.layers[2](model.layers[1](features)))
    out, _ = gated_output(module, features)
    assert_close(out[:, -1], expected)
    assert from_keras(str(path)).num_layers == 2


def test_reset_before_gru_is_a_gated_cell_like_the_others():
    # Keras's reset_after=False: the cell traces and streams like gated's own.
    layer = built(L.GRU(4, return_sequences=True, reset_after=False))
    module = from_keras(layer)
    x = inputs(2)
    expected = numpy(layer(x))
    trace = module.trace(torch.from_numpy(x))
    assert_close(trace.output.detach().numpy(), expected)
    # The traced reset gate is Keras's r = σ(x W_r + b_r + h_prev U_r), from Keras's weights (blocks z, r, h).
    kernel, recurrent, bias = (numpy(v)[:, 4:8] if v.ndim == 2 else numpy(v)[4:8] for v in layer.weights)
    h_prev = np.concatenate([np.zeros_like(expected[:, :1]), expected[:, :-1]], axis=1)
    reset = 1 / (1 + np.exp(-(x @ kernel + bias + h_prev @ recurrent)))
    assert_close(trace.reset[0].detach().numpy().transpose(1, 0, 2), reset)
    # (time-major here: a stream of a batch_first module without fused kernels trips on its layout in
    # engines/stream.py's slow path, reported to be fixed there)
    stream = from_keras(layer, batch_first=False).stream()
    steps = [stream.step(torch.from_numpy(x[:, t])) for t in range(x.shape[1])]
    assert_close(torch.stack(steps, 1).detach().numpy(), expected)
    with pytest.raises(ValueError, match="reset gate before"):
        gated.convert.to_haste(module)


def test_reset_before_gru_pickles_and_trains():
    torch.manual_seed(6)
    module = ResetBeforeGRU(3, 4, num_layers=2, recurrent_dropout=0.2, zoneout=0.1)
    x = torch.randn(5, 2, 3)
    module(x)[0].sum().backward()  # training: recurrent dropout and zoneout run, gradients reach every weight
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    again = pickle.loads(pickle.dumps(module.eval()))
    assert again.kind is module.kind
    with torch.no_grad():
        assert torch.equal(again(x)[0], module(x)[0])


def test_recurrent_dropout_carries_over():
    layer = built(L.LSTM(4, recurrent_dropout=0.25, return_sequences=True))
    module = from_keras(layer)
    assert module.recurrent_dropout == 0.25
    assert to_keras(module).cell.recurrent_dropout == 0.25


def test_input_dropout_is_refused_unless_ignored():
    layer = built(L.GRU(4, dropout=0.2, return_sequences=True))
    with pytest.raises(ValueError, match=r"dropout=0.2 .*ignore_dropout=True"):
        from_keras(layer)
    x = inputs(2)
    assert_close(gated_output(from_keras(layer, ignore_dropout=True), x)[0], numpy(layer(x)))


def test_batch_first_can_be_turned_off():
    layer = built(L.SimpleRNN(3, return_sequences=True))
    module = from_keras(layer, batch_first=False)
    x = inputs(2)
    out, _ = gated_output(module, x.transpose(1, 0, 2).copy())
    assert_close(out.transpose(1, 0, 2), numpy(layer(x)))


@pytest.mark.parametrize("make, message", [
    (lambda: L.LSTM(4, activation="relu"), "activation='relu'"),
    (lambda: L.GRU(4, recurrent_activation="hard_sigmoid"), "recurrent_activation='hard_sigmoid'"),
    (lambda: L.SimpleRNN(4, activation="sigmoid"), "activation='sigmoid'"),
    (lambda: L.LSTM(4, go_backwards=True), "go_backwards=True"),
    (lambda: L.Bidirectional(L.LSTM(4), merge_mode="sum"), "merge_mode='sum'"),
    (lambda: L.Bidirectional(L.LSTM(4), backward_layer=L.LSTM(3, go_backwards=True)), "differ in units"),
    (lambda: L.Dense(4), "got Dense"),
])
def test_settings_gated_cannot_compute_are_refused(make, message):
    layer = make()
    layer.build((None, None, 5))
    with pytest.raises(ValueError, match=message):
        from_keras(layer)


def test_stateful_layer_is_refused():
    layer = L.LSTM(4, stateful=True)
    layer.build((2, None, 5))  # stateful layers fix the batch size
    with pytest.raises(ValueError, match="stateful=True.*stateful=False"):
        from_keras(layer)


def test_unbuilt_layer_is_refused():
    with pytest.raises(ValueError, match="no weights yet"):
        from_keras(L.LSTM(4))


def test_layers_that_do_not_stack_are_refused():
    with pytest.raises(ValueError, match="differ in family"):
        from_keras([built(L.LSTM(4, return_sequences=True)), built(L.GRU(4), features=4)])
    with pytest.raises(ValueError, match="return_sequences=False"):
        from_keras([built(L.LSTM(4)), built(L.LSTM(4), features=4)])
    with pytest.raises(ValueError, match="Dropout between"):
        from_keras([built(L.LSTM(4, return_sequences=True)), L.Dropout(0.1),
                    built(L.LSTM(4, return_sequences=True), features=4), L.Dropout(0.2),
                    built(L.LSTM(4), features=4)])


def test_model_without_one_stack_is_refused_with_the_layer_names():
    x = keras.Input((None, 5))
    a = L.LSTM(4, name="encoder_a")(x)
    b = L.LSTM(4, name="encoder_b")(x)  # two branches side by side, not a stack
    model = keras.Model(x, L.Concatenate()([a, b]))
    with pytest.raises(ValueError, match="'encoder_a', 'encoder_b'.*get_layer"):
        from_keras(model)
    plain = keras.Sequential([keras.Input((5,)), L.Dense(2, name="only_dense")])
    with pytest.raises(ValueError, match="no LSTM, GRU.*only_dense"):
        from_keras(plain)


def test_bad_model_files_get_one_clear_error(tmp_path):
    with pytest.raises(OSError, match="no such file"):
        from_keras(tmp_path / "missing.keras")
    (tmp_path / "model.h5").write_bytes(b"\x89HDF")
    with pytest.raises(ValueError, match=r"not a \.keras file"):
        from_keras(tmp_path / "model.h5")
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="could not load"):
        from_keras(tmp_path / "broken.keras")


@pytest.mark.parametrize("module, message", [
    (gated.LSTM(3, 4, proj_size=2), "proj_size=2"),
    (gated.LSTM(3, 4, zoneout=0.1), "zoneout"),
    (gated.LayerNormLSTM(3, 4), "LAYER_NORM_LSTM"),
    (gated.LSTMCell(3, 4), "LSTMCell"),
])
def test_modules_keras_cannot_hold_are_refused(module, message):
    with pytest.raises(ValueError, match=message):
        to_keras(module)
