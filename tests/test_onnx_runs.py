"""``gated export RUN model.onnx``: trained task models in onnxruntime, prepared from the JSON alone.

The texts are turned into ids here with nothing but ``re`` and the JSON written beside the
model (as a user outside Python would), and the answers are compared with gated's own.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from gated.cli import main
from gated.runs import load_run

ATOL = 1e-5
TINY = ["--hidden", "8", "--embedding", "8", "--steps", "2", "--quiet"]
REVIEWS = ["the best cereal I have had in years!", "Stale, bland and overpriced; never again.",
           "Don't buy it", "'Crunchy' and fresh tea, lovely aroma and a fair price for a big box"]


def session(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the optional inputs (initializers a caller may override) draw a warning
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def train(out: Path, *args: str) -> Path:
    assert main(["train", *args, "--out", str(out), *TINY]) == 0
    return out


def exported(run: Path, capsys) -> tuple[ort.InferenceSession, dict]:
    model = run.parent / "model.onnx"
    assert main(["export", str(run), str(model)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"wrote {model} (")
    assert printed[1].startswith(f"wrote {run.parent / 'model.json'} (")
    return session(model), json.loads((run.parent / "model.json").read_text(encoding="utf-8"))


def ids_from_json(info: dict, text: str) -> list[int]:
    """A text's ids, following only what the JSON says."""
    rules, vocabulary = info["text"], info["vocabulary"]
    ids = {token: position for position, token in enumerate(vocabulary["tokens"])}
    if rules["tokens"] == "characters":
        return [ids.get(character, vocabulary["unk"]) for character in text]
    words = re.findall(rules["pattern"], text.lower() if rules["lowercase"] else text)
    words = [word.strip(rules["strip"]) for word in words]
    return [ids.get(word, vocabulary["unk"]) for word in words if word][: rules["max_tokens"]]


@pytest.fixture(scope="module", params=[("lstm", "last"), ("ln-gru", "max")])
def sentiment_run(request, tiny_data, tmp_path_factory) -> Path:
    cell, readout = request.param
    out = tmp_path_factory.mktemp(f"sentiment-{cell}") / "run"
    data = str(tiny_data["sentiment"])
    return train(out, "sentiment", "--data", data, "--model", cell, "--readout", readout)


def test_a_sentiment_run_gives_the_same_verdicts_outside_python(sentiment_run: Path, capsys):
    runner, info = exported(sentiment_run, capsys)
    task, model, _ = load_run(sentiment_run)
    expected = task.predict(model, REVIEWS)  # gated's probabilities, (texts, labels)
    rows = [ids_from_json(info, text) for text in REVIEWS]
    lengths = np.array([len(row) for row in rows], dtype=np.int64)
    tokens = np.zeros((len(rows), lengths.max()), dtype=np.int64)  # padded with 0, as the JSON says
    for r, row in enumerate(rows):
        tokens[r, : len(row)] = row
    probabilities = runner.run(["probabilities"], {"tokens": tokens, "lengths": lengths})[0]
    np.testing.assert_allclose(probabilities, expected.numpy(), rtol=0, atol=ATOL)
    verdicts = [info["labels"][i] for i in probabilities.argmax(-1)]
    assert verdicts == [task.label_names[i] for i in expected.argmax(-1)]
    assert info["labels"] == task.label_names and info["vocabulary"]["tokens"] == task.vocab.tokens


@pytest.fixture(scope="module")
def charlm_run(tiny_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("charlm") / "run"
    return train(out, "charlm", "--data", str(tiny_data["charlm"]), "--layers", "2", "--seq-len", "16")


def test_a_charlm_run_gives_the_same_next_character_whole_or_streamed(charlm_run: Path, capsys):
    runner, info = exported(charlm_run, capsys)
    task, model, _ = load_run(charlm_run)
    text = "ROMEO:\nBut soft, what light"
    ids = ids_from_json(info, text)
    assert ids == task.vocab.encode(text)
    with torch.no_grad():
        expected = model(torch.tensor([ids]))[0][0].softmax(-1).numpy()  # (T, V): each next character
    whole = runner.run(["probabilities"], {"tokens": np.array([ids])})[0][0]
    np.testing.assert_allclose(whole, expected, rtol=0, atol=ATOL)
    feeds: dict = {}
    for t, token in enumerate(ids):  # one character per call, the state fed back
        probabilities, h_n, c_n = runner.run(["probabilities", "h_n", "c_n"],
                                             {"tokens": np.array([[token]]), **feeds})
        np.testing.assert_allclose(probabilities[0, -1], expected[t], rtol=0, atol=ATOL)
        feeds = {"h0": h_n, "c0": c_n}
    next_character = info["vocabulary"]["tokens"][int(whole[-1].argmax())]
    assert next_character == task.vocab.tokens[int(expected[-1].argmax())]


def test_a_run_of_feature_vectors_exports_too(tmp_path, capsys):
    run = train(tmp_path / "run", "adding", "--length", "12", "--model", "gru")
    model_path = tmp_path / "adding.onnx"
    assert main(["export", str(run), str(model_path), "--opset", "18"]) == 0
    _, model, _ = load_run(run)
    x = torch.rand(3, 12, 2)
    with torch.no_grad():
        expected, h_n = model(x)
    got = session(model_path).run(None, {"features": x.numpy()})
    np.testing.assert_allclose(got[0], expected.numpy(), rtol=0, atol=ATOL)
    np.testing.assert_allclose(got[1], h_n.numpy(), rtol=0, atol=ATOL)
    info = json.loads((tmp_path / "adding.json").read_text(encoding="utf-8"))
    assert "vocabulary" not in info and set(info["inputs"]) == {"features", "lengths", "h0"}


@pytest.mark.parametrize("args, message", [
    (["{tmp}/missing", "{tmp}/m.onnx"], "is not a run directory (no config.json)"),
    (["{run}", "{tmp}/m.json"], "the model cannot be a .json file"),
    (["{run}", "{tmp}/m.onnx", "--opset", "99"], "opset must be a whole number from 17"),
    (["{run}", "{tmp}/no/such/folder/m.onnx"], "No such file or directory"),
])
def test_bad_exports_say_what_is_wrong_in_one_line(args, message, charlm_run, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{run}", str(charlm_run)) for a in args]
    assert main(["export", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("gated export: error: ") and message in err and err.count("\n") == 1
    assert not list(tmp_path.glob("m.*"))
