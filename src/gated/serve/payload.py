"""How an analysis travels as JSON: small by default, every number on request.

A full gate-by-unit matrix for 200 words of a 64-unit LSTM is 64,000 numbers,
and most of them say little. So by default a reading carries, per gate, the
mean over all units and the values of the telling units (8), plus the five
units that weigh most at each token and their weights; ``"units": "all"`` or a list of unit
numbers asks for others. Matrices go as little-endian float32 in base64
(exactly trace()'s numbers, a third of the bytes of JSON text); ``"encoding":
"json"`` gives nested lists instead, for scripts that prefer them.
"""

from __future__ import annotations

import base64
import json
import math

import numpy as np

from .analysis import TOP_PER_TOKEN, Analysis
from .catalog import Served

ENCODINGS = ("base64", "json")


def matrix(values: np.ndarray, encoding: str) -> dict:
    """A float32 vector or matrix (rows, columns): shape plus data, row after row."""
    values = np.ascontiguousarray(values, dtype="<f4")
    if encoding == "json":
        return {"shape": list(values.shape), "values": values.tolist()}
    return {"shape": list(values.shape), "float32": base64.b64encode(values.tobytes()).decode("ascii")}


def rounded(values, digits: int = 5) -> list:
    """Floats for JSON: rounded (in numpy, all at once: a reading has thousands), NaN (which JSON cannot
    hold) as null."""
    values = np.round(np.asarray(values, dtype=np.float64), digits)
    if not np.isnan(values).any():
        return values.tolist()
    return [None if math.isnan(v) else v for v in values.tolist()]


def to_json(result: dict) -> bytes:
    """The answer as compact JSON bytes, made on the worker rather than on the server's event loop."""
    return json.dumps(result, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def reading(served: Served, analysis: Analysis, units: list[int], encoding: str = "base64",
            dropped: list[int] | None = None) -> dict:
    kind = served.model.rnn.kind
    shown = list(analysis.steps)
    top = np.argsort(-np.abs(analysis.contributions), axis=1, kind="stable")[:, :TOP_PER_TOKEN]
    weights = np.take_along_axis(analysis.contributions, top, axis=1)
    result = {
        "run": served.name, "task": served.task_name, "model": served.cell,
        "tokens": analysis.tokens,
        "known": [i != served.task.vocab.UNK_INDEX for i in analysis.ids],
        "unread": analysis.unread,
        "prediction": rounded(analysis.prediction),
        "target": analysis.target, "verdict": analysis.verdict,
        "confidence": None if analysis.confidence is None else round(analysis.confidence, 5),
        "gates": [{"name": name, "kind": "gate" if kind.is_gate(name) else "state"} for name in shown],
        "hidden_size": int(analysis.steps["hidden"].shape[1]),
        "telling": analysis.telling,
        "units": units,
        "mean": {name: matrix(analysis.steps[name].mean(1), encoding) for name in shown},
        "values": {name: matrix(analysis.steps[name][:, units], encoding) for name in shown},
        "top": {"units": top.tolist(), "weights": matrix(weights, encoding)},
    }
    if analysis.expected is not None:
        result["expected"] = analysis.expected
    if dropped:
        result["dropped"] = dropped
    return result
