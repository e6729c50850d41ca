"""gated explain and the reading behind it, on the tour's tiny models (trained on real, cut-down data)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import browser
from gated.cli import main
from gated.reading import read
from gated.runs import load_run

HOSTILE = 'This cereal is <script>alert("pwned")</script> great & "crunchy" <b>really</b>'


@pytest.fixture(scope="module")
def sentiment_run(report: Path) -> Path:
    return report.parent / "models" / "sentiment-lstm"


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_running_prediction_is_the_model_on_each_prefix(report: Path, cell):
    task, model, _ = load_run(report.parent / "models" / f"sentiment-{cell}")
    text = "the tea was not what i expected but the price was great"
    reading = read(task, model, text)
    positive = task.label_names.index(reading.target)
    for n in range(1, len(reading.tokens) + 1):
        alone = task.predict(model, [" ".join(reading.tokens[:n])])[0, positive].item()
        assert reading.prediction[n - 1] == pytest.approx(alone, abs=1e-5)
    assert reading.influence.sum() == pytest.approx(reading.prediction[-1] - 0.5, abs=1e-6)
    assert reading.confidence == pytest.approx(task.predict(model, [text])[0].max().item(), abs=1e-5)


def test_reading_steps_end_in_the_models_final_state(sentiment_run: Path):
    task, model, _ = load_run(sentiment_run)
    reading = read(task, model, "good coffee, fast delivery")
    ids = torch.tensor([reading.ids])
    with torch.no_grad():
        _, (h_n, c_n) = model(ids)
    assert np.allclose(reading.steps["hidden"][-1], h_n[-1, 0].numpy(), atol=1e-6)
    assert np.allclose(reading.steps["cell"][-1], c_n[-1, 0].numpy(), atol=1e-6)
    assert set(reading.steps) == {"input", "forget", "candidate", "output", "cell", "hidden"}


def test_telling_units_are_those_whose_loss_moves_the_verdict_most(sentiment_run: Path):
    task, model, _ = load_run(sentiment_run)
    reading = read(task, model, "awful stale chips, never again", units=model.config.hidden_size)
    h = torch.from_numpy(reading.steps["hidden"][-1])
    w = model.head.weight.detach()
    margin = lambda hidden: float((w[1] - w[0]) @ hidden)  # noqa: E731 - the verdict's logit difference

    def moved(unit: int) -> float:
        ablated = h.clone()
        ablated[unit] = 0
        return abs(margin(h) - margin(ablated))

    moves = [moved(u) for u in reading.units]
    assert moves == sorted(moves, reverse=True)
    assert sorted(reading.units) == list(range(model.config.hidden_size))


def test_character_model_reading(report: Path):
    task, model, _ = load_run(report.parent / "models" / "charlm-ln-lstm")
    reading = read(task, model, "ROMEO\nWhat, ho!")
    assert reading.tokens == list("ROMEO\nWhat, ho!") and reading.verdict is None
    assert np.isnan(reading.prediction[0])
    assert np.all((reading.prediction[1:] > 0) & (reading.prediction[1:] < 1))


def test_explain_writes_png_and_a_page_that_shows_html_as_text(sentiment_run: Path, tmp_path, capsys):
    html, png = tmp_path / "explain.html", tmp_path / "explain.png"
    assert main(["explain", str(sentiment_run), HOSTILE, "--html", str(html), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "LSTM read" in out and "forget" in out and "alert" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<script>" not in html.read_text(encoding="utf-8")
    browser.require_chromium()
    seen = browser.open_page(html)
    assert seen.dialogs == [] and seen.script_count == 0
    assert seen.console_errors == [] and seen.failed_requests == []
    assert HOSTILE in seen.text
    assert seen.images and all(width > 0 for _, width in seen.images)


def test_explain_in_german_labels_the_figure_in_german(sentiment_run: Path, tmp_path):
    html = tmp_path / "de.html"
    assert main(["explain", str(sentiment_run), "gut", "--html", str(html), "--lang", "de"]) == 0
    assert '<html lang="de">' in html.read_text(encoding="utf-8")


@pytest.mark.parametrize("args, message", [
    (["models/adding-lstm-5", "hello"], "only text models"),
    (["models/sentiment-lstm", "!!! ..."], "no tokens"),
    (["models/sentiment-lstm", "fine", "--units", "0"], "--units must be at least 1"),
    (["nowhere", "fine"], "is not a run directory"),
])
def test_explain_errors_say_what_is_wrong(report: Path, args, message, capsys, monkeypatch):
    monkeypatch.chdir(report.parent)
    assert main(["explain", *args]) == 1
    assert message in capsys.readouterr().err


def test_missing_matplotlib_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    monkeypatch.delitem(sys.modules, "gated.viz.style", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'gated\[report\]'"):
        import gated.viz.style  # noqa: F401


@pytest.fixture(scope="module")
def default_sentiment_run(tiny_data, tmp_path_factory) -> Path:
    """A run with gated train sentiment's own defaults (a bidirectional LSTM), trained for two steps."""
    out = tmp_path_factory.mktemp("default") / "run"
    args = ["train", "sentiment", "--data", str(tiny_data["sentiment"]), "--steps", "2", "--out", str(out), "--quiet"]
    assert main(args) == 0
    return out


def test_explain_works_on_a_default_bidirectional_sentiment_run(default_sentiment_run: Path, tmp_path, capsys):
    png = tmp_path / "bi.png"
    assert main(["explain", str(default_sentiment_run), "crunchy and fresh, but stale by day two", "--png", str(png)]) == 0
    assert "LSTM read 8 words" in capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_backward_direction_is_shown_with_its_own_telling_units(default_sentiment_run: Path):
    from gated.explain import panels
    from gated.viz.lang import labels

    task, model, _ = load_run(default_sentiment_run)
    assert model.config.bidirectional
    reading = read(task, model, "awful stale chips, never again", units=model.config.hidden_size)
    shown = panels(reading, labels("en"))
    assert len(shown) == 8 and all("backward" in panel.title for panel in shown[4:])
    # The backward direction's verdict comes from its state after reading the first word.
    size = model.config.hidden_size
    h = torch.from_numpy(reading.backward["hidden"][0])
    ids = torch.tensor([reading.ids])
    with torch.no_grad():
        h_n = model(ids)[1][0]
    assert torch.allclose(h, h_n[-1, 0], atol=1e-6)  # h_n[-1]: the top layer's backward direction
    w = model.head.weight.detach()[:, size:]
    moved = [abs(float((w[1] - w[0])[u] * h[u])) for u in reading.backward_units]
    assert moved == sorted(moved, reverse=True)
