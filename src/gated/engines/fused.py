"""The fused engine: each layer and direction runs its whole time loop in one numba kernel.

Per layer and direction:

1. the input's share of the gates for all steps in one matrix product,
   ``xp = x W_ih^T + b`` (a kernel of ``kernels.py``, so the call stays on one
   thread). Where the hidden bias simply adds (LSTM, RNN) it is folded into
   ``b`` once, by :func:`kernel_weights`, which streaming shares; the GRU's
   ``b_hn`` sits inside ``reset * (...)`` and stays in the loop;
2. a kernel runs the loop over time (the cells of ``cells.py``, gate by gate)
   and saves what backward needs: the activated gates, the cell states, the
   outputs;
3. backward runs the hand-written backpropagation through time of the same
   kernels, then forms each weight gradient in one matrix product over all
   steps (``d_gates^T @ h_prev``), also in numba.

When autograd records the backward itself (``create_graph=True``: gradient
penalties, Hessian-vector products), the hand-written backward would be a dead
end, so that backward replays the direction with the reference engine's
differentiable cells instead: slower, but second derivatives are right.

Recurrent dropout and zoneout run in the kernels of the kinds that have them
(``Kernels.regularizes``). Their masks are drawn before the kernel by the
reference engine's own :func:`~gated.engines.reference.draw_masks`, in the same
order, so under one seed both engines compute the same numbers; the masks go
to the kernels as arrays (in eval zoneout's p at every step), through autograd
as inputs without gradients, into a trace under the reference's names, and
into the replayed backward.

What each cell kind needs is one :class:`~gated.engines.spec.Kernels` object (``LSTM_KERNELS``,
``GRU_KERNELS``, ``RNN_TANH_KERNELS``, ``RNN_RELU_KERNELS``), which its
``CellKind`` names; the stack of layers, directions, dropout and packing is the
reference engine's (:func:`reference.run_layers`), so only the loop over time
differs. Trace steps come straight from the saved gate buffers, so recording
costs little; they are detached from autograd (``engine="auto"`` uses the
reference engine to differentiate through a trace).

Needs numba and SciPy; the kernels' per-step products call MKL from torch's own
library where it has one, else SciPy's BLAS (``blas.py``). See :func:`available`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import reference
from .reference import (EngineOutput, Masks, State, _reverse_in_time, bind, draw_masks, recorded_recurrent_mask,
                        run_direction, step_mask)
from .spec import Gradients, Kernels, LayerWeights, StackSpec
from .tracing import traced_by

DTYPES = (torch.float32, torch.float64)


def available() -> str | None:
    """None when the fused engine can run here, else the reason it cannot."""
    global _unavailable
    if _unavailable is None:
        try:
            from . import blas  # noqa: F401  (numba, SciPy and the kernels' BLAS, loaded once)
            _unavailable = ""
        except ImportError as error:
            _unavailable = f"the fused engine needs numba and scipy: {error}"
    return _unavailable or None


_unavailable: str | None = None


def supports(spec: StackSpec, x: Tensor, record: bool = False) -> str | None:
    """None when this engine can run ``spec`` on ``x``, else why not."""
    if spec.kind.kernels is None:
        return f"the {spec.kind.name} cell has no fused kernels"
    if spec.regularization and not spec.kind.kernels.regularizes:
        return spec.regularization
    if x.device.type != "cpu":
        return f"it runs on the CPU, the input is on {x.device}"
    if x.dtype not in DTYPES:
        return f"it runs float32 and float64, the input is {x.dtype}"
    # The first weight stands for all: a tracing tool that fakes or wraps weights does so to every one.
    tool = traced_by(x, (spec.layers[0][0].w_ih,))
    if tool:
        return (f"{tool} is tracing this call, and the numba kernels run outside torch where it cannot "
                "see them; use engine='auto' or 'native', which run torch's own kernels under it")
    return available()


def run(spec: StackSpec, x: Tensor, lengths: Tensor | None, state: State, record: bool) -> EngineOutput:
    reason = supports(spec, x, record)
    if reason:
        raise RuntimeError(f"engine='fused' cannot run here: {reason}")
    if x.size(1) == 0:  # an empty batch: nothing to loop over, BLAS would see empty matrices
        return reference.run(spec, x, lengths, state, record)
    return reference.run_layers(spec, x, lengths, state, record, _direction)


def kernel_weights(kernels: Kernels, w: LayerWeights) -> LayerWeights:
    """The weights as the kernels take them: where the hidden bias simply adds, folded into ``b_ih``."""
    if kernels.folds_hidden_bias and w.b_ih is not None:
        return w._replace(b_ih=w.b_ih + w.b_hh, b_hh=None)
    return w


def _direction(spec: StackSpec, w: LayerWeights, layer_input: Tensor, start: State, lengths, mask, reverse: bool,
               record: bool):
    kernels = spec.kind.kernels
    steps = layer_input.size(0)
    lens = np.full(layer_input.size(1), steps, dtype=np.int64) if lengths is None else lengths.cpu().to(torch.int64).numpy()
    x = _reverse_in_time(layer_input, lengths) if reverse else layer_input
    kw = kernel_weights(kernels, w)
    extras = tuple(kw.extras.values())
    masks = draw_masks(spec, start, steps) if spec.regularization else None  # the reference's draws, same order
    grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, *start, *kw.torch_weights(), *extras))
    if grad:
        out, *rest = _FusedDirection.apply(kernels, spec.kind, lens, tuple(kw.extras), masks, x, *kw.torch_weights(),
                                           *extras, *start)
        final, saved = tuple(rest[: len(start)]), tuple(rest[len(start) :])
    else:
        out, final, saved = _forward(kernels, x, kw, start, lens, record, masks)
    recorded = None
    if record:
        recorded = {**kernels.recorded(spec.kind, saved), "hidden": out, **_recorded_masks(masks, steps, lens)}
    if reverse:
        out = _reverse_in_time(out, lengths)
        if record:
            recorded = {name: _reverse_in_time(value, lengths) for name, value in recorded.items()}
    return out, final, recorded


def _kernel_masks(masks: Masks | None, steps: int, start: State) -> tuple:
    """``masks`` as the kernels take them (``Kernels``): () without any; zoneout in eval as p at every step."""
    if masks is None:
        return ()
    zoned = []
    zoneout = masks.zoneout
    for i, s in enumerate(start):
        p = zoneout.p[i] if zoneout is not None else 0
        if p == 0:
            zoned.append(None)
        elif zoneout.training:
            zoned.append(zoneout.kept[i])
        else:  # the expectation: the same formula, with p for the mask
            zoned.append(torch.full((steps, *s.shape), p, dtype=s.dtype))
    return (masks.recurrent, *zoned)


def _forward(kernels: Kernels, x, w: LayerWeights, start: State, lens, save: bool, masks: Masks | None):
    """The kernels' forward, with the masks in their form when there are any (kernels without them take none)."""
    if masks is None:
        return kernels.forward(x, w, start, lens, save=save)
    return kernels.forward(x, w, start, lens, save=save, masks=_kernel_masks(masks, x.size(0), start))


def _recorded_masks(masks: Masks | None, steps: int, lens) -> dict[str, Tensor]:
    """The masks a trace shows, under the reference engine's names, zero past each sequence's end."""
    if masks is None:
        return {}
    mask = step_mask(torch.from_numpy(lens), steps).unsqueeze(-1)
    shown = {}
    zoneout = masks.zoneout
    if zoneout is not None and zoneout.training:
        shown = {f"zoneout_{name}": kept * mask for name, kept in zip(zoneout.names, zoneout.kept) if kept is not None}
    if masks.recurrent is not None:
        shown["recurrent_mask"] = recorded_recurrent_mask(masks.recurrent, steps, mask)
    return shown


class _FusedDirection(torch.autograd.Function):
    """One layer and direction through a cell kind's kernels, as one node of autograd's graph.

    Its inputs are torch's five weights, then the kind's extras (named by ``names``), then the start state.
    ``masks`` (recurrent dropout's and zoneout's, or None) is an input without gradient: drawn, not learnt.
    """

    @staticmethod
    def forward(ctx, kernels: Kernels, kind, lens, names, masks, x, w_ih, w_hh, b_ih, b_hh, w_hr, *rest):
        extras, start = rest[: len(names)], rest[len(names) :]
        w = LayerWeights(w_ih, w_hh, b_ih, b_hh, w_hr, dict(zip(names, extras)))
        out, final, saved = _forward(kernels, x, w, start, lens, True, masks)
        ctx.kernels, ctx.kind, ctx.lens, ctx.names, ctx.states = kernels, kind, lens, names, len(start)
        ctx.masks = masks
        ctx.save_for_backward(x, *w.torch_weights(), *extras, *start, out, *saved)
        ctx.mark_non_differentiable(*saved)
        # The saved gate buffers are outputs for traces only: autograd should not build a zero gradient of
        # their size at every backward (65 MB for a MinGRU at T1000 B32 H256), so missing gradients stay None.
        ctx.set_materialize_grads(False)
        return (out, *final, *saved)

    @staticmethod
    def backward(ctx, d_out, *d_rest):
        x, *tensors = ctx.saved_tensors
        count = len(ctx.names)
        extras = dict(zip(ctx.names, tensors[5 : 5 + count]))
        w = LayerWeights(*tensors[:5], extras)
        start = tuple(tensors[5 + count : 5 + count + ctx.states])
        out, *saved = tensors[5 + count + ctx.states :]
        if d_out is None:  # only the final state was used
            d_out = torch.zeros_like(out)
        d_final = tuple(d if d is not None else torch.zeros_like(s) for d, s in zip(d_rest[: ctx.states], start))
        if torch.is_grad_enabled():  # autograd records this backward (create_graph=True): stay differentiable
            grads = _replayed_backward(ctx.kind, x, w, start, ctx.lens, d_out, d_final, ctx.needs_input_grad[5:],
                                       ctx.masks)
        elif ctx.masks is not None:
            masks = _kernel_masks(ctx.masks, x.size(0), start)
            grads = ctx.kernels.backward(x, w, start, out, saved, d_out, d_final, ctx.lens, masks=masks)
        else:
            grads = ctx.kernels.backward(x, w, start, out, saved, d_out, d_final, ctx.lens)
        d_extras = [grads.weights.extras.get(name) for name in ctx.names]
        return (None, None, None, None, None, grads.x, *grads.weights.torch_weights(), *d_extras, *grads.start)


def _replayed_backward(kind, x, w: LayerWeights, start: State, lens, d_out, d_final, needs,
                       masks: Masks | None = None) -> Gradients:
    """The gradients of one fused direction, computed through the reference cells so that they have a graph.

    With ``masks``, the replay applies the very masks the kernels applied.
    """
    inputs = (x, *w.torch_weights(), *w.extras.values(), *start)
    wanted = [i for i, (t, need) in enumerate(zip(inputs, needs)) if need and t is not None]
    with torch.enable_grad():
        mask = step_mask(torch.from_numpy(lens), x.size(0)).unsqueeze(-1)
        xp = kind.project(x, w) if kind.project else F.linear(x, w.w_ih, w.b_ih)
        if kind.sequence is not None:
            out, final, _ = kind.sequence(xp, start, mask, False)
            out = out * mask
        else:
            recurrent, zoneout = masks if masks is not None else (None, None)
            out, final, _ = run_direction(bind(kind, w, recurrent), xp, start, mask, None, False, False, zoneout)
        found = torch.autograd.grad((out, *final), [inputs[i] for i in wanted], (d_out, *d_final),
                                    create_graph=True, allow_unused=True)
    grads: list[Tensor | None] = [None] * len(inputs)
    for i, g in zip(wanted, found):
        grads[i] = g
    count = len(w.extras)
    extras = dict(zip(w.extras, grads[6 : 6 + count]))
    return Gradients(grads[0], LayerWeights(*grads[1:6], extras), tuple(grads[6 + count :]))

