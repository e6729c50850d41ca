"""haste's LSTM and GRU weights (lmnt-com/haste, its PyTorch layers) to gated's modules, and back.

haste keeps one layer as ``kernel`` (input, gates * H), ``recurrent_kernel``
(H, gates * H) and biases, columns in blocks of H:

- LSTM: blocks i, g, f, o (input, candidate, forget, output) and one ``bias``.
  Like haste's own ``to_native_weights``, the bias goes half to ``bias_ih`` and
  half to ``bias_hh``; back, the two are added, as its ``from_native_weights`` does.
- GRU: blocks z, r, h (update, reset, candidate), ``bias`` (the input's) and
  ``recurrent_bias`` (inside the reset gate's product, as torch's ``b_hn``):
  the same cell as torch's GRU, so ``bias`` is ``bias_ih`` and ``recurrent_bias``
  is ``bias_hh``, reordered.

A haste layer is one direction of one layer; a list of them is a stack.
haste runs on NVIDIA GPUs only; nothing here imports it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from . import _layout
from ._layout import LayerTensors, reorder

TORCH_ROWS = {"lstm": ("input", "forget", "candidate", "output"), "gru": ("reset", "update", "candidate")}
HASTE_COLUMNS = {"lstm": ("input", "candidate", "forget", "output"), "gru": ("update", "reset", "candidate")}
KEYS = {"lstm": ("kernel", "recurrent_kernel", "bias"),
        "gru": ("kernel", "recurrent_kernel", "bias", "recurrent_bias")}


def from_haste(weights, *, batch_first: bool | None = None, ignore_dropout: bool = False) -> nn.Module:
    """A ``gated.LSTM`` or ``gated.GRU`` with the weights of haste's ``LSTM`` or ``GRU``.

    ``weights``: a haste layer, its ``state_dict()`` (``kernel``, ``recurrent_kernel``,
    ``bias``, and the GRU's ``recurrent_bias``), the tensors themselves in that order
    as a tuple, or a list of layers or state_dicts, bottom first, for a stack
    (a multi-layer module). LSTM or GRU is read from the shapes.

    From a haste layer, ``batch_first`` and ``zoneout`` carry over (haste zones out h
    only: the LSTM gets ``zoneout=(0, p)``). haste's ``dropout`` is DropConnect on the
    recurrent matrix while training, which gated does not do: it is refused unless
    ``ignore_dropout=True`` (inference does not use it). ``batch_first``, when given,
    overrides the layer's; the default for plain weights is False, as haste's.
    """
    items = list(weights) if _is_stack(weights) else [weights]
    if not items:
        raise ValueError("from_haste: got an empty list; give a haste layer, its state_dict, or a list of "
                         "them")
    layers = [_read_haste_layer(item, position) for position, item in enumerate(items)]
    family = _same_family(layers)
    for k in range(1, len(layers)):
        below, above = layers[k - 1], layers[k]
        if above["input_size"] != below["hidden_size"]:
            raise ValueError(f"from_haste: layer {k} takes {above['input_size']} inputs but "
                             f"the layer below gives {below['hidden_size']}: list the layers bottom first, "
                             "each taking the one below's output")
    options = _same_options([_options(item, family, ignore_dropout) for item in items])
    if batch_first is None:  # a haste layer's own, else haste's default
        batch_first = isinstance(items[0], nn.Module) and bool(getattr(items[0], "batch_first", False))
    stack = [[layer["tensors"]] for layer in layers]
    return _layout.build(family, stack, batch_first=batch_first, **options)


def to_haste(module: nn.Module) -> dict[str, Tensor] | list[dict[str, Tensor]]:
    """haste's weights for gated's (or torch.nn's) LSTM or GRU: a state_dict for ``haste.LSTM``/``haste.GRU``.

    One layer gives one dict (``haste.LSTM(input_size, hidden_size).load_state_dict(d)``);
    a stack gives a list of them, bottom first. A module without biases gives zero biases
    (haste always has them). Only weights travel: build the haste layer with the
    ``batch_first`` and ``zoneout`` you want.
    """
    family = _layout.family_of(module, "to_haste")
    if family == "rnn":
        raise ValueError("to_haste: haste has no plain (Elman) RNN, only IndRNN, whose recurrent weight is "
                         "one value per unit; convert an LSTM or GRU")
    if family == "gru-reset-before":
        raise ValueError("to_haste: this GRU applies its reset gate before W_hn reads h, and haste's GRU "
                         "after (as torch's and gated.GRU do); haste has no layer for it")
    if module.bidirectional:
        raise ValueError("to_haste: the module is bidirectional and a haste layer runs one direction; "
                         "build it with bidirectional=False, or run a second haste layer on the "
                         "time-reversed input")
    dicts = [_haste_layer(family, layer[0]) for layer in _layout.read(module)]
    return dicts[0] if len(dicts) == 1 else dicts


def _haste_layer(family: str, t: LayerTensors) -> dict[str, Tensor]:
    def columns(matrix: Tensor) -> Tensor:  # torch's (rows * H, n) -> haste's (n, columns * H)
        return reorder(matrix, TORCH_ROWS[family], HASTE_COLUMNS[family]).t().contiguous()

    def vector(v: Tensor | None) -> Tensor:
        v = torch.zeros(t.w_ih.shape[0], dtype=t.w_ih.dtype, device=t.w_ih.device) if v is None else v
        return reorder(v, TORCH_ROWS[family], HASTE_COLUMNS[family]).contiguous()

    out = {"kernel": columns(t.w_ih), "recurrent_kernel": columns(t.w_hh)}
    if family == "lstm":
        both = None if t.b_ih is None else t.b_ih + t.b_hh  # haste's LSTM has one bias: the two summed
        out["bias"] = vector(both)
    else:
        out["bias"], out["recurrent_bias"] = vector(t.b_ih), vector(t.b_hh)
    return out


def _is_stack(weights) -> bool:
    """A list of layers (not one layer's tensors, which come as a tuple of tensors)."""
    if isinstance(weights, (Mapping, nn.Module, Tensor)) or not isinstance(weights, Sequence):
        return False
    return not all(isinstance(w, Tensor) for w in weights) or len(weights) == 0


def _read_haste_layer(item, position: int) -> dict:
    """One haste layer, in any form from_haste takes, checked: its family, sizes and torch-layout tensors."""
    where = f"from_haste (layer {position})"
    weights = _as_mapping(where, item)
    family = "gru" if "recurrent_bias" in weights else "lstm"
    _check_keys(where, family, weights)
    return _check_shapes(where, family, {key: weights[key] for key in KEYS[family]})


def _as_mapping(where: str, item) -> Mapping:
    if isinstance(item, nn.Module):
        return item.state_dict()
    if isinstance(item, Sequence) and item and all(isinstance(t, Tensor) for t in item):
        if len(item) not in (3, 4):
            raise ValueError(f"{where}: got {len(item)} tensors; give (kernel, recurrent_kernel, bias) for "
                             "an LSTM or (kernel, recurrent_kernel, bias, recurrent_bias) for a GRU")
        return dict(zip(KEYS["gru"], item))
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: expected a haste LSTM or GRU, its state_dict or its tensors; got "  # noqa: TRY004 - bad input is a ValueError (one line in the CLI)
                         f"{type(item).__name__}")
    return item


def _check_keys(where: str, family: str, weights: Mapping) -> None:
    expected = set(KEYS[family])
    extra, missing = sorted(set(weights) - expected), sorted(expected - set(weights))
    if not extra and not missing:
        return
    found = "; ".join([f"unexpected {extra}"] * bool(extra) + [f"missing {missing}"] * bool(missing))
    hint = ""
    if any(key.startswith(("gamma", "beta")) or key == "recurrent_scale" for key in extra):
        hint = " (haste's layer-norm and IndRNN layers are not converted)"
    elif extra:
        hint = " (from a larger model's state_dict, keep the haste layer's own entries, without their prefix)"
    raise ValueError(f"{where}: expected the keys kernel, recurrent_kernel, bias, and for a GRU "
                     f"recurrent_bias; {found}{hint}")


def _check_shapes(where: str, family: str, w: dict[str, Tensor]) -> dict:
    blocks = len(TORCH_ROWS[family])
    for name, t in w.items():
        if not isinstance(t, Tensor):
            raise ValueError(f"{where}: {name} must be a torch tensor, got {type(t).__name__}")  # noqa: TRY004 - bad input is a ValueError (one line in the CLI)
    kernel, recurrent = w["kernel"], w["recurrent_kernel"]
    if recurrent.dim() != 2 or recurrent.shape[0] == 0 or recurrent.shape[1] != blocks * recurrent.shape[0]:
        gru_shaped = recurrent.dim() == 2 and recurrent.shape[1] == 3 * recurrent.shape[0]
        looks_like_gru = family == "lstm" and gru_shaped
        hint = " (a GRU: recurrent_bias is missing?)" if looks_like_gru else ""
        raise ValueError(f"{where}: recurrent_kernel must be (H, {blocks} * H) for haste's {family.upper()}, "
                         f"got {tuple(recurrent.shape)}{hint}")
    hidden = recurrent.shape[0]
    if kernel.dim() != 2 or kernel.shape[1] != blocks * hidden:
        raise ValueError(f"{where}: kernel must be (input_size, {blocks * hidden}), got "
                         f"{tuple(kernel.shape)}")
    for name in KEYS[family][2:]:
        if tuple(w[name].shape) != (blocks * hidden,):
            raise ValueError(f"{where}: {name} must have shape ({blocks * hidden},), "
                             f"got {tuple(w[name].shape)}")
    return {"family": family, "input_size": kernel.shape[0], "hidden_size": hidden,
            "tensors": _torch_layer(family, w)}


def _torch_layer(family: str, w: dict[str, Tensor]) -> LayerTensors:
    def rows(t: Tensor) -> Tensor:  # haste's (n, columns * H) or (columns * H,) -> torch's rows
        t = t.detach()
        return reorder(t.t() if t.dim() == 2 else t, HASTE_COLUMNS[family], TORCH_ROWS[family]).clone()

    if family == "lstm":
        half = rows(w["bias"]) / 2  # as haste's to_native_weights: half to each, so they add back exactly
        return LayerTensors(rows(w["kernel"]), rows(w["recurrent_kernel"]), half, half.clone())
    return LayerTensors(rows(w["kernel"]), rows(w["recurrent_kernel"]),
                        rows(w["bias"]), rows(w["recurrent_bias"]))


def _same_family(layers: list[dict]) -> str:
    families = {layer["family"] for layer in layers}
    sizes = {layer["hidden_size"] for layer in layers}
    if len(families) > 1 or len(sizes) > 1:
        described = ", ".join(f"{l['family'].upper()} H={l['hidden_size']}" for l in layers)
        raise ValueError(f"from_haste: a stack needs one kind of layer and one hidden size, got {described}; "
                         "convert the layers one at a time instead")
    return families.pop()


def _same_options(per_layer: list[dict]) -> dict:
    """One module has one zoneout: the haste layers of a stack must agree on it."""
    if any(options != per_layer[0] for options in per_layer):
        raise ValueError(f"from_haste: the layers have different zoneout settings ({per_layer}), and a gated "
                         "module has one for all its layers; convert the layers one at a time instead")
    return per_layer[0]


def _options(item, family: str, ignore_dropout: bool) -> dict:
    """Constructor arguments read from a haste layer object (plain weights carry none)."""
    if not isinstance(item, nn.Module):
        return {}
    dropout = float(getattr(item, "dropout", 0.0) or 0.0)
    if dropout and not ignore_dropout:
        raise ValueError(f"from_haste: the haste layer has dropout={dropout} (DropConnect on "
                         "recurrent_kernel while training), which gated does not do; pass "
                         "ignore_dropout=True to convert without it (inference never uses it), or use "
                         "gated's recurrent_dropout for training")
    zoneout = float(getattr(item, "zoneout", 0.0) or 0.0)
    if not zoneout:
        return {}
    return {"zoneout": (0.0, zoneout) if family == "lstm" else zoneout}
