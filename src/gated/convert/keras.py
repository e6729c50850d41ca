"""Keras 3 recurrent layers to gated's modules, and back.

Keras keeps one layer as ``kernel`` (input, gates * H), ``recurrent_kernel``
(H, gates * H) and ``bias``, columns in blocks of H:

- ``LSTM``: blocks i, f, c, o, torch's own order (c is torch's g); one bias,
  which becomes ``bias_ih`` (``bias_hh`` = 0); back, the two are added.
- ``GRU`` with ``reset_after=True`` (Keras's default): blocks z, r, h, and a bias
  of shape (2, 3H): row 0 the input's (``bias_ih``), row 1 the recurrent one,
  inside the reset gate's product (``bias_hh``), as in torch's GRU.
  ``reset_after=False`` applies the reset gate to h before the matrix product, a
  different cell that torch.nn does not have: it becomes a
  ``gated.convert.ResetBeforeGRU`` (one bias: ``bias_ih``, ``bias_hh`` = 0).
- ``SimpleRNN``: one block; tanh or relu.
- ``Bidirectional`` with ``merge_mode="concat"``: torch's bidirectional layer.
- A stack of these layers, each feeding the next (in a list, or in a model, with
  optional ``Dropout`` layers between them, all of one rate): one multi-layer module.

Keras is batch-first, so the modules built here are ``batch_first=True`` unless
asked otherwise. Keras is imported only inside these functions.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import torch
from torch import Tensor, nn

from . import _layout
from ._layout import LayerTensors, reorder

TORCH_ROWS = {"lstm": ("input", "forget", "candidate", "output"), "gru": ("reset", "update", "candidate"),
              "rnn": ("hidden",)}
KERAS_COLUMNS = {"lstm": ("input", "forget", "candidate", "output"), "gru": ("update", "reset", "candidate"),
                 "rnn": ("hidden",)}
TORCH_ROWS["gru-reset-before"], KERAS_COLUMNS["gru-reset-before"] = TORCH_ROWS["gru"], KERAS_COLUMNS["gru"]
KERAS_LAYER = {"lstm": "LSTM", "gru": "GRU", "gru-reset-before": "GRU", "rnn": "SimpleRNN"}


def from_keras(source, *, batch_first: bool = True, ignore_dropout: bool = False) -> nn.Module:
    """A ``gated.LSTM``, ``GRU`` or ``RNN`` holding the weights of Keras recurrent layer(s).

    (A Keras ``GRU(reset_after=False)`` becomes a ``gated.convert.ResetBeforeGRU``.)

    ``source``: a Keras ``LSTM``, ``GRU``, ``SimpleRNN`` (or ``RNN`` over one of their
    cells), a ``Bidirectional`` wrapper of one, a list of them bottom first (a stack,
    ``Dropout`` layers allowed between), a Keras model, or the path of a ``.keras`` file.
    From a model, its recurrent layers are picked: one, or a stack where each feeds the
    next; anything else is an error that names them.

    Mapped: ``use_bias``; ``recurrent_dropout`` (the rate: both drop h where the recurrent
    kernel reads it, Keras drawing its masks its own way); ``return_sequences`` and
    ``return_state`` (gated always returns every step's output and the final state);
    SimpleRNN's tanh or relu. Refused, each with what to change: other activations,
    ``go_backwards`` outside ``Bidirectional``, ``stateful``, a ``merge_mode`` other than
    "concat", and ``dropout`` on the input unless ``ignore_dropout=True`` (it acts only
    while training). Initialisers (``unit_forget_bias`` too), regularisers and constraints
    act only while training and do not travel.
    """
    keras = _import_keras("from_keras")
    if isinstance(source, (str, os.PathLike)):
        source = _load(keras, source)
    if isinstance(source, keras.Model):
        items, between = _pick_from_model(keras, source)
    elif isinstance(source, (list, tuple)):
        items, between = _split_list(keras, source)
    else:
        items, between = [source], []
    layers = [_describe(keras, item, ignore_dropout) for item in items]
    return _build_stack(layers, between, batch_first)


def to_keras(module: nn.Module, *, return_sequences: bool = True):
    """Keras layer(s) with the weights of gated's (or torch.nn's) LSTM, GRU or RNN, built and filled.

    One layer gives a Keras ``LSTM``, ``GRU`` or ``SimpleRNN`` (``Bidirectional`` when the
    module is); a multi-layer module gives a ``keras.Sequential`` of them, with a
    ``Dropout`` layer between each two when the module has ``dropout``. Keras takes
    (batch, time, features), whatever the module's ``batch_first``.
    ``return_sequences`` is the top layer's (those below always return sequences).
    ``recurrent_dropout`` carries over; zoneout and ``proj_size`` have no Keras
    counterpart and are refused.
    """
    family = _layout.family_of(module, "to_keras")
    if getattr(module, "_zoneout_states", ()):
        raise ValueError(f"to_keras: the module has zoneout={module.zoneout}, which Keras layers do not have "
                         "(it changes outputs in eval mode too); set module.zoneout = 0 first")
    keras = _import_keras("to_keras")
    stack = _layout.read(module)
    options = {"use_bias": module.bias, "recurrent_dropout": float(getattr(module, "recurrent_dropout", 0.0)),
               "dtype": str(module.weight_ih_l0.dtype).removeprefix("torch.")}
    if family == "rnn":
        options["activation"] = "relu" if module.mode == "RNN_RELU" else "tanh"
    built, size = [], module.input_size
    for k, layer in enumerate(stack):
        sequences = return_sequences or k < len(stack) - 1
        built.append(_keras_layer(keras, family, module.hidden_size, layer, size, sequences, options))
        size = module.hidden_size * len(layer)
    if len(built) == 1:
        return built[0]
    parts = [keras.Input((None, module.input_size), dtype=options["dtype"]), built[0]]
    for layer in built[1:]:
        if module.dropout:  # torch's dropout between layers: each element of each step on its own, as Keras's
            parts.append(keras.layers.Dropout(module.dropout))
        parts.append(layer)
    return keras.Sequential(parts)


# -- Keras to gated ----------------------------------------------------------------------------


def _import_keras(caller: str):
    try:
        import keras
    except ImportError as error:
        raise ValueError(f"{caller} needs Keras 3 ({error}): pip install keras, and set KERAS_BACKEND=torch "
                         "to run it on torch alone") from None
    if not hasattr(keras, "Variable"):
        raise ValueError(f"{caller} needs Keras 3; found keras {getattr(keras, '__version__', '?')}")
    return keras


def _load(keras, path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise OSError(f"from_keras: no such file: {path}")
    if not path.endswith(".keras"):
        raise ValueError(f"from_keras: {path} is not a .keras file (Keras 3's format); for an older .h5 "
                         "file, load it with keras.models.load_model and pass the model")
    try:
        return keras.saving.load_model(path, compile=False)  # safe_mode: no code in the file is run
    except Exception as error:  # noqa: BLE001 - Keras raises many kinds here; the user needs the one line
        raise ValueError(f"from_keras: could not load {path} with Keras: {error}") from None


def _pick_from_model(keras, model) -> tuple[list, list[float | None]]:
    """The model's recurrent layers, checked to form one stack; and the dropout rate between each two."""
    recurrent = [layer for layer in model.layers if _is_recurrent(keras, layer)]
    if not recurrent:
        names = ", ".join(f"{layer.name} ({type(layer).__name__})" for layer in model.layers) or "none"
        raise ValueError(f"from_keras: the model {model.name!r} has no LSTM, GRU, SimpleRNN or Bidirectional "
                         f"layer at its top level (layers: {names}); pass the recurrent layer itself")
    between = []
    for below, above in itertools.pairwise(recurrent):
        rate = _rate_between(keras, below, above)
        if rate is False:
            names = ", ".join(repr(layer.name) for layer in recurrent)
            raise ValueError(f"from_keras: the model's recurrent layers ({names}) do not form one stack "
                             f"({above.name!r} does not read {below.name!r}'s output directly or through "
                             "Dropout); convert them one at a time: from_keras(model.get_layer(name))")
        between.append(rate)
    return recurrent, between


def _rate_between(keras, below, above):
    """The dropout rate between two layers where ``above`` reads ``below``'s output (None: directly).

    False where it does not read it.
    """
    rate = None
    tensor = _only_input(above)
    while tensor is not None:
        history = getattr(tensor, "_keras_history", None)
        producer = history.operation if history is not None else None
        if producer is below:
            return rate
        if not isinstance(producer, keras.layers.Dropout) or rate is not None:
            return False
        rate = float(producer.rate)
        tensor = _only_input(producer)
    return False


def _only_input(layer):
    try:
        tensor = layer.input
    except (AttributeError, ValueError):  # used more than once, or never called
        return None
    return tensor if not isinstance(tensor, (list, tuple)) else None


def _split_list(keras, items) -> tuple[list, list[float | None]]:
    """A list of recurrent layers, Dropout layers allowed between: (the recurrent ones, the rates between)."""
    recurrent, between, rate = [], [], None
    for item in items:
        if isinstance(item, keras.layers.Dropout):
            if not recurrent or rate is not None:
                raise ValueError("from_keras: in a list, a Dropout layer goes between two recurrent layers, "
                                 "one at most between each two")
            rate = float(item.rate)
            continue
        if recurrent:
            between.append(rate)
        recurrent.append(item)
        rate = None
    if not recurrent:
        raise ValueError("from_keras: got an empty list; give a recurrent layer or a list of them, bottom "
                         "first")
    if rate is not None:
        raise ValueError("from_keras: the list ends with a Dropout layer; a Dropout goes between two "
                         "recurrent layers (put one after the module yourself)")
    return recurrent, between


def _is_recurrent(keras, layer) -> bool:
    return isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))


def _describe(keras, layer, ignore_dropout: bool) -> dict:
    """One Keras recurrent layer, checked, as the gated module needs it: settings, weights per direction."""
    if isinstance(layer, keras.layers.Bidirectional):
        return _describe_bidirectional(keras, layer, ignore_dropout)
    if not isinstance(layer, keras.layers.RNN):
        raise ValueError("from_keras: expected a Keras LSTM, GRU, SimpleRNN or Bidirectional layer, a list "  # noqa: TRY004 - bad input is a ValueError (one line in the CLI)
                         f"of them, a model or a .keras path; got {type(layer).__name__}")
    return _describe_rnn(keras, layer, ignore_dropout, backwards=False)


def _describe_bidirectional(keras, layer, ignore_dropout: bool) -> dict:
    where = f"from_keras: Bidirectional layer {layer.name!r}"
    if layer.merge_mode != "concat":
        raise ValueError(f"{where}: merge_mode={layer.merge_mode!r}; gated's bidirectional modules "
                         "concatenate the two directions, as torch.nn does: use merge_mode='concat' (then "
                         "combine the two halves of the output yourself)")
    forward = _describe_rnn(keras, layer.forward_layer, ignore_dropout, backwards=False)
    backward = _describe_rnn(keras, layer.backward_layer, ignore_dropout, backwards=True)
    for key in ("family", "nonlinearity", "units", "input_size", "bias", "recurrent_dropout"):
        if forward[key] != backward[key]:
            raise ValueError(f"{where}: its forward and backward layers differ in {key} ({forward[key]!r} "
                             f"and {backward[key]!r}); a gated module's two directions are alike")
    return forward | {"name": layer.name, "directions": forward["directions"] + backward["directions"],
                      "return_sequences": layer.return_sequences}


def _describe_rnn(keras, layer, ignore_dropout: bool, backwards: bool) -> dict:
    cell = layer.cell
    kind = type(layer).__name__
    where = f"from_keras: Keras {kind} layer {layer.name!r}"
    family = {keras.layers.LSTMCell: "lstm", keras.layers.GRUCell: "gru",
              keras.layers.SimpleRNNCell: "rnn"}.get(type(cell))
    if family is None:
        raise ValueError(f"{where}: its cell is a {type(cell).__name__}; gated converts Keras's LSTMCell, "
                         "GRUCell and SimpleRNNCell (for a StackedRNNCells, build the cells as separate "
                         "LSTM/GRU layers and pass them as a list)")
    if getattr(cell, "kernel", None) is None:
        raise ValueError(f"{where} has no weights yet: call it on an input, or layer.build((None, None, "
                         "input_size)), before converting it")
    nonlinearity = _check_activations(where, family, cell)
    if family == "gru" and not cell.reset_after:  # the reset gate before W_hn: its own cell
        family = "gru-reset-before"
    if layer.go_backwards != backwards:
        raise ValueError(f"{where}: go_backwards={layer.go_backwards} outside a Bidirectional wrapper; "
                         "gated's modules read time forwards: build the layer with go_backwards=False and "
                         "reverse the time axis of its input yourself (x.flip(1)), or wrap it in "
                         "Bidirectional")
    if layer.stateful:
        raise ValueError(f"{where}: stateful=True; gated's modules take the state as an argument instead "
                         "(module(x, hx) returns the next one, and module.stream() carries it): rebuild the "
                         "layer with stateful=False (from its get_config()) and set_weights, then convert")
    if cell.dropout and not ignore_dropout:
        raise ValueError(f"{where}: dropout={cell.dropout} drops the layer's input with one mask per "
                         "sequence while training, which gated's modules do not do; inference never uses "
                         "it: pass ignore_dropout=True to convert without it")
    return {
        "name": layer.name, "family": family, "nonlinearity": nonlinearity, "units": cell.units,
        "input_size": int(cell.kernel.shape[0]), "bias": cell.use_bias,
        "recurrent_dropout": float(cell.recurrent_dropout), "return_sequences": layer.return_sequences,
        "directions": [_torch_weights(keras, family, cell)],
    }


def _check_activations(where: str, family: str, cell) -> str | None:
    """The RNN's nonlinearity ("tanh" or "relu"), None for LSTM and GRU; refuses the rest."""
    activation = _activation_name(cell.activation)
    if family == "rnn":
        if activation not in ("tanh", "relu"):
            raise ValueError(f"{where}: activation={activation!r}; gated's RNN (as torch.nn's) computes "
                             "tanh or relu: train with activation='tanh' or 'relu'")
        return activation
    recurrent = _activation_name(cell.recurrent_activation)
    if activation != "tanh":
        where_tanh = "the candidate" + (" and the cell output" if family == "lstm" else "")
        raise ValueError(f"{where}: activation={activation!r}; gated's {family.upper()}, as torch.nn's, uses "
                         f"tanh for {where_tanh}: train with activation='tanh'")
    if recurrent != "sigmoid":
        raise ValueError(f"{where}: recurrent_activation={recurrent!r}; gated's gates are the logistic "
                         "sigmoid: train with recurrent_activation='sigmoid' (hard_sigmoid is a different "
                         "function)")
    return None


def _activation_name(function) -> str:
    name = getattr(function, "__name__", None)
    return name if isinstance(name, str) else repr(function)


def _numpy(keras, variable) -> Tensor:
    """A copy of a Keras variable's value: the module must not share Keras's memory."""
    value = variable.value
    if isinstance(value, Tensor):  # the torch backend: the value is a torch tensor already
        return value.detach().cpu().clone()
    return torch.from_numpy(np.array(keras.ops.convert_to_numpy(value)))


def _torch_weights(keras, family: str, cell) -> LayerTensors:
    """One Keras cell's weights in torch's layout."""
    def rows(t: Tensor) -> Tensor:  # Keras's (n, columns * H) or (columns * H,) -> torch's rows
        return reorder(t.t() if t.dim() == 2 else t, KERAS_COLUMNS[family], TORCH_ROWS[family]).contiguous()

    w_ih, w_hh = rows(_numpy(keras, cell.kernel)), rows(_numpy(keras, cell.recurrent_kernel))
    if cell.bias is None:
        return LayerTensors(w_ih, w_hh, None, None)
    bias = _numpy(keras, cell.bias)
    if family == "gru":  # reset_after: (2, 3H), the input's bias and the recurrent one
        return LayerTensors(w_ih, w_hh, rows(bias[0]), rows(bias[1]))
    # One bias (LSTM, SimpleRNN, GRU with reset_after=False): all of it in b_ih. Each row of b_hh adds
    # to its gate outside any product in these cells, so b_ih + b_hh is the same cell.
    return LayerTensors(w_ih, w_hh, rows(bias), torch.zeros_like(bias))


def _build_stack(layers: list[dict], between: list[float | None], batch_first: bool) -> nn.Module:
    first = layers[0]
    for key in ("family", "nonlinearity", "units", "bias", "recurrent_dropout"):
        values = [layer[key] for layer in layers]
        if any(v != values[0] for v in values):
            named = ", ".join(f"{layer['name']!r}: {layer[key]!r}" for layer in layers)
            raise ValueError(f"from_keras: the stacked layers differ in {key} ({named}); one gated module "
                             "has one setting for all its layers: convert them one at a time")
    directions = {len(layer["directions"]) for layer in layers}
    if len(directions) > 1:
        raise ValueError("from_keras: the stack mixes Bidirectional and one-way layers; one gated module is "
                         "bidirectional in every layer or in none: convert them one at a time")
    for below, above in itertools.pairwise(layers):
        given = below["units"] * len(below["directions"])
        if not below["return_sequences"] or above["input_size"] != given:
            raise ValueError(f"from_keras: {above['name']!r} does not read {below['name']!r}'s sequence of "
                             f"{given} features (return_sequences={below['return_sequences']}, it takes "
                             f"{above['input_size']}): list the layers bottom first, each feeding the next")
    rates = set(between)
    if len(rates) > 1:
        raise ValueError("from_keras: the Dropout between stacked layers must be the same everywhere (a "
                         "gated module has one dropout between all its layers), got "
                         f"{sorted(rates, key=str)}")
    dropout = (rates.pop() or 0.0) if rates else 0.0  # None: no Dropout layer between
    options = {"dropout": dropout, "recurrent_dropout": first["recurrent_dropout"]}
    if first["family"] == "rnn":
        options["nonlinearity"] = first["nonlinearity"]
    stack = [layer["directions"] for layer in layers]
    return _layout.build(first["family"], stack, batch_first=batch_first, **options)


# -- gated to Keras ----------------------------------------------------------------------------


def _keras_layer(keras, family: str, units: int, layer: list[LayerTensors], input_size: int,
                 return_sequences: bool, options: dict):
    """One Keras layer (Bidirectional for two directions), built for ``input_size`` and filled."""
    make = getattr(keras.layers, KERAS_LAYER[family])
    extra = {"reset_after": family == "gru"} if family.startswith("gru") else {}
    rnn = make(units, return_sequences=return_sequences, **options, **extra)
    if len(layer) == 2:
        rnn = keras.layers.Bidirectional(rnn, merge_mode="concat", dtype=options["dtype"])
    rnn.build((None, None, input_size))
    cells = [rnn.forward_layer.cell, rnn.backward_layer.cell] if len(layer) == 2 else [rnn.cell]
    for cell, tensors in zip(cells, layer):
        _fill(family, cell, tensors)
    return rnn


def _fill(family: str, cell, t: LayerTensors) -> None:
    def columns(x: Tensor) -> np.ndarray:  # torch's rows -> Keras's (n, columns * H) or (columns * H,)
        x = reorder(x, TORCH_ROWS[family], KERAS_COLUMNS[family])
        return (x.t() if x.dim() == 2 else x).contiguous().cpu().numpy()

    cell.kernel.assign(columns(t.w_ih))
    cell.recurrent_kernel.assign(columns(t.w_hh))
    if t.b_ih is None:
        return
    if family == "gru":
        cell.bias.assign(np.stack([columns(t.b_ih), columns(t.b_hh)]))
    else:  # Keras's one bias is the sum of torch's two
        cell.bias.assign(columns(t.b_ih + t.b_hh))
