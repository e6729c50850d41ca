"""The baseline a torch user writes today: TorchScript cells and a scripted loop over time.

``torch.nn`` has no layer-normalised, peephole, zoneout, recurrent-dropout or
minimal cells, so a user writes the cell as a module, compiles it with
``torch.jit.script`` and loops over the time steps in a scripted layer, as
PyTorch's own ``benchmarks/fastrnns/custom_lstms.py`` shows. This file is that
baseline, written here (not copied) for the cells of gated's issue 11:

    LayerNormLSTM, LayerNormGRU, PeepholeLSTM, LSTM + zoneout, LSTM + recurrent
    dropout, MinGRU, MinLSTM

Like custom_lstms.py, each cell computes both matrix products at every step
(the input's too): that is the idiom, a cell called as ``cell(x_t, state)``.
Random masks are drawn outside the loop, all steps at once, since a user who
cares for speed would; then the scripted loop only reads them.

Every baseline is built from a gated module and copies its parameters, so the
two compute the same numbers (``tests/test_scripted_baseline.py`` checks it)
and a timing of one against the other compares like with like:

    import gated, scripted_cells
    ours = gated.LayerNormLSTM(64, 128)
    theirs = scripted_cells.layer_norm_lstm(ours)      # same weights, scripted loop
    output, (h, c) = theirs(torch.randn(100, 1, 64))

``gated bench --variants`` loads this file from the repository checkout and
times it against gated (``python -m gated.bench --variants``). Only one layer,
one direction, time-major input and zero initial states: what the benchmark
needs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EPS = 1e-5  # torch.nn.LayerNorm's, and the one gated's layer-normalised cells use

LSTMState = tuple[Tensor, Tensor]


def _copy(module: nn.Module, name: str) -> nn.Parameter:
    """A parameter of the gated module's first layer, copied so the baseline owns its own."""
    return nn.Parameter(getattr(module, name + "_l0").detach().clone())


def _check_single_layer(module: nn.Module) -> None:
    # The baseline covers what the benchmark times; anything more would be untested code.
    if module.num_layers != 1 or module.bidirectional or module.batch_first or not module.bias:
        raise ValueError("the scripted baseline covers one layer, one direction, time-major input, with biases")


# -- cells: one step each, (x_t, state) -> (output, state) --------------------------------------


class LayerNormLSTMCell(nn.Module):
    """gates = LN_x(W_ih x) + b_ih + LN_h(W_hh h) + b_hh; c = σ(f) c + σ(i) tanh(g); h = σ(o) tanh(LN_c(c))."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "ln_weight_ih", "ln_bias_ih",
                     "ln_weight_hh", "ln_bias_hh", "ln_weight_c", "ln_bias_c"):
            setattr(self, name, _copy(module, name))
        self.gates = [4 * module.hidden_size]
        self.units = [module.hidden_size]
        self.eps = EPS  # TorchScript reads module attributes, not global floats

    def forward(self, x: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        h, c = state
        x_share = F.layer_norm(F.linear(x, self.weight_ih), self.gates, self.ln_weight_ih, self.ln_bias_ih,
                               self.eps)
        h_share = F.layer_norm(F.linear(h, self.weight_hh), self.gates, self.ln_weight_hh, self.ln_bias_hh,
                               self.eps)
        i, f, g, o = (x_share + self.bias_ih + h_share + self.bias_hh).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(F.layer_norm(c, self.units, self.ln_weight_c, self.ln_bias_c, self.eps))
        return h, (h, c)


class LayerNormGRUCell(nn.Module):
    """haste's layer-normalised GRU: both shares normalised (gain only), torch's biases after, r on the h share."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "ln_weight_ih", "ln_weight_hh"):
            setattr(self, name, _copy(module, name))
        self.gates = [3 * module.hidden_size]
        self.eps = EPS

    def forward(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        x_r, x_z, x_n = (F.layer_norm(F.linear(x, self.weight_ih), self.gates, self.ln_weight_ih, None, self.eps)
                         + self.bias_ih).chunk(3, 1)
        h_r, h_z, h_n = (F.layer_norm(F.linear(h, self.weight_hh), self.gates, self.ln_weight_hh, None, self.eps)
                         + self.bias_hh).chunk(3, 1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        h = (1 - z) * n + z * h
        return h, h


class PeepholeLSTMCell(nn.Module):
    """i, f see c_prev and o sees the new c, each through one weight per unit."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ci", "weight_cf", "weight_co"):
            setattr(self, name, _copy(module, name))

    def forward(self, x: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        h, c = state
        gates = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        i, f, g, o = gates.chunk(4, 1)
        i = torch.sigmoid(i + self.weight_ci * c)
        f = torch.sigmoid(f + self.weight_cf * c)
        c = f * c + i * torch.tanh(g)
        h = torch.sigmoid(o + self.weight_co * c) * torch.tanh(c)
        return h, (h, c)


class ZoneoutLSTMCell(nn.Module):
    """A plain LSTM step, then zoneout: where ``keep_*`` is 1 a unit keeps its previous value.

    In training the loop gives 0/1 masks drawn per step; in eval their probabilities,
    so the step computes the expectation. As Krueger et al. (2017), h is computed
    from the new cell state before that is zoned out.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            setattr(self, name, _copy(module, name))

    def forward(self, x: Tensor, state: LSTMState, keep_cell: Tensor,
                keep_hidden: Tensor) -> tuple[Tensor, LSTMState]:
        h, c = state
        gates = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        i, f, g, o = gates.chunk(4, 1)
        new_c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        new_h = torch.sigmoid(o) * torch.tanh(new_c)
        c = keep_cell * c + (1 - keep_cell) * new_c
        h = keep_hidden * h + (1 - keep_hidden) * new_h
        return h, (h, c)


class RecurrentDropoutLSTMCell(nn.Module):
    """A plain LSTM step whose ``W_hh`` reads ``h * drop``: the loop's one mask per sequence, scaled by 1/(1-p)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            setattr(self, name, _copy(module, name))

    def forward(self, x: Tensor, state: LSTMState, drop: Tensor) -> tuple[Tensor, LSTMState]:
        h, c = state
        gates = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h * drop, self.weight_hh, self.bias_hh)
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class MinGRUCell(nn.Module):
    """minGRU: z = σ(W_z x + b_z), h̃ = W_h x + b_h, h = (1 - z) h + z h̃."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.weight_ih, self.bias_ih = _copy(module, "weight_ih"), _copy(module, "bias_ih")

    def forward(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        z, candidate = F.linear(x, self.weight_ih, self.bias_ih).chunk(2, 1)
        z = torch.sigmoid(z)
        h = (1 - z) * h + z * candidate
        return h, h


class MinLSTMCell(nn.Module):
    """minLSTM: f, i of the input only, shares f/(f+i) and i/(f+i), h = f' h + i' h̃."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.weight_ih, self.bias_ih = _copy(module, "weight_ih"), _copy(module, "bias_ih")

    def forward(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        f, i, candidate = F.linear(x, self.weight_ih, self.bias_ih).chunk(3, 1)
        f, i = torch.sigmoid(f), torch.sigmoid(i)
        total = f + i
        h = (f / total) * h + (i / total) * candidate
        return h, h


# -- loops over time, scripted together with their cell --------------------------------------------
# TorchScript wants one static state type per loop, hence one loop for (h, c) and one for h.


class LSTMLoop(nn.Module):
    def __init__(self, cell: nn.Module) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, x: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        outputs: list[Tensor] = []
        for x_t in x.unbind(0):
            out, state = self.cell(x_t, state)
            outputs.append(out)
        return torch.stack(outputs), state


class HiddenLoop(nn.Module):
    def __init__(self, cell: nn.Module) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        outputs: list[Tensor] = []
        for x_t in x.unbind(0):
            out, h = self.cell(x_t, h)
            outputs.append(out)
        return torch.stack(outputs), h


class ZoneoutLSTMLoop(nn.Module):
    """Zoneout masks per step, (T, B, H) each, drawn before the loop."""

    def __init__(self, cell: nn.Module) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, x: Tensor, state: LSTMState, keep_cell: Tensor,
                keep_hidden: Tensor) -> tuple[Tensor, LSTMState]:
        outputs: list[Tensor] = []
        for t in range(x.size(0)):
            out, state = self.cell(x[t], state, keep_cell[t], keep_hidden[t])
            outputs.append(out)
        return torch.stack(outputs), state


class RecurrentDropoutLSTMLoop(nn.Module):
    """One recurrent dropout mask (B, H) for every step of the sequence."""

    def __init__(self, cell: nn.Module) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, x: Tensor, state: LSTMState, drop: Tensor) -> tuple[Tensor, LSTMState]:
        outputs: list[Tensor] = []
        for x_t in x.unbind(0):
            out, state = self.cell(x_t, state, drop)
            outputs.append(out)
        return torch.stack(outputs), state


# -- what callers use: a module with torch.nn's call, forward(x) -> (output, state) ---------------


class ScriptedRNN(nn.Module):
    """A scripted loop behind ``torch.nn``'s call signature; starts from zero states."""

    def __init__(self, loop: nn.Module, hidden_size: int, cell_state: bool) -> None:
        super().__init__()
        self.loop = torch.jit.script(loop)
        self.hidden_size = hidden_size
        self.cell_state = cell_state

    def zero_state(self, x: Tensor):
        h = x.new_zeros(x.size(1), self.hidden_size)
        return (h, torch.zeros_like(h)) if self.cell_state else h

    def forward(self, x: Tensor, hx=None):
        return self.loop(x, self.zero_state(x) if hx is None else hx)


class ZoneoutLSTM(ScriptedRNN):
    """The LSTM with zoneout (p_cell, p_hidden): fresh masks at every step in training, expectation in eval."""

    def __init__(self, module: nn.Module, p_cell: float, p_hidden: float) -> None:
        super().__init__(ZoneoutLSTMLoop(ZoneoutLSTMCell(module)), module.hidden_size, cell_state=True)
        self.p_cell, self.p_hidden = p_cell, p_hidden

    def masks(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(keep_cell, keep_hidden), each (T, B, H): 1 where a unit keeps its previous value."""
        size = (x.size(0), x.size(1), self.hidden_size)
        if not self.training:
            return x.new_full(size, self.p_cell), x.new_full(size, self.p_hidden)
        draw = lambda p: (torch.rand(size, dtype=x.dtype, device=x.device) < p).to(x.dtype)
        return draw(self.p_cell), draw(self.p_hidden)

    def forward(self, x: Tensor, hx=None, masks=None):
        """``masks`` (keep_cell, keep_hidden) fixes the random draws, for a test."""
        masks = self.masks(x) if masks is None else masks
        return self.loop(x, self.zero_state(x) if hx is None else hx, *masks)


class RecurrentDropoutLSTM(ScriptedRNN):
    """The LSTM with recurrent dropout p (Gal and Ghahramani 2016): one mask per sequence, none in eval."""

    def __init__(self, module: nn.Module, p: float) -> None:
        super().__init__(RecurrentDropoutLSTMLoop(RecurrentDropoutLSTMCell(module)), module.hidden_size,
                         cell_state=True)
        self.p = p

    def mask(self, x: Tensor) -> Tensor:
        """(B, H): 0 for a dropped unit, 1/(1-p) for a kept one, so h's expected value is unchanged."""
        if not self.training:
            return x.new_ones(x.size(1), self.hidden_size)
        kept = torch.rand(x.size(1), self.hidden_size, dtype=x.dtype, device=x.device) >= self.p
        return kept.to(x.dtype) / (1 - self.p)

    def forward(self, x: Tensor, hx=None, mask=None):
        """``mask`` fixes the random draw, for a test."""
        return self.loop(x, self.zero_state(x) if hx is None else hx, self.mask(x) if mask is None else mask)


# -- one builder per variant of issue 11, from the gated module whose weights it copies ------------


def layer_norm_lstm(module: nn.Module) -> ScriptedRNN:
    _check_single_layer(module)
    return ScriptedRNN(LSTMLoop(LayerNormLSTMCell(module)), module.hidden_size, cell_state=True)


def layer_norm_gru(module: nn.Module) -> ScriptedRNN:
    _check_single_layer(module)
    return ScriptedRNN(HiddenLoop(LayerNormGRUCell(module)), module.hidden_size, cell_state=False)


def peephole_lstm(module: nn.Module) -> ScriptedRNN:
    _check_single_layer(module)
    return ScriptedRNN(LSTMLoop(PeepholeLSTMCell(module)), module.hidden_size, cell_state=True)


def zoneout_lstm(module: nn.Module, p_cell: float, p_hidden: float) -> ZoneoutLSTM:
    _check_single_layer(module)
    return ZoneoutLSTM(module, p_cell, p_hidden)


def recurrent_dropout_lstm(module: nn.Module, p: float) -> RecurrentDropoutLSTM:
    _check_single_layer(module)
    return RecurrentDropoutLSTM(module, p)


def min_gru(module: nn.Module) -> ScriptedRNN:
    _check_single_layer(module)
    return ScriptedRNN(HiddenLoop(MinGRUCell(module)), module.hidden_size, cell_state=False)


def min_lstm(module: nn.Module) -> ScriptedRNN:
    _check_single_layer(module)
    return ScriptedRNN(HiddenLoop(MinLSTMCell(module)), module.hidden_size, cell_state=False)
