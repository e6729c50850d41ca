"""``gated bench --onnx`` (``gated.bench_onnx``): every row is there with a finite ratio, on tiny shapes.

Nothing about speed is asserted (the machine is shared): the rows, their shapes and that both
sides ran. The numbers themselves are in the README, measured with ``gated bench --onnx``.
"""

from __future__ import annotations

import json
import math

import torch

import gated
from gated import bench, bench_onnx



def test_every_module_shape_and_streaming_step_has_a_finite_ratio(monkeypatch, capsys):
    monkeypatch.setattr(bench, "SHAPES", {"a": (4, 1, 3, 5), "b": (4, 2, 3, 5), "c": (4, 2, 3, 5)})
    monkeypatch.setattr(bench, "STREAM_SHAPE", (1, 3, 5))
    assert bench_onnx.main(["--seconds", "0.01", "--rounds", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {(r["kind"], r["module"], r["shape"]) for r in report["rows"]}
    assert rows == {("forward", m, s) for m in ("LSTM", "GRU") for s in ("a", "b")} | \
        {("stream", m, "B1 I3 H5") for m in ("LSTM", "GRU")}
    for row in report["rows"]:
        assert row["onnxruntime_ms"] > 0 and row["gated_ms"] > 0
        assert math.isclose(row["ratio"], row["onnxruntime_ms"] / row["gated_ms"])
    assert report["machine"]["threads"] == torch.get_num_threads()


def test_onnxruntime_gets_as_many_threads_as_torch(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)  # whatever torch has, onnxruntime gets
    options = bench_onnx.session(gated.GRU(3, 5)).get_session_options()
    assert options.intra_op_num_threads == 3 and options.inter_op_num_threads == 1
