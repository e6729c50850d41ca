"""gated explain RUN FILE.wav: the gates over a recording's frames, checked against torch.nn, drawn in seconds."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from shared_data import FSDD, needs_fsdd
from test_listen import digits, speech_runs  # noqa: F401 - fixtures: tiny runs on real recordings

from gated.cli import main
from gated.data import audio
from gated.explain import audio_figure
from gated.hearing import hear, scale
from gated.runs import load_run
from gated.viz.lang import labels

pytestmark = needs_fsdd
WAV = FSDD / "2_theo_0.wav"


def _torch_twin(model) -> torch.nn.LSTM:
    """torch.nn's LSTM with the run's weights: the oracle for what the gated layer computes."""
    rnn = model.rnn
    twin = torch.nn.LSTM(rnn.input_size, rnn.hidden_size, num_layers=rnn.num_layers, batch_first=True,
                         bidirectional=rnn.bidirectional)
    twin.load_state_dict(rnn.state_dict())
    return twin.eval()


@pytest.mark.parametrize("name", ["uni", "bi"])
def test_the_states_heard_are_torch_nns_and_the_answer_is_predicts(speech_runs, name):  # noqa: F811
    task, model, _ = load_run(speech_runs[name])
    samples = audio.read_wav(WAV)
    hearing = hear(task, model, samples)
    frames = audio.features(samples)
    np.testing.assert_allclose(hearing.features, frames, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        out, (_, c_n) = _torch_twin(model)(scale(task, frames)[None])
    size = model.rnn.hidden_size
    np.testing.assert_allclose(hearing.steps["hidden"], out[0, :, :size].numpy(), atol=1e-5)
    np.testing.assert_allclose(hearing.steps["cell"][-1], c_n[0, 0].numpy(), atol=1e-5)
    if name == "bi":  # the backward direction, stored in time order, as torch.nn stores it
        np.testing.assert_allclose(hearing.backward["hidden"], out[0, :, size:].numpy(), atol=1e-5)
    else:
        assert hearing.backward is None
    for gate in ("input", "forget", "output"):
        assert hearing.steps[gate].shape == (len(frames), size)
        assert 0 < hearing.steps[gate].min() and hearing.steps[gate].max() < 1
    np.testing.assert_allclose(hearing.probabilities[-1], task.predict(model, [str(WAV)])[0].numpy(), atol=1e-5)
    assert hearing.seconds == pytest.approx(len(samples) / audio.SAMPLE_RATE)


def test_the_figure_runs_in_seconds_with_the_features_beneath(speech_runs):  # noqa: F811
    task, model, _ = load_run(speech_runs["bi"])
    hearing = hear(task, model, audio.read_wav(WAV), units=3)
    t = labels("en")
    fig = audio_figure(hearing, t)
    bottom = next(ax for ax in fig.axes if ax.get_xlabel() == t["audio.x"])
    spectrum = bottom.get_images()[0]
    assert spectrum.get_array().shape == (audio.N_MFCC, len(hearing.starts))  # channels up, frames along
    left, right = bottom.get_xlim()
    assert 0 <= left < 0.03 and hearing.seconds - 0.03 < right <= hearing.seconds
    assert bottom.get_title(loc="left") == t["audio.mfcc"]
    # Every gate panel shares the time axis: its columns lie where the features' columns lie.
    gate_images = [ax.get_images()[0] for ax in fig.axes if ax.get_images() and ax is not bottom]
    assert len(gate_images) == 2 * len(hearing.kind.shown)  # both directions
    assert all(image.get_extent()[:2] == spectrum.get_extent()[:2] for image in gate_images)


def test_explain_on_a_wav_prints_a_row_per_frame_and_writes_the_figure_and_page(speech_runs, tmp_path,  # noqa: F811
                                                                                 capsys):
    run = speech_runs["uni"]
    assert main(["predict", str(run), str(WAV)]) == 0
    label = capsys.readouterr().out.split("\t")[0]
    png, html = tmp_path / "why.png", tmp_path / "why.html"
    assert main(["explain", str(run), str(WAV), "--png", str(png), "--html", str(html), "--units", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(rf"LSTM heard (\d+) frames \([\d.]+ s\) of {re.escape(str(WAV))}: {label} \(p = [\d.]+\)",
                        lines[0])
    frames = len(audio.features(audio.read_wav(WAV)))
    assert int(lines[0].split()[2]) == frames
    assert lines[1].split()[:4] == ["time", "(s)", "answer", "p"]
    rows = [line for line in lines[2:] if not line.startswith("wrote ")]
    assert len(rows) == frames and rows[-1].split()[1] == label
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = html.read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and page.count("<tr>") == frames + 1


def test_explain_speaks_german_on_request(speech_runs, tmp_path):  # noqa: F811
    html = tmp_path / "warum.html"
    assert main(["explain", str(speech_runs["uni"]), str(WAV), "--html", str(html), "--lang", "de"]) == 0
    page = html.read_text(encoding="utf-8")
    assert '<html lang="de">' in page and labels("de")["audio.title"] in page


def test_a_bad_wav_is_one_line_naming_it(speech_runs, tmp_path, capsys):  # noqa: F811
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"\x00" * 100)
    assert main(["explain", str(speech_runs["uni"]), str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{bad}: not a PCM WAV file" in err
