"""The synthetic memory tasks of gated.data, and a short run of the demo that trains on one."""

from __future__ import annotations

import math

import pytest
import torch

from gated.data import ADDING_BASELINE_MSE, adding_problem, copy_baseline_cross_entropy, copy_task
from gated.demo import HIDDEN, gate_table, interesting_steps, main, memory_cell, train

# -- adding problem --------------------------------------------------------------------------


@pytest.mark.parametrize("length", [2, 3, 10, 51])
def test_adding_shapes_and_dtypes(length):
    x, y = adding_problem(7, length, seed=0)
    assert x.shape == (7, length, 2) and x.dtype == torch.float32
    assert y.shape == (7,) and y.dtype == torch.float32


@pytest.mark.parametrize("length", [2, 3, 10, 51])
def test_adding_two_markers_one_in_each_half(length):
    x, _ = adding_problem(500, length, seed=1)
    markers = x[..., 1]
    assert set(markers.unique().tolist()) <= {0.0, 1.0}
    half = length // 2
    assert (markers[:, :half].sum(1) == 1).all()
    assert (markers[:, half:].sum(1) == 1).all()


def test_adding_values_are_uniform_on_unit_interval():
    x, _ = adding_problem(2000, 50, seed=2)
    values = x[..., 0]
    assert values.min() >= 0 and values.max() < 1
    # 100,000 draws of U(0, 1): mean 1/2, sd of the mean 0.29 / 316 < 0.001.
    assert values.mean().item() == pytest.approx(0.5, abs=0.005)


def test_adding_target_is_sum_of_marked_values():
    x, y = adding_problem(300, 20, seed=3)
    for values, markers, target in zip(x[..., 0], x[..., 1], y):
        marked = values[markers == 1]
        assert marked.numel() == 2
        assert target.item() == pytest.approx(marked.sum().item(), abs=1e-6)


def test_adding_markers_reach_every_position_of_each_half():
    # Both halves are sampled over their whole range, the last step included.
    x, _ = adding_problem(2000, 9, seed=4)
    assert (x[..., 1].sum(0) > 0).all()


def test_adding_is_deterministic_by_seed_and_differs_across_seeds():
    a, ya = adding_problem(20, 30, seed=5)
    b, yb = adding_problem(20, 30, seed=5)
    c, yc = adding_problem(20, 30, seed=6)
    assert torch.equal(a, b) and torch.equal(ya, yb)
    assert not torch.equal(a[..., 0], c[..., 0])
    assert not torch.equal(a[..., 1], c[..., 1])


def test_adding_accepts_a_generator_and_advances_it():
    generator = torch.Generator().manual_seed(7)
    first, _ = adding_problem(4, 10, generator)
    second, _ = adding_problem(4, 10, generator)
    assert not torch.equal(first, second)
    assert torch.equal(first, adding_problem(4, 10, seed=7)[0])


def test_adding_baseline_mse_matches_sampling():
    assert ADDING_BASELINE_MSE == pytest.approx(1 / 6)
    _, y = adding_problem(200_000, 4, seed=8)
    mse = (y - 1.0).pow(2).mean().item()
    # y - 1 has the triangular density 1 - |z| on [-1, 1], so (y - 1)^2 has mean 1/6 and
    # variance E[z^4] - 1/36 = 1/15 - 1/36 = 7/180: the sample mean of 200,000 has sd
    # sqrt(7/180 / 200_000) ~ 0.00044. The tolerance is about 7 sd.
    assert mse == pytest.approx(ADDING_BASELINE_MSE, abs=0.003)


# -- copy task -------------------------------------------------------------------------------


def test_copy_shapes_dtypes_and_layout():
    n, length, delay, alphabet = 50, 5, 12, 6
    tokens, targets = copy_task(n, length, delay, alphabet, seed=0)
    total = 2 * length + delay
    assert tokens.shape == targets.shape == (n, total)
    assert tokens.dtype == targets.dtype == torch.long

    symbols = tokens[:, :length]
    assert symbols.min() >= 1 and symbols.max() <= alphabet
    delimiter = length + delay - 1
    assert (tokens[:, length:delimiter] == 0).all()
    assert (tokens[:, delimiter] == alphabet + 1).all()
    assert (tokens[:, delimiter + 1 :] == 0).all()
    # The delimiter appears exactly once, and nowhere else.
    assert ((tokens == alphabet + 1).sum(1) == 1).all()

    assert (targets[:, : length + delay] == 0).all()
    assert torch.equal(targets[:, -length:], symbols)


def test_copy_uses_whole_alphabet():
    tokens, _ = copy_task(200, 10, 3, alphabet=8, seed=1)
    assert set(tokens[:, :10].unique().tolist()) == set(range(1, 9))


def test_copy_with_delay_one_puts_delimiter_right_after_symbols():
    tokens, targets = copy_task(3, 4, 1, alphabet=5, seed=2)
    assert (tokens[:, 4] == 6).all()
    assert torch.equal(targets[:, 5:], tokens[:, :4])


def test_copy_is_deterministic_by_seed_and_differs_across_seeds():
    a = copy_task(10, 10, 20, seed=3)
    b = copy_task(10, 10, 20, seed=3)
    c = copy_task(10, 10, 20, seed=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_copy_baseline_cross_entropy():
    # Arjovsky et al. (2016): 10 log 8 / (T + 20) with T = 100.
    assert copy_baseline_cross_entropy(10, 100, 8) == pytest.approx(10 * math.log(8) / 120)
    # Recompute it as the loss of the memoryless predictor on actual sequences.
    length, delay, alphabet = 4, 7, 5
    tokens, targets = copy_task(8, length, delay, alphabet, seed=5)
    total = tokens.size(1)
    logits = torch.full((8, total, alphabet + 1), -1e9)
    logits[:, : length + delay, 0] = 0.0  # certain blank up to the delimiter
    logits[:, length + delay :, 1:] = 0.0  # uniform over the symbols after it
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, alphabet + 1), targets.reshape(-1))
    assert loss.item() == pytest.approx(copy_baseline_cross_entropy(length, delay, alphabet), rel=1e-6)


# -- argument checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: adding_problem(0, 10), "n must be at least 1, got 0"),
        (lambda: adding_problem(-3, 10), "n must be at least 1, got -3"),
        (
            lambda: adding_problem(4, 1),
            "length must be at least 2 so that each half can hold one marker, got 1",
        ),
        (lambda: adding_problem(4, 10.0), "length must be an int, got float 10.0"),
        (lambda: adding_problem(True, 10), "n must be an int, got bool True"),
        (
            lambda: adding_problem(4, 10, seed=1.5),
            "seed must be an int, a torch.Generator or None, got float 1.5",
        ),
        (lambda: copy_task(0, 10, 5), "n must be at least 1, got 0"),
        (lambda: copy_task(4, 0, 5), "length must be at least 1, got 0"),
        (
            lambda: copy_task(4, 10, 0),
            "delay must be at least 1 so that there is room for the delimiter, got 0",
        ),
        (lambda: copy_task(4, 10, 5, alphabet=0), "alphabet must be at least 1, got 0"),
        (lambda: copy_task(4, "10", 5), "length must be an int, got str '10'"),
        (lambda: copy_baseline_cross_entropy(10, 0), "delay must be at least 1, got 0"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


# -- the demo --------------------------------------------------------------------------------


def test_demo_pieces_run_briefly():
    model, outcome = train(length=10, seconds=30, seed=0, steps=10, quiet=True)
    assert (outcome.reason, outcome.steps) == ("budget", 10)
    assert math.isfinite(outcome.summary["splits"]["validation"]["mse"])

    x, _ = adding_problem(1, 10, seed=9)
    cell = memory_cell(model, x)
    assert 0 <= cell < HIDDEN
    table = gate_table(model, x[0], cell)
    header = table.splitlines()[1].split()
    assert header[:4] == ["step", "value", "mark", "|"]
    assert {"input", "forget", "output", "|c|"} <= set(header)
    # One row per interesting step (rows start with the step number), "..." for gaps.
    shown = [int(line.split()[0]) for line in table.splitlines()[2:] if line.split()[0].isdigit()]
    assert shown == interesting_steps(x[0, :, 1])
    assert 0 in shown and 9 in shown
    for t in x[0, :, 1].nonzero().flatten().tolist():
        assert t in shown


def test_demo_stops_once_solved_and_shows_the_memory_cell(capsys):
    # Length 2 is solved within a few epochs: the demo must stop there, long before its time runs out.
    outcome = main(["--length", "2", "--seconds", "120"])
    assert outcome.reason == "target" and outcome.summary["seconds"] < 120
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("solved: validation MSE 0.00")
    assert "whose input gate opens most at marked steps" in out and "prediction" in out


def test_interesting_steps():
    markers = torch.zeros(20)
    markers[[3, 15]] = 1
    assert interesting_steps(markers) == [0, 2, 3, 4, 14, 15, 16, 19]
    markers = torch.zeros(5)
    markers[[0, 4]] = 1
    assert interesting_steps(markers) == [0, 1, 3, 4]

