"""Drop-in replacements for ``torch.nn.RNN``, ``LSTM`` and ``GRU``.

Same constructor arguments and defaults, same parameter names, shapes, gate
order and initialisation, same forward signature and outputs (batched,
unbatched, ``batch_first``, ``PackedSequence``). A ``torch.nn`` state_dict
loads with ``strict=True``, and back. What they add: ``trace()``, which shows
every gate at every step, ``forget_bias`` on the LSTM, recurrent regularisation
(``recurrent_dropout``, ``zoneout``; off by default) and a choice of engine.
The math of one step lives in ``cells.py``; the loop over time in ``engines/``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from . import checks, engines, kinds
from .engines.reference import step_mask
from .engines.spec import LayerWeights, StackSpec
from .kinds import CellKind
from .trace import Trace

@dataclass(frozen=True)
class _Layout:
    """How the caller laid out the input, so the output can be laid out the same way."""

    packed: PackedSequence | None
    batched: bool
    batch_first: bool
    lengths: Tensor | None  # per sequence, caller's order; None when all are full length


def _cudnn_can_flatten(weights: list) -> bool:
    """Plain parameters, all on one CUDA device in one dtype that cuDNN takes, none sharing memory."""
    first = weights[0]
    for w in weights:
        if not isinstance(w, Tensor) or w.dtype != first.dtype or not w.is_cuda:
            return False
        if not torch.backends.cudnn.is_acceptable(w):
            return False
    return len({w.data_ptr() for w in weights}) == len(weights)


class RecurrentBase(nn.Module):
    """What RNN, LSTM and GRU share: parameters, checks, layouts and the call to an engine."""

    # Counts the changes a stream must follow that leave no trace in a weight's version counter:
    # .to()/.double() put new tensors under the same parameters. load_state_dict counts too.
    _weights_epoch = 0
    # Recurrent regularisation, off (also for modules pickled before it existed); see the properties.
    _recurrent_dropout = 0.0
    _zoneout: float | tuple[float, float] = 0.0
    _zoneout_states: tuple[float, ...] = ()  # per state of the kind, () when all are 0

    def __init__(
        self,
        kind: CellKind,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        engine: str = "auto",
        recurrent_dropout: float = 0.0,
        zoneout: float | tuple[float, float] = 0.0,
    ) -> None:
        super().__init__()
        checks.check_sizes(input_size, hidden_size, num_layers, proj_size)
        if proj_size and not kind.projects:
            raise ValueError(f"{type(self).__name__}: the {kind.name} cell has no projection; proj_size must be 0")
        checks.check_flags(bias, batch_first)
        self.kind = kind
        self.mode = kind.name  # torch.nn's name for it, for code that reads it
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = checks.check_dropout(dropout, num_layers)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.engine = engines.check_engine(engine)
        self.recurrent_dropout = recurrent_dropout  # checked by the properties below
        self.zoneout = zoneout
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        self._register_weights(torch.empty, {"device": device, "dtype": dtype})
        self.reset_parameters()
        self.flatten_parameters()  # built on a GPU (device='cuda'): one block for cuDNN

    def _register_weights(self, empty, factory) -> None:
        # Same names, shapes and registration order as torch.nn, so that state_dicts
        # match and reset_parameters draws the same random numbers.
        gates = len(self.kind.rows) * self.hidden_size
        out = self.real_hidden_size
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                layer_input = self.input_size if layer == 0 else out * self.num_directions
                shapes = {"weight_ih": (gates, layer_input), "weight_hh": (gates, out)}
                if self.bias:
                    shapes |= {"bias_ih": (gates,), "bias_hh": (gates,)}
                if not self.kind.recurrent:  # gates that read the input only: no W_hh, no b_hh
                    shapes = {name: shape for name, shape in shapes.items() if not name.endswith("_hh")}
                if self.proj_size:
                    shapes["weight_hr"] = (self.proj_size, self.hidden_size)
                for extra in self.kind.extras:  # after torch's own, so a torch state_dict still lines up
                    shapes[extra.name] = (gates if extra.size == "gates" else self.hidden_size,)
                names = [name + suffix for name in shapes]
                for name, shape in zip(names, shapes.values()):
                    self.register_parameter(name, nn.Parameter(empty(shape, **factory)))
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def real_hidden_size(self) -> int:
        """Size of the hidden state h: proj_size when projecting, else hidden_size."""
        return self.proj_size or self.hidden_size

    @property
    def recurrent_dropout(self) -> float:
        """Recurrent dropout (Gal and Ghahramani 2016), while training: ``W_hh`` reads ``m ⊙ h``.

        ``m`` is one inverted-dropout mask (0 with this probability, else 1/(1-p)) per sequence,
        layer and direction, drawn once per call and the same at every step. 0: off.
        """
        return self._recurrent_dropout

    @recurrent_dropout.setter
    def recurrent_dropout(self, value: float) -> None:
        self._recurrent_dropout = _check_recurrent_dropout(self._name, self.kind, value)

    @property
    def zoneout(self) -> float | tuple[float, float]:
        """Zoneout (Krueger et al. 2017): the probability that a unit keeps its previous value at a step.

        One float for every state, or ``(p_cell, p_hidden)``. Training: ``s = m ⊙ s_prev + (1 - m) ⊙ s_new``
        with a fresh Bernoulli(p) mask ``m`` per step; eval: ``s = p s_prev + (1 - p) s_new``. 0: off.
        """
        return self._zoneout

    @zoneout.setter
    def zoneout(self, value: float | tuple[float, float]) -> None:
        self._zoneout, self._zoneout_states = _check_zoneout(self._name, self.kind, value)

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    @property
    def state_sizes(self) -> tuple[int, ...]:
        """Last dimension of each state tensor, in the kind's order: (h,), or (h, c) for the LSTM."""
        return tuple(self.real_hidden_size if name == "hidden" else self.hidden_size for name in self.kind.states)

    def layer_weights(self, layer: int, direction: int = 0) -> LayerWeights:
        five, extras = self._weight_names(layer, direction)
        weight = self._weight
        return LayerWeights(*(weight(name) for name in five), {extra: weight(name) for extra, name in extras})

    def _weight_names(self, layer: int, direction: int) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
        """The attribute names of one layer and direction's weights: torch's five, then (extra, name) pairs.

        Made once per module: formatting them at every call cost a fifth of gated's Python around a
        short sequence.
        """
        cache = self.__dict__.setdefault("_names", {})
        names = cache.get((layer, direction))
        if names is None:
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            five = tuple(name + suffix for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"))
            names = cache[(layer, direction)] = five, tuple((e.name, e.name + suffix) for e in self.kind.extras)
        return names

    def _weight(self, name: str) -> Tensor | None:
        # Every call reads every weight: a dict lookup is ~20x cheaper than nn.Module's __getattr__.
        # A weight that is not a plain Parameter (weight_norm, a parametrization) is an attribute.
        weight = self._parameters.get(name)
        return weight if weight is not None else getattr(self, name, None)

    def spec(self) -> StackSpec:
        """What an engine runs: the cell kind, sizes and the weights as they are now.

        Kept between calls while nothing it holds has changed: building it is a fifth of gated's
        Python around a call into torch's kernel (18 us of about 100 on the build machine). The key
        is each weight's identity (a spec holds its weights, so no other object can take an id that
        is still in the key) with every setting the spec copies; a weight that is not a plain
        Parameter (``weight_norm``, a parametrization) is computed anew at each call, so a module
        with one never reuses a spec.
        """
        weights = tuple(map(self._parameters.get, self._flat_weights_names))
        if any(w is None for w in weights):
            return self._build_spec()
        key = (tuple(map(id, weights)), self.training, self.dropout, self._recurrent_dropout, self._zoneout_states)
        cached = self.__dict__.get("_spec_cache")
        if cached is None or cached[0] != key:
            cached = self.__dict__["_spec_cache"] = (key, self._build_spec())
        return cached[1]

    def _build_spec(self) -> StackSpec:
        layers = tuple(
            tuple(self.layer_weights(layer, direction) for direction in range(self.num_directions))
            for layer in range(self.num_layers)
        )
        return StackSpec(self.kind, self.hidden_size, layers, float(self.dropout), self.training,
                         self._recurrent_dropout, self._zoneout_states)

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)
        for layer in self.spec().layers:  # a cell's own weights that start at a constant (a norm's gain at 1)
            for weights in layer:
                for extra in self.kind.extras:
                    if extra.init is not None:
                        nn.init.constant_(weights.extras[extra.name], extra.init)

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_spec_cache", None)  # a copy's weights are other objects: it builds its own
        return state

    def _apply(self, fn, recurse=True):
        result = super()._apply(fn, recurse)
        self.__dict__.pop("_spec_cache", None)  # it holds the old weights: .to("cuda") would keep the CPU copies
        self._weights_epoch += 1
        self.flatten_parameters()  # after .cuda() or .to(): one block for cuDNN, as torch.nn does
        return result

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._weights_epoch += 1

    def flatten_parameters(self) -> None:
        """Lay the weights out in one block of GPU memory, which cuDNN reads without copying them.

        As ``torch.nn``'s: only on a GPU with cuDNN, for a cell kind torch's kernels run; the
        parameters stay the same objects with the same values, re-pointed into the block.
        Elsewhere there is nothing to do. Without it, cuDNN copies every weight at every call
        (measured on an H100: a forward at T100 B1 H128 took 0.83 ms instead of 0.21).
        """
        weights = [self._parameters.get(name) for name in self._flat_weights_names]
        if self.kind.native is None or not weights or not _cudnn_can_flatten(weights):
            return
        import torch.backends.cudnn.rnn as cudnn_rnn

        kinds = 4 if self.bias else 2  # weights per layer and direction, in torch's order
        with torch.cuda.device_of(weights[0]), torch.no_grad():
            if torch._use_cudnn_rnn_flatten_weight():
                torch._cudnn_rnn_flatten_weight(
                    weights, kinds + (1 if self.proj_size else 0), self.input_size,
                    cudnn_rnn.get_cudnn_mode(self.kind.name), self.hidden_size, self.proj_size,
                    self.num_layers, self.batch_first, self.bidirectional,
                )

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        if self._recurrent_dropout:
            s += f", recurrent_dropout={self._recurrent_dropout}"
        if self._zoneout_states:
            s += f", zoneout={self._zoneout}"
        if self.engine != "auto":
            s += f", engine={self.engine!r}"
        return s

    @property
    def _name(self) -> str:
        return type(self).__name__

    # -- running ---------------------------------------------------------------------------

    def forward(self, input, hx=None):
        output, state, _, _ = self._run(input, hx, record=False)
        return output, state

    def trace(self, input, hx=None) -> Trace:
        """Run like ``forward`` and keep every gate and state at every step (see ``gated.trace``)."""
        output, state, steps, mask = self._run(input, hx, record=True)
        return Trace(output, state, steps, mask, self.num_layers, self.num_directions, self.kind)

    def __prepare_scriptable__(self):
        """What ``torch.jit.script`` compiles in place of this module: its torch.nn twin (see :func:`scriptable_twin`)."""
        return scriptable_twin(self)

    def stream(self, hx=None):
        """Step-by-step inference, one input at a time, carrying the state (see ``gated.engines.stream``)."""
        from .engines.stream import Stream

        return Stream(self, hx)

    def _run(self, input, hx, record: bool, inference: bool = False):
        """(output, state, recorded steps, step mask); ``inference``: as in eval mode, whatever the module's."""
        x, layout = self._time_major(input)
        self._check_hx_rank(hx, layout)
        self._check_input(x)
        state = self._initial_state(hx, x, layout)
        spec = self.spec()
        if inference and spec.training:  # a stream: no dropout, zoneout's expectation
            spec = dataclasses.replace(spec, training=False)
        run = engines.select(self.engine, spec, x, state, record, owner=self._name)
        result = run(spec, x, layout.lengths, state, record)
        mask = None if layout.lengths is None else step_mask(layout.lengths, x.size(0))
        return self._restore(result.output, layout), self._restore_state(result.state, layout), result.steps, mask

    def _time_major(self, input) -> tuple[Tensor, _Layout]:
        """(T, B, I) whatever the caller gave, plus what is needed to give it back."""
        if isinstance(input, PackedSequence):
            if input.data.dim() != 2:
                raise RuntimeError(
                    f"{self._name}: a PackedSequence's data must have 2 dimensions "
                    f"(total steps, input_size), got {input.data.dim()}"
                )
            padded, lengths = pad_packed_sequence(input)  # caller's batch order
            lengths = lengths.to(padded.device)
            full = bool((lengths == lengths.max()).all())
            return padded, _Layout(input, True, False, None if full else lengths)
        input = checks.check_tensor("input", input, self._name)
        if input.dim() not in (2, 3):
            raise ValueError(
                f"{self._name}: Expected input to be 2D (seq_len, input_size) or 3D "
                f"({'batch, seq_len' if self.batch_first else 'seq_len, batch'}, input_size), "
                f"got {input.dim()}D instead, of shape {list(input.shape)}"
            )
        batched = input.dim() == 3
        if not batched:
            x = input.unsqueeze(1)
        else:
            x = input.transpose(0, 1) if self.batch_first else input
        return x, _Layout(None, batched, self.batch_first, None)

    def _check_input(self, x: Tensor) -> None:
        checks.check_dtype(self._name, "input", x, self.weight_ih_l0)
        if x.size(-1) != self.input_size:
            raise RuntimeError(
                f"{self._name}: input.size(-1) must be equal to input_size. "
                f"Expected {self.input_size}, got {x.size(-1)}"
            )
        if x.size(0) == 0:
            raise RuntimeError(
                f"{self._name}: Expected sequence length to be larger than 0 in RNN: the input has no "
                "time steps. Pass at least one step, or skip empty sequences before the call"
            )

    def _split_hx(self, hx) -> tuple[Tensor, ...]:
        """The user's hx as a tuple of tensors, one per state."""
        return (checks.check_tensor("hx", hx, self._name),)

    def _check_hx_rank(self, hx, layout: _Layout) -> None:
        if hx is None:
            return
        want = 3 if layout.batched else 2
        for h in self._split_hx(hx):
            if h.dim() != want:
                kind = "batched 3-D" if layout.batched else "unbatched 2-D"
                raise RuntimeError(
                    f"{self._name}: For {kind} input, hx should also be {want}-D "
                    f"but got {h.dim()}-D tensor"
                )

    def _initial_state(self, hx, x: Tensor, layout: _Layout) -> tuple[Tensor, ...]:
        rows, batch = self.num_layers * self.num_directions, x.size(1)
        if hx is None:
            return tuple(x.new_zeros(rows, batch, size) for size in self.state_sizes)
        state = self._split_hx(hx)
        if not layout.batched:
            state = tuple(s.unsqueeze(1) for s in state)
        names = ["hx"] if len(state) == 1 else [f"hidden[{i}]" for i in range(len(state))]
        for name, s, size in zip(names, state, self.state_sizes):
            checks.check_state_shape(self._name, name, s, (rows, batch, size))
            checks.check_dtype(self._name, name, s, self.weight_ih_l0, error=RuntimeError)
        return state

    def _restore(self, output: Tensor, layout: _Layout):
        if layout.packed is not None:
            return _repack(output, layout.packed)
        if not layout.batched:
            return output.squeeze(1)
        return output.transpose(0, 1) if layout.batch_first else output

    def _restore_state(self, state: tuple[Tensor, ...], layout: _Layout):
        if not layout.batched:
            state = tuple(s.squeeze(1) for s in state)
        return state[0] if len(state) == 1 else state


def scriptable_twin(module: nn.Module) -> nn.Module:
    """The torch.nn module that computes what ``module`` does, holding the very same parameters.

    ``torch.jit.script`` cannot compile gated's forward (Python dataclasses, an engine chosen
    per call, numba), but torch.nn's forward is TorchScript and runs the kernel that
    ``engine="native"`` runs. So gated's modules hand torch.jit.script this twin through
    torch's ``__prepare_scriptable__`` protocol: the scripted module computes the same numbers
    and trains the same parameter objects, without gated's extras (``trace()``, streams).
    """
    name = type(module).__name__
    engine = getattr(module, "engine", "auto")
    if engine not in ("auto", "native"):
        raise RuntimeError(
            f"{name}(engine={engine!r}) cannot be scripted: torch.jit.script compiles torch.nn's "
            f"forward, which runs torch's own kernel (engine='native'). Script a module with "
            f"engine='auto' or 'native', or use torch.compile, torch.export or torch.jit.trace"
        )
    if getattr(module, "_recurrent_dropout", 0) or getattr(module, "_zoneout_states", ()):
        raise RuntimeError(
            f"{name}: torch.nn's twin, which torch.jit.script compiles, has no recurrent dropout or zoneout; "
            "script a module without them, or use torch.compile or torch.export"
        )
    if module.kind.torch_twins is None:
        raise RuntimeError(
            f"{name}: the {module.kind.name} cell has no torch.nn counterpart, so torch.jit.script "
            "cannot compile it; use torch.compile or torch.export"
        )
    is_cell = not isinstance(module, RecurrentBase)
    cls = module.kind.torch_twins[is_cell]
    with torch.device("meta"):  # placeholders only: the real parameters replace them below
        twin = cls(**_twin_arguments(module, cls))
    for param_name, param in module.named_parameters(recurse=False):
        setattr(twin, param_name, param)
    if not is_cell:
        twin._init_flat_weights()  # torch.nn's list of weights the kernel takes, now the shared ones
    return twin.train(module.training)


def _twin_arguments(module: nn.Module, cls) -> dict:
    args = {"input_size": module.input_size, "hidden_size": module.hidden_size, "bias": module.bias}
    if isinstance(module, RecurrentBase):
        args |= {"num_layers": module.num_layers, "batch_first": module.batch_first,
                 "dropout": module.dropout, "bidirectional": module.bidirectional}
    if cls is nn.LSTM:
        args["proj_size"] = module.proj_size
    if cls in (nn.RNN, nn.RNNCell):
        args["nonlinearity"] = module.nonlinearity
    return args


def _repack(output: Tensor, like: PackedSequence) -> PackedSequence:
    """Pack time-major ``output`` (caller's batch order) exactly the way ``like`` is packed."""
    lengths = _lengths_of(like)
    if like.sorted_indices is not None:
        output = output.index_select(1, like.sorted_indices)
        lengths = lengths.index_select(0, like.sorted_indices.cpu())
    data = pack_padded_sequence(output, lengths).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


def _lengths_of(packed: PackedSequence) -> Tensor:
    """Lengths in the caller's order, from the batch sizes alone (no padding needed)."""
    sizes = packed.batch_sizes
    steps = torch.arange(sizes[0].item()).unsqueeze(0) < sizes.unsqueeze(1)  # (T, B sorted)
    lengths = steps.sum(0)
    if packed.unsorted_indices is not None:
        lengths = lengths.index_select(0, packed.unsorted_indices.cpu())
    return lengths


class RNN(RecurrentBase):
    """Elman RNN, ``h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)``; drop-in for ``torch.nn.RNN``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        engine: str = "auto",
        recurrent_dropout: float = 0.0,
        zoneout: float | tuple[float, float] = 0.0,
        **unsupported,
    ) -> None:
        _reject_proj_size(unsupported)
        self.nonlinearity = checks.check_nonlinearity(nonlinearity)
        kind = kinds.RNN_TANH if nonlinearity == "tanh" else kinds.RNN_RELU
        super().__init__(
            kind, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
            0, device, dtype, engine, recurrent_dropout=recurrent_dropout, zoneout=zoneout,
        )

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (f", nonlinearity={self.nonlinearity!r}" if self.nonlinearity != "tanh" else "")


class LSTM(RecurrentBase):
    """Long short-term memory; drop-in for ``torch.nn.LSTM``.

    ``forget_bias``: when set, the forget gate's bias starts at this value
    (``bias_ih`` forget rows = forget_bias, ``bias_hh`` forget rows = 0), so the
    cell keeps its memory at the start of training; Jozefowicz et al. (2015)
    recommend 1.0. The default, None, keeps torch's initialisation.
    """

    cell_kind = kinds.LSTM

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        *,
        forget_bias: float | None = None,
        engine: str = "auto",
        recurrent_dropout: float = 0.0,
        zoneout: float | tuple[float, float] = 0.0,
    ) -> None:
        self.forget_bias = _check_forget_bias(forget_bias, bias)
        super().__init__(
            self.cell_kind, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
            proj_size, device, dtype, engine, recurrent_dropout=recurrent_dropout, zoneout=zoneout,
        )

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.forget_bias is not None:
            for layer in range(self.num_layers):
                for direction in range(self.num_directions):
                    w = self.layer_weights(layer, direction)
                    _set_forget_bias(w.b_ih, w.b_hh, self.hidden_size, self.forget_bias)

    def _split_hx(self, hx) -> tuple[Tensor, ...]:
        if not isinstance(hx, (tuple, list)):
            raise TypeError(
                f"{self._name}: hx must be a tuple (h_0, c_0) of hidden and cell state, got {type(hx).__name__}"
            )
        if len(hx) != 2:
            raise RuntimeError(f"{self._name}: lstm expects two hidden states (h_0, c_0), got {len(hx)}")
        return tuple(checks.check_tensor(f"hx[{i}]", h, self._name) for i, h in enumerate(hx))


class PeepholeLSTM(LSTM):
    """An LSTM whose gates also see the cell state (Gers, Schraudolph and Schmidhuber 2002).

    ``i = σ(W_i x + U_i h + w_ci ⊙ c_prev + b_i)``, ``f`` likewise with ``w_cf``,
    ``o = σ(W_o x + U_o h + w_co ⊙ c + b_o)`` with the new cell state; the rest is the
    LSTM (``cells.peephole_lstm_cell``). Arguments as ``gated.LSTM`` without ``proj_size``.
    Parameters: ``torch.nn.LSTM``'s, under the same names (a trained LSTM's state_dict loads
    with ``strict=False``), plus ``weight_ci_l{k}``, ``weight_cf_l{k}``, ``weight_co_l{k}``,
    one value per unit. Its fused kernels are in ``engines/fused_peephole.py``.
    """

    cell_kind = kinds.PEEPHOLE_LSTM


class _WithoutProjection(RecurrentBase):
    """``torch.nn.GRU``'s arguments: those of ``torch.nn.LSTM`` but ``proj_size``; the class names its cell kind."""

    cell_kind: CellKind

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        engine: str = "auto",
        recurrent_dropout: float = 0.0,
        zoneout: float | tuple[float, float] = 0.0,
        **unsupported,
    ) -> None:
        _reject_proj_size(unsupported)
        super().__init__(
            self.cell_kind, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
            0, device, dtype, engine, recurrent_dropout=recurrent_dropout, zoneout=zoneout,
        )


class GRU(_WithoutProjection):
    """Gated recurrent unit; drop-in for ``torch.nn.GRU``."""

    cell_kind = kinds.GRU


def _reject_proj_size(unsupported: dict) -> None:
    if "proj_size" in unsupported:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
    if unsupported:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(unsupported)}")


def _check_forget_bias(forget_bias, bias: bool) -> float | None:
    if forget_bias is None:
        return None
    if not bias:
        raise ValueError("forget_bias needs bias=True: without biases there is no forget bias to set")
    if not isinstance(forget_bias, (int, float)) or isinstance(forget_bias, bool) or not math.isfinite(forget_bias):
        raise ValueError(f"forget_bias must be a finite number or None, got {forget_bias!r}")
    return float(forget_bias)


def check_regularization(module_class: type, recurrent_dropout, zoneout) -> None:
    """Raise the ValueError that ``module_class(..., recurrent_dropout=, zoneout=)`` would, without building it."""
    kind = getattr(module_class, "cell_kind", kinds.RNN_TANH)  # RNN picks tanh or relu: alike here
    _check_recurrent_dropout(module_class.__name__, kind, recurrent_dropout)
    _check_zoneout(module_class.__name__, kind, zoneout)


def _probability(value) -> float | None:
    """``value`` as a float if it is a number in [0, 1), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        return None  # NaN fails the comparison too
    return float(value)


def _check_recurrent_dropout(owner: str, kind: CellKind, value) -> float:
    p = _probability(value)
    if p is None:
        raise ValueError(f"{owner}: recurrent_dropout must be a probability in [0, 1) (the chance of dropping "
                         f"each unit of h where W_hh reads it; 0 turns it off), got {value!r}")
    if p and not kind.recurrent:
        raise ValueError(f"{owner}: recurrent_dropout drops h where W_hh reads it, and the {kind.name} cell has "
                         "no W_hh: its gates read the input only, so nothing is fed back through recurrent "
                         "weights. Leave recurrent_dropout at 0 (dropout between layers still works)")
    if p and not _takes_recurrent(kind.step):
        raise ValueError(f"{owner}: the {kind.name} cell's step function takes no keyword 'recurrent' (the h "
                         "that W_hh reads), so recurrent dropout cannot reach it; give it one, as the cells "
                         "of gated.cells have, or leave recurrent_dropout at 0")
    return p


def _takes_recurrent(step) -> bool:
    """Does a cell kind's step take ``recurrent=``? gated's do; a cell written before it may not."""
    parameters = inspect.signature(step).parameters.values()
    return any(p.name == "recurrent" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _check_zoneout(owner: str, kind: CellKind, value) -> tuple[float | tuple[float, float], tuple[float, ...]]:
    """(the setting as stored, each state's probability in the kind's order, () when all are 0)."""
    pair = isinstance(value, (tuple, list))
    if pair and len(value) != 2:
        raise ValueError(f"{owner}: zoneout takes one probability for every state or a pair (p_cell, p_hidden), "
                         f"got {len(value)} values: {value!r}")
    given = tuple(value) if pair else (value, value)
    p_cell, p_hidden = (_probability(v) for v in given)
    if p_cell is None or p_hidden is None:
        raise ValueError(f"{owner}: zoneout's probabilities must be in [0, 1) (the chance that a unit keeps its "
                         f"previous value; 0 turns it off), got {value!r}")
    if pair and p_cell and "cell" not in kind.states:
        raise ValueError(f"{owner}: the {kind.name} cell has no cell state, so zoneout's p_cell must be 0; "
                         f"pass one float for its hidden state instead, e.g. zoneout={p_cell}")
    if (p_cell or p_hidden) and not kind.recurrent:
        raise ValueError(f"{owner}: zoneout is for cells that feed their state back through W_hh, and the "
                         f"{kind.name} cell has none: its gates read the input only, and its sequence runs as "
                         "one parallel scan. Leave zoneout at 0 (dropout between layers still works)")
    by_state = {"hidden": p_hidden, "cell": p_cell}
    states = tuple(by_state.get(name, 0.0) for name in kind.states)
    return ((p_cell, p_hidden) if pair else p_hidden), (states if any(states) else ())


def _set_forget_bias(b_ih: Tensor, b_hh: Tensor, hidden_size: int, value: float) -> None:
    forget_rows = slice(hidden_size, 2 * hidden_size)  # LSTM rows are i, f, g, o
    with torch.no_grad():
        b_ih[forget_rows] = value
        b_hh[forget_rows] = 0.0


class LayerNormLSTM(LSTM):
    """An LSTM with layer normalisation (Ba, Kiros and Hinton 2016).

    ``i, f, g, o = LN_x(W_ih x) + LN_h(W_hh h) + b``, ``c = σ(f) ⊙ c_prev + σ(i) ⊙ tanh(g)``,
    ``h = σ(o) ⊙ tanh(LN_c(c))`` (``cells.layer_norm_lstm_cell``); the cell state is carried
    un-normalised. Arguments as ``gated.LSTM`` without ``proj_size``. Parameters:
    ``torch.nn.LSTM``'s under the same names (a trained LSTM's state_dict loads with
    ``strict=False``; ``b = bias_ih + bias_hh`` is added after the norms), plus each norm's gain
    and bias: ``ln_weight_ih_l{k}``, ``ln_bias_ih_l{k}``, ``ln_weight_hh_l{k}``,
    ``ln_bias_hh_l{k}`` (one per gate row), ``ln_weight_c_l{k}``, ``ln_bias_c_l{k}`` (one per unit).
    A trace adds ``cell_normalized``. Fused kernels: ``engines/fused_layer_norm.py``.
    """

    cell_kind = kinds.LAYER_NORM_LSTM


class LayerNormGRU(GRU):
    """A GRU with layer normalisation, as haste defines it (``cells.layer_norm_gru_cell``).

    ``r = σ(LN_x(W_ih x)_r + b_ir + LN_h(W_hh h)_r + b_hr)``, ``z`` likewise,
    ``n = tanh(LN_x(W_ih x)_n + b_in + r ⊙ (LN_h(W_hh h)_n + b_hn))``, ``h = (1 - z) ⊙ n + z ⊙ h_prev``.
    Arguments as ``gated.GRU``. Parameters: ``torch.nn.GRU``'s under the same names (a trained
    GRU's state_dict loads with ``strict=False``), plus the norms' gains ``ln_weight_ih_l{k}`` and
    ``ln_weight_hh_l{k}``, one per gate row (haste's norms have no bias of their own: torch's
    biases follow them). Fused kernels: ``engines/fused_layer_norm.py``.
    """

    cell_kind = kinds.LAYER_NORM_GRU


class MinGRU(_WithoutProjection):
    """minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gate reads the input only.

    ``z = σ(W_z x + b_z)``, ``h̃ = W_h x + b_h``, ``h = (1 - z) ⊙ h_prev + z ⊙ h̃``
    (``cells.min_gru_cell``; z weighs the new value, as in the paper). The candidate is
    linear, as in the paper's main equations: the paper's positive ``g(h̃)`` serves its
    log-space scan, and the scan here (``engines/scan.py``) works in the linear domain, in
    chunks, within 1e-6 of the step-by-step loop in float32. On the reference engine (and so
    on a GPU) a whole sequence runs as that parallel scan; the fused engine (the CPU's,
    ``engines/fused_min.py``) makes one pass over time instead, which on a CPU costs less than
    the scan's log2(chunk) rounds; ``stream()`` runs step by step. Arguments as ``gated.GRU``.
    Parameters per layer: ``weight_ih_l{k}`` (rows: update, candidate) and ``bias_ih_l{k}``;
    there is no ``weight_hh``.
    """

    cell_kind = kinds.MIN_GRU


class MinLSTM(_WithoutProjection):
    """minLSTM (Feng et al. 2024): forget and input gates of the input only, normalised to add to 1.

    ``f = σ(W_f x + b_f)``, ``i = σ(W_i x + b_i)``, ``h̃ = W_h x + b_h``,
    ``h = f / (f + i) ⊙ h_prev + i / (f + i) ⊙ h̃`` (``cells.min_lstm_cell``; a trace also
    records the two shares as ``forget_share`` and ``input_share``). No cell state: the state
    is h alone, as for ``MinGRU``. Linear candidate and parallel scan as in ``MinGRU``.
    Arguments as ``gated.GRU``. Parameters per layer: ``weight_ih_l{k}`` (rows: forget,
    input, candidate) and ``bias_ih_l{k}``. Engines as ``MinGRU``.
    """

    cell_kind = kinds.MIN_LSTM
