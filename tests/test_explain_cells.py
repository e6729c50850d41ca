"""gated explain reads every cell kind's gates by name: the cells beyond torch.nn included.

Each model trains for a few steps on the real reviews, cut small; the reading's
steps must be exactly what the cell's step records, and the report must draw
each gate and state the kind shows, under its own name, from those steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gated.cli import main
from gated.explain import panels
from gated.reading import read
from gated.runs import load_run
from gated.viz.lang import labels

MODELS = ["peephole-lstm", "ln-lstm", "ln-gru", "min-gru", "min-lstm"]


@pytest.fixture(scope="module", params=MODELS)
def run(request, tiny_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp(request.param) / "run"
    argv = ["train", "sentiment", "--model", request.param, "--data", str(tiny_data["sentiment"]), "--out", str(out),
            "--hidden", "8", "--embedding", "8", "--steps", "3", "--quiet"]
    assert main(argv) == 0
    return out


def test_the_reading_holds_what_the_cell_records(run: Path):
    task, model, _ = load_run(run)
    kind = model.rnn.kind
    reading = read(task, model, "the tea was lovely and fresh")
    assert reading.kind is kind
    assert set(reading.steps) == set(kind.recorded)
    for name in kind.gates:  # gates are sigmoids: every value in (0, 1)
        values = torch.as_tensor(reading.steps[name])
        assert values.min() > 0 and values.max() < 1


def test_the_figure_draws_each_gate_the_kind_shows(run: Path, tmp_path: Path):
    task, model, _ = load_run(run)
    kind = model.rnn.kind
    reading = read(task, model, "the tea was lovely and fresh", units=3)
    t = labels("en")
    drawn = panels(reading, t)  # the forward direction's, then (bidirectional, the default) the backward's
    assert len(drawn) == len(kind.shown) * (1 if reading.backward is None else 2)
    drawn = drawn[: len(kind.shown)]
    assert [p.title for p in drawn] == [t.get(f"gate.{name}", name) for name in kind.shown]
    for panel, name in zip(drawn, kind.shown):
        gate = kind.is_gate(name)
        assert panel.kind == ("gate" if gate else "state")
        unit_rows = panel.values[1:] if gate else panel.values  # a gate's first row is its mean over units
        assert np.allclose(unit_rows, reading.steps[name][:, reading.units].T)
    png = tmp_path / "why.png"
    assert main(["explain", str(run), "the tea was lovely and fresh", "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
