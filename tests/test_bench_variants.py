"""``gated bench --variants``: every row of issue 11's speed table is there, with a finite ratio and its target.

The benchmark runs in-process (``bench.main``) on tiny shapes in place of a, b and the
long one, so it takes seconds; what it times is not checked (no timing assertions: the
machine is shared). Also: without benchmarks/ (an installed package) the flag says it needs the repository.

    .venv/bin/python -m pytest tests/test_bench_variants.py
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from gated import bench

TINY = {"a": (4, 1, 3, 5), "b": (4, 2, 3, 5), "c": (4, 2, 3, 5)}
QUICK = ["--variants", "--seconds", "0.01", "--rounds", "1", "--json"]


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(bench, "SHAPES", TINY)
    monkeypatch.setattr(bench, "LONG", (8, 2, 3, 5))


def _run(capsys, argv=QUICK) -> tuple[int, dict | None, str]:
    code = bench.main(argv)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def test_every_row_has_a_finite_ratio_and_its_target(tiny, capsys):
    code, report, _ = _run(capsys)
    assert code == 0
    rows = [r for r in report["rows"] if r["kind"] == "variant"]
    timed = {(r["variant"], r["shape"], r["direction"]) for r in rows}
    for variant in bench.VARIANTS:
        for shape in ("a", "b"):
            assert {(variant.name, shape, "forward+backward"), (variant.name, shape, "forward")} <= timed
    assert {("LayerNormLSTM", s, "forward+backward") for s in ("a", "b")} <= timed
    assert {("MinGRU", "long", "forward+backward"), ("MinLSTM", "long", "forward+backward")} <= timed
    for r in rows:
        assert math.isfinite(r["ratio"]) and r["ratio"] > 0
        assert r["numerator_ms"] > 0 and r["denominator_ms"] > 0
        assert r["meets"] in (True, False)
    targets = {(r["variant"], r["shape"], r["direction"]): r["target"] for r in rows}
    assert targets[("PeepholeLSTM", "a", "forward+backward")] == {"at_least": 5.0}
    assert targets[("PeepholeLSTM", "b", "forward+backward")] == {"at_least": 1.5}
    assert targets[("MinGRU", "a", "forward")] == {"at_least": 1.0}
    assert [r["target"] for r in rows if r["measure"] == "LN-LSTM/LSTM"] == [{"at_most": 1.5}] * 2
    assert [r["target"] for r in rows if r["shape"] == "long"] == [{"at_least": 10.0}] * 2
    memory = {r["module"]: r for r in report["rows"] if r["kind"] == "memory"}
    assert set(memory) == {"GRU", "MinGRU", "MinLSTM"}
    assert all(r["saved_bytes"] > 0 and r["per_output"] > 0 for r in memory.values())
    bench._print_variants(report["machine"], report["rows"])  # the table prints what JSON holds
    assert "LN-LSTM/LSTM" in capsys.readouterr().out


def test_saved_for_backward_counts_each_storage_once_beyond_the_excluded():
    import torch

    w = torch.randn(10, 10, requires_grad=True)
    x = torch.randn(10, 10)
    # x @ w saves x and w (excluded); sin saves its input y (400 bytes); y saved twice counts once.
    assert bench.saved_for_backward(lambda: ((x @ w).sin() * 1.0), exclude=[x, w]) == 400

    def square(y):
        return y * y

    assert bench.saved_for_backward(lambda: square(x @ w), exclude=[x, w]) == 400


def test_without_the_repository_the_flag_says_it_needs_one(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "REPOSITORY", tmp_path)  # as for a package installed without its checkout
    code, _, err = _run(capsys)
    assert code == 2
    assert err.count("\n") == 1 and "--variants needs a checkout of the repository" in err
    assert "Traceback" not in err


def test_the_flag_is_in_the_help(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--help"])
    assert "--variants" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--device", "cuda"], ["--variants", "--device", "cuda"], ["--device", "nowhere"]])
def test_a_device_that_is_not_here_is_one_line_and_exit_2(argv, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without a GPU, also on one with
    assert bench.main([*argv, "--seconds", "0.01"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--device" in err and "cpu" in err


def test_calls_are_timed_with_torchs_threads_as_they_are():
    # torch.utils.benchmark.Timer defaults to one thread; the ratios must compare torch as users run it.
    seen = []
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        bench.seconds_per_call(lambda: seen.append(torch.get_num_threads()), 0.01)
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {2}
