"""The scripted baseline of ``gated bench --variants`` computes gated's numbers, so its timings compare like with like.

benchmarks/scripted_cells.py is a torch user's TorchScript loop for each cell of issue 11,
built from a gated module's weights. Here each one runs against that module on the same
input: outputs and final states within 1e-5, and the input's gradient too. Random cells
run in eval mode (zoneout's expectation, no recurrent dropout) or with fixed masks.

    .venv/bin/python -m pytest tests/test_scripted_baseline.py
"""

from __future__ import annotations

import benchmark_scripts
import pytest
import torch

import gated

T, B, I, H = 7, 3, 5, 6
TOL = dict(atol=1e-5, rtol=1e-5)
sc = benchmark_scripts.load("scripted_cells")

# (gated module, builder of its baseline)
DETERMINISTIC = {
    "LayerNormLSTM": (gated.LayerNormLSTM, sc.layer_norm_lstm),
    "LayerNormGRU": (gated.LayerNormGRU, sc.layer_norm_gru),
    "PeepholeLSTM": (gated.PeepholeLSTM, sc.peephole_lstm),
    "MinGRU": (gated.MinGRU, sc.min_gru),
    "MinLSTM": (gated.MinLSTM, sc.min_lstm),
}


def _randomise(module: torch.nn.Module) -> torch.nn.Module:
    # Gains start at 1 and norm biases at 0: move them, so a mixed-up gain or bias shows.
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return module


def _same(ours, theirs, x):
    """Both modules on x: outputs, final states and the input's gradient agree."""
    xs = [x.clone().requires_grad_(), x.clone().requires_grad_()]
    (out_a, state_a), (out_b, state_b) = ours(xs[0]), theirs(xs[1])
    torch.testing.assert_close(out_b, out_a, **TOL)
    state_a = state_a if isinstance(state_a, tuple) else (state_a,)
    state_b = state_b if isinstance(state_b, tuple) else (state_b,)
    for a, b in zip(state_a, state_b):
        torch.testing.assert_close(b.reshape(a.shape), a, **TOL)
    grad = torch.randn_like(out_a)
    (out_a * grad).sum().backward()
    (out_b * grad).sum().backward()
    torch.testing.assert_close(xs[1].grad, xs[0].grad, **TOL)


@pytest.mark.parametrize("engine", ["reference", "auto"])
@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_baseline_computes_what_gated_computes(name, engine):
    make, build = DETERMINISTIC[name]
    ours = _randomise(make(I, H, engine=engine))
    _same(ours, build(ours), torch.randn(T, B, I))


def test_baseline_owns_copies_of_the_weights():
    ours = gated.PeepholeLSTM(I, H)
    theirs = sc.peephole_lstm(ours)
    with torch.no_grad():
        ours.weight_ci_l0.add_(1.0)
    assert not torch.equal(theirs.loop.cell.weight_ci, ours.weight_ci_l0)


def test_baseline_refuses_what_it_does_not_cover():
    with pytest.raises(ValueError, match="one layer"):
        sc.layer_norm_lstm(gated.LayerNormLSTM(I, H, num_layers=2))


# -- zoneout and recurrent dropout --------------------------------------------------------------


def test_zoneout_masks_that_keep_nothing_give_the_plain_lstm():
    lstm = gated.LSTM(I, H)
    x = torch.randn(T, B, I)
    zeros = torch.zeros(T, B, H)
    torch.testing.assert_close(sc.zoneout_lstm(lstm, 0.1, 0.05)(x, masks=(zeros, zeros))[0], lstm(x)[0], **TOL)


def test_zoneout_masks_that_keep_everything_hold_the_start():
    ones = torch.ones(T, B, H)
    out, (h, c) = sc.zoneout_lstm(gated.LSTM(I, H), 0.1, 0.05)(torch.randn(T, B, I), masks=(ones, ones))
    assert out.abs().max() == 0 and h.abs().max() == 0 and c.abs().max() == 0


def test_zoneout_draws_fresh_masks_per_step_in_training():
    keep_cell, keep_hidden = sc.zoneout_lstm(gated.LSTM(I, H), 0.5, 0.5).masks(torch.randn(T, B, I))
    assert keep_cell.shape == (T, B, H) and not torch.equal(keep_cell[0], keep_cell[1])
    assert set(keep_hidden.unique().tolist()) <= {0.0, 1.0}


def test_recurrent_dropout_mask_is_one_per_sequence():
    # W_hh (h * m) = (W_hh diag(m)) h: the baseline with mask m is an LSTM whose W_hh columns are scaled by m.
    lstm = gated.LSTM(I, H)
    dropout = sc.recurrent_dropout_lstm(lstm, 0.25)
    mask = dropout.mask(torch.randn(T, B, I))
    assert torch.allclose(mask.unique(), torch.tensor([0.0, 1 / 0.75]))  # dropped, or kept and scaled by 1/(1-p)
    one_row = mask[:1].expand(B, H)  # the same mask for every sequence, so one scaled W_hh stands for it
    x = torch.randn(T, B, I)
    with torch.no_grad():
        lstm_scaled = gated.LSTM(I, H)
        lstm_scaled.load_state_dict(lstm.state_dict())
        lstm_scaled.weight_hh_l0.mul_(one_row[0])
    torch.testing.assert_close(dropout(x, mask=one_row)[0], lstm_scaled(x)[0], **TOL)


def test_zoneout_in_eval_matches_gated():
    ours = gated.LSTM(I, H, zoneout=(0.1, 0.05)).eval()
    _same(ours, sc.zoneout_lstm(ours, 0.1, 0.05).eval(), torch.randn(T, B, I))


def test_recurrent_dropout_in_eval_matches_gated():
    ours = gated.LSTM(I, H, recurrent_dropout=0.25).eval()
    _same(ours, sc.recurrent_dropout_lstm(ours, 0.25).eval(), torch.randn(T, B, I))


def test_zoneout_in_training_with_gated_masks_matches_gated():
    # A trace in training mode records the masks it drew; fed to the baseline, the numbers agree.
    ours = gated.LSTM(I, H, zoneout=(0.3, 0.2), engine="reference").train()
    x = torch.randn(T, B, I)
    trace = ours.trace(x)
    masks = (trace.steps["zoneout_cell"][0], trace.steps["zoneout_hidden"][0])
    out, (_, c) = sc.zoneout_lstm(ours, 0.3, 0.2)(x, masks=masks)
    torch.testing.assert_close(out, trace.output, **TOL)
    torch.testing.assert_close(c, trace.state[1][0], **TOL)


def test_recurrent_dropout_in_training_with_gated_mask_matches_gated():
    ours = gated.LSTM(I, H, recurrent_dropout=0.25, engine="reference").train()
    x = torch.randn(T, B, I)
    trace = ours.trace(x)
    mask = trace.steps["recurrent_mask"][0, 0]  # the same at every step: one per sequence
    torch.testing.assert_close(trace.steps["recurrent_mask"][0, -1], mask)
    out, _ = sc.recurrent_dropout_lstm(ours, 0.25)(x, mask=mask)
    torch.testing.assert_close(out, trace.output, **TOL)
