"""Streaming: feed a recurrent module one input at a time, for speech, sensors, live text.

    stream = lstm.eval().stream()
    for x_t in source:            # x_t: (input_size,) or (batch, input_size)
        y_t = stream.step(x_t)    # the top layer's hidden state, (hidden,) or (batch, hidden)
    stream.state                  # (h, c) shaped like forward's, ready to hand to lstm(...)
    stream.reset()                # forget everything: zero state (or a given hx)

Feeding steps one by one gives the same outputs and states as running the
whole sequence at once. A stream is for inference: no gradients, no dropout.
It keeps its state and a copy of the weights in numpy arrays, so each step is
one call into a numba kernel per layer (the ``stream_step`` of the cell kind's
fused kernels, ``fused_cells.py``) with no torch dispatch in between; that is
what makes a step take microseconds. For the LSTM, GRU and RNN the kernels read
the step's input and write its output by address (``data_ptr()``), so a step
makes no numpy array at all. The weights are copied at the first step.
A stream follows its module: after ``load_state_dict``, ``.double()``, ``.to()``
or an optimizer step (anything that changes the first weight, ``weight_ih_l0``,
in place or moves the module), the next step reads the weights again and
carries its state on, in the new dtype. A change to the other weights alone
is not seen: call ``reset()`` after one.

Bidirectional modules cannot stream (their backward direction needs the end of
the sequence first). Without numba, for dtypes other than float32/float64, for
a cell kind without fused kernels, or for a module with zoneout (which the
kernels do not do), the stream runs the module one step at a time, as in eval
mode whatever the module's mode: no dropout, and zoneout's expectation
``s = p s_prev + (1 - p) s_new``. Recurrent dropout acts only in training, so
it changes nothing here.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor

from .. import checks
from . import fused


class Stream:
    """A recurrent module run one step at a time, carrying its state between calls."""

    def __init__(self, module, hx=None) -> None:
        if module.bidirectional:
            raise ValueError(
                f"{type(module).__name__}: a bidirectional module cannot stream: its backward "
                "direction needs the whole sequence. Stream a unidirectional module instead"
            )
        self.module = module
        self._fast = _fast_path_possible(module)
        self._state = None
        self.reset(hx)

    def reset(self, hx=None) -> None:
        """Start a new sequence: zero state, or ``hx`` shaped as for the module's forward."""
        self._batched: bool | None = None
        self._shape, self._torch_dtype = None, None  # of the steps the hot path takes
        self._state: list[tuple[np.ndarray, ...]] | None = None
        self._hx = hx
        self._note_weights()

    def step(self, x_t: Tensor) -> Tensor:
        """One time step: ``x_t`` (input_size,) or (batch, input_size) -> the top layer's new h."""
        # Two integer compares (well under a microsecond): has the module changed its weights?
        if self.module._weights_epoch != self._epoch or self._watched._version != self._version:
            self._follow_weights()
        if x_t.shape == self._shape and x_t.dtype == self._torch_dtype and x_t.is_cpu and x_t.is_contiguous():
            # The hot path, checked once on the first step: addresses in, one kernel per layer, no numpy.
            if self._by_address:
                y = torch.empty(*self._out_shape, dtype=x_t.dtype)  # ints, not a tuple: a microsecond less
                self._run_layers(x_t.data_ptr(), y.data_ptr())
                return y
            x = (x_t.detach() if x_t.requires_grad else x_t).numpy()  # detach alone costs a microsecond
            if not self._batched:
                x = x.reshape(1, -1)
            for step, state in zip(self._steps, self._state):
                x = step(x, *state)
            return torch.from_numpy(x.copy() if self._batched else x[0].copy())
        return self._checked_step(x_t)

    def _run_layers(self, x_addr: int, out_addr: int) -> None:
        """Each layer's step on the one below's new h, read in place; the top one writes to ``out_addr``."""
        if len(self._steps) == 1:
            self._steps[0](x_addr, out_addr, *self._state[0])
            return
        for step, state, below in zip(self._steps, self._state, self._inputs):
            step(x_addr if below is None else below, out_addr if state is self._state[-1] else 0, *state)

    def _checked_step(self, x_t: Tensor) -> Tensor:
        checks.check_tensor("input", x_t, f"{type(self.module).__name__}.stream")
        if x_t.dim() not in (1, 2):
            raise ValueError(
                f"{type(self.module).__name__}.stream: a step takes (input_size,) or (batch, input_size), "
                f"got shape {list(x_t.shape)}"
            )
        # As torch.nn does: no silent casts (an int64 or bool step would otherwise be converted).
        checks.check_dtype(f"{type(self.module).__name__}.stream", "input", x_t, self.module.weight_ih_l0)
        batched = x_t.dim() == 2
        if self._batched is None:
            self._start(x_t, batched)
        elif batched != self._batched:
            raise ValueError("a stream's steps must all be batched or all unbatched; call reset() to switch")
        if not self._fast:
            return self._slow_step(x_t)
        x = x_t.detach().numpy() if batched else x_t.detach().numpy()[None]
        if x.shape[0] != self._state[0][0].shape[0] or x.shape[1] != self.module.input_size:
            raise ValueError(
                f"{type(self.module).__name__}.stream: expected steps of shape "
                f"({self._state[0][0].shape[0]}, {self.module.input_size}), got {list(x_t.shape)}"
            )
        self._shape, self._torch_dtype = x_t.shape, x_t.dtype  # from now on, the hot path
        x = np.ascontiguousarray(x, dtype=self._dtype)
        if self._by_address:
            y = np.empty(self._state[-1][0].shape, self._dtype)
            self._run_layers(x.ctypes.data, y.ctypes.data)
            y = torch.from_numpy(y)
            return y if batched else y[0]
        for step, state in zip(self._steps, self._state):
            x = step(x, *state)
        y = torch.from_numpy(x.copy())
        return y if batched else y[0]

    @property
    def state(self):
        """The current state, shaped like the second value forward returns."""
        if self._state is None:
            raise RuntimeError("the stream has not taken a step yet")
        if not self._fast:
            return self._slow_state
        parts = [torch.from_numpy(np.stack([s[i] for s in self._state])) for i in range(len(self._state[0]))]
        if not self._batched:
            parts = [p[:, 0] for p in parts]
        return parts[0] if len(parts) == 1 else tuple(parts)

    # -- internals ------------------------------------------------------------------------------

    def _note_weights(self) -> None:
        """Remember which weights the stream reads, to see later whether the module changed them."""
        self._epoch = self.module._weights_epoch  # bumped by .to()/.double() and load_state_dict
        self._watched = self.module.weight_ih_l0  # its version counter: in-place changes, optimizer steps
        self._version = self._watched._version

    def _follow_weights(self) -> None:
        """The module's weights changed: read them again at the next step, carrying the state on."""
        weight = self.module.weight_ih_l0
        state = self.state if self._state is not None else None  # read the way it was stored
        self._fast = _fast_path_possible(self.module)
        if state is None:  # not started: the first step reads the weights anyway
            self._note_weights()
            return
        state = tuple(s.to(weight) for s in state) if isinstance(state, tuple) else state.to(weight)
        self.reset(state)

    def _start(self, x_t: Tensor, batched: bool) -> None:
        module = self.module
        self._batched = batched
        self._dtype = np.float64 if module.weight_ih_l0.dtype == torch.float64 else np.float32
        batch = x_t.size(0) if batched else 1
        if self._hx is None:
            states = [x_t.new_zeros(module.num_layers, batch, size) for size in module.state_sizes]
        else:
            states = list(self._hx) if isinstance(self._hx, (tuple, list)) else [self._hx]
            states = [s if batched else s.unsqueeze(1) for s in states]
            for s, size in zip(states, module.state_sizes):
                if tuple(s.shape) != (module.num_layers, batch, size):
                    raise ValueError(f"hx has shape {list(s.shape)}, expected {[module.num_layers, batch, size]}")
        if not self._fast:
            self._slow_state = tuple(states) if len(states) == 2 else states[0]
            if not batched:
                self._slow_state = _squeeze_state(self._slow_state)
            self._state = []
            return
        self._state = [
            tuple(np.array(s[layer].detach().numpy(), dtype=self._dtype, order="C") for s in states)
            for layer in range(module.num_layers)
        ]
        kernels = module.kind.kernels
        with torch.no_grad():  # each step function keeps its own copy: training later cannot race a step
            weights = [fused.kernel_weights(kernels, layer[0]) for layer in module.spec().layers]
            self._steps = [kernels.stream_step(w, batch, self._dtype) for w in weights]
        # LSTM, GRU, RNN: steps take the input's and output's addresses (kernels.py says why)
        self._by_address = getattr(kernels, "stream_by_address", False)
        # Where each layer reads its input: the step's own (None), else the h of the layer below, whose
        # array stays where it is for the stream's life (numpy's .ctypes costs microseconds: asked once).
        self._inputs = [None] + [state[0].ctypes.data for state in self._state[:-1]]
        top = self._state[-1][0].shape
        self._out_shape = top if batched else top[1:]

    def _slow_step(self, x_t: Tensor) -> Tensor:
        """Without the fast path: the module itself on a sequence of one step, computed as in eval mode."""
        time_dim = 1 if self.module.batch_first and x_t.dim() == 2 else 0  # a batch of steps: (B, 1, I)
        y, self._slow_state, _, _ = self.module._run(x_t.unsqueeze(time_dim), self._slow_state, record=False,
                                                     inference=True)
        self._state = [()]
        return y.select(time_dim, 0)


def _squeeze_state(state):
    return tuple(s.squeeze(1) for s in state) if isinstance(state, tuple) else state.squeeze(1)


def _fast_path_possible(module) -> bool:
    weight = module.weight_ih_l0
    inference = dataclasses.replace(module.spec(), training=False)  # what a stream computes
    return (
        module.kind.kernels is not None
        and inference.regularization is None  # zoneout: the kernels have none
        and fused.available() is None
        and weight.device.type == "cpu"
        and weight.dtype in fused.DTYPES
    )
