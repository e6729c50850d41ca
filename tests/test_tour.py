"""gated tour on tiny models and real (cut-down) data: the report, its figures, reuse, and the browser view."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import browser
from gated.runs import Plan, load_run
from gated.tour import run_tour
from gated.tour.models import TINY, Job, finished, jobs, train_all
from gated.tour.prose import prose
from gated.tour.sections import SECTIONS, Tour, _step_source

EXPECTED_SECTIONS = ["squash", "rnn", "memory", "lstm", "steps", "gru", "shakespeare", "saturation", "speech",
                     "models"]


def test_sections_follow_the_guide_in_order():
    assert [build.__name__ for build in SECTIONS][:3] == ["squashing", "rnn_reads", "short_memory"]
    assert len(SECTIONS) == len(EXPECTED_SECTIONS)


def test_report_has_every_section_and_figure_files(report: Path):
    html = report.read_text(encoding="utf-8")
    assert re.findall(r'<section id="([^"]+)"', html) == EXPECTED_SECTIONS
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) >= 9
    for src in images:
        png = report.parent / src
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.with_suffix(".svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert "{" not in re.sub(r"<style>.*?</style>", "", html, flags=re.S), "a placeholder was left unfilled"


def test_report_renders_in_chromium(report: Path, tmp_path):
    browser.require_chromium()
    seen = browser.open_page(report, screenshot=tmp_path / "tour.png")
    assert seen.console_errors == []
    assert seen.failed_requests == []
    assert seen.section_ids == EXPECTED_SECTIONS
    assert seen.images and all(width > 0 for _, width in seen.images), seen.images
    assert seen.dialogs == [] and seen.script_count == 0
    assert "illustrated guide" in seen.title.lower()


def test_a_second_tour_reuses_its_models(report: Path, tiny_data):
    models = report.parent / "models"
    before = {run.name: (run / "metrics.json").stat().st_mtime_ns for run in models.iterdir()}
    run_tour(report.parent, scale=TINY, data=tiny_data, quiet=True)
    after = {run.name: (run / "metrics.json").stat().st_mtime_ns for run in models.iterdir()}
    assert before == after


def test_a_run_with_other_settings_is_not_reused(report: Path, tiny_data):
    job = next(j for j in jobs(TINY, tiny_data) if j.name == "adding-rnn-5")
    run = report.parent / "models" / job.name
    assert finished(run, job)
    changed = replace(job, plan=replace(job.plan, training={**job.plan.training, "lr": 0.5}))
    assert not finished(run, changed)
    assert not finished(run, replace(job, plan=replace(job.plan, cell="gru")))


def test_each_job_is_the_plan_of_its_name(tiny_data):
    found = {job.name: job.plan for job in jobs(TINY, tiny_data)}
    assert found["adding-gru-10"].cell == "gru" and found["adding-gru-10"].options["length"] == 10
    assert found["sentiment-rnn"].options["data"] == str(tiny_data["sentiment"])
    assert found["charlm-ln-lstm"].model == TINY.charlm.model


def test_the_code_shown_for_the_seven_steps_is_the_cells_code():
    import inspect

    from gated import cells

    steps = _step_source()
    assert [n for n, _ in steps] == list(range(1, 8))
    source = inspect.getsource(cells.lstm_cell)
    for number, code in steps:
        comment, *statements = code.splitlines()
        assert comment.startswith(f"# {number}.") and statements, code
        for line in code.splitlines():
            assert line in source
    assert "new_cell = forget * cell + input * candidate" in steps[4][1]
    assert not any("return" in code or "w_hr" in code for _, code in steps)  # after the steps: in none of them


def _six_steps(x):
    # 1. One.
    a = x
    # 2. Two.
    b = a
    # 3. Three.
    c = b
    # 4. Four.
    d = c
    # 5. Five.
    e = d
    # 6. Six.
    f = e
    return f


def _a_step_without_code(x):
    # 1. One.
    # 2. Two.
    a = x
    # 3. Three.
    a = a
    # 4. Four.
    a = a
    # 5. Five.
    a = a
    # 6. Six.
    a = a
    # 7. Seven.
    return a


@pytest.mark.parametrize("function", [_six_steps, _a_step_without_code])
def test_steps_that_cannot_be_found_stop_the_tour_loudly(function):
    with pytest.raises(RuntimeError, match="should mark the guide's seven steps"):
        _step_source(function)


@pytest.mark.parametrize("lang, counts, words", [
    ("en", [12], "12"),
    ("en", [12, 5], "12 in layer 1 and 5 in layer 2"),
    ("en", [3, 2, 1], "3 in layer 1, 2 in layer 2 and 1 in layer 3"),
    ("de", [12, 5], "12 in Schicht 1 und 5 in Schicht 2"),
])
def test_counts_per_layer_are_told_for_as_many_layers_as_the_model_has(tmp_path, lang, counts, words):
    tour = Tour(runs={}, out=tmp_path, t={}, p=prose(lang), lengths=(), lang=lang)
    assert tour.per_layer(counts) == words


@pytest.mark.parametrize("lang, layers, words", [
    ("en", 1, "192 units"),
    ("en", 2, "2 layers of 128 units"),
    ("de", 1, "192 Einheiten"),
    ("de", 2, "2 Schichten zu je 128 Einheiten"),
])
def test_a_models_size_is_told_without_layers_when_it_has_one(tmp_path, lang, layers, words):
    tour = Tour(runs={}, out=tmp_path, t={}, p=prose(lang), lengths=(), lang=lang)
    config = SimpleNamespace(num_layers=layers, hidden_size=192 if layers == 1 else 128)
    assert tour.units(config) == words


def test_the_saturation_section_counts_every_layer_of_the_model(report: Path):
    html = report.read_text(encoding="utf-8")
    layers = load_run(report.parent / "models" / "charlm-ln-lstm")[1].config.num_layers
    assert layers > 1  # TINY's charlm model has layers to count; with one, the count stands alone
    saturation = re.search(r'<section id="saturation">.*?</section>', html, re.S).group(0)
    assert all(f"in layer {k}" in saturation for k in range(1, layers + 1))
    assert f"in layer {layers + 1}" not in saturation


def test_unknown_language_is_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        run_tour(tmp_path, lang="fr", scale=TINY, quiet=True)
    assert not (tmp_path / "models").exists()


def test_a_model_that_fails_to_train_is_named_with_its_reason(tmp_path):
    broken = Job("sentiment-broken", Plan("sentiment", options={"data": str(tmp_path / "missing.csv")},
                                          training={"steps": 1}), 1)
    with pytest.raises(RuntimeError, match=r"sentiment-broken model failed: .*missing\.csv"):
        train_all(tmp_path / "models", [broken], workers=1, retrain=False, log=lambda message: None)


def test_the_german_report_reuses_the_models_and_speaks_german(report: Path, tiny_data, tmp_path):
    import shutil

    shutil.copytree(report.parent / "models", tmp_path / "models")  # its own folder: the English report stays
    german = run_tour(tmp_path, lang="de", scale=TINY, data=tiny_data, quiet=True)
    html = german.read_text(encoding="utf-8")
    assert '<html lang="de">' in html and "Vergessenstor" in html and "Inhalt" in html
    assert re.findall(r'<section id="([^"]+)"', html) == EXPECTED_SECTIONS
    steps = re.search(r'<section id="steps">.*?</section>', html, re.S).group(0)
    assert steps.count("<tr>") == 1 + 7  # the header and the guide's seven steps


def test_loss_gradient_reaches_only_the_inputs_the_recurrence_connects():
    import torch

    from gated.data import adding_problem
    from gated.models import ModelConfig, SequenceModel
    from gated.tour.sections import loss_gradient_by_input

    model = SequenceModel(ModelConfig("rnn", output_size=1, readout="last", input_size=2, hidden_size=8))
    x, y = adding_problem(16, 12, 0)
    with torch.no_grad():
        model.rnn.weight_hh_l0.zero_()  # no recurrence: only the last input reaches the loss
    cut = loss_gradient_by_input(model, x, y)
    assert cut[-1] == 1.0 and np.all(cut[:-1] == 0)
    with torch.no_grad():
        model.rnn.weight_hh_l0.copy_(0.5 * torch.eye(8))  # a recurrence that halves what it carries
    halved = loss_gradient_by_input(model, x, y)
    assert np.all(halved[:-1] > 0) and halved[0] < halved[5] < halved[-2]


def test_tour_into_a_file_is_refused_with_a_clear_message(tmp_path, capsys):
    from gated.cli import main

    target = tmp_path / "report.html"
    target.write_text("mine", encoding="utf-8")
    assert main(["tour", "--out", str(target)]) == 1
    assert "is a file; give a folder" in capsys.readouterr().err
    assert target.read_text(encoding="utf-8") == "mine"


def test_an_exception_inside_a_worker_comes_back_as_a_named_failure(tmp_path):
    blocked = tmp_path / "models"
    blocked.mkdir()
    (blocked / "adding-rnn-5").write_text("a file where the run folder should go", encoding="utf-8")
    job = Job("adding-rnn-5", Plan("adding", options={"length": 5}, training={"steps": 1}), 1)
    with pytest.raises(RuntimeError, match="adding-rnn-5 model failed: .*Error"):
        train_all(blocked, [job], workers=1, retrain=False, log=lambda message: None)


def test_the_replayed_step_must_agree_with_the_trace(report: Path):
    from gated.reading import read
    from gated.tour.sections import _replay_step

    task, model, _ = load_run(report.parent / "models" / "sentiment-lstm")
    reading = read(task, model, "the chips were stale but the salsa was great")
    _, step, drift = _replay_step(model, reading, 3)
    assert drift < 1e-5 and np.allclose(step.hidden.numpy(), reading.steps["hidden"][3], atol=1e-5)
    reading.steps["cell"][3] += 0.5  # a trace that no longer matches the code
    with pytest.raises(RuntimeError, match="disagrees with the trace"):
        _replay_step(model, reading, 3)


def test_the_speech_sections_running_answers_are_the_model_on_each_prefix(report: Path):
    import torch

    from gated.hearing import scale
    from gated.tour.sections import _running_answers

    task, model, _ = load_run(report.parent / "models" / "speech-lstm")
    assert not model.config.bidirectional  # an answer per frame that a live listener could give
    utterances = [scale(task, frames) for frames in task.splits["test"].frames[:3]]
    for x, answers in zip(utterances, _running_answers(model, utterances)):
        assert answers.shape == (len(x), len(task.label_names))
        for n in range(len(x)):
            with torch.no_grad():
                alone = model(x[None, : n + 1])[0][0].softmax(-1).numpy()
            np.testing.assert_allclose(answers[n], alone, atol=1e-5)
    html = report.read_text(encoding="utf-8")
    section = re.search(r'<section id="speech">.*?</section>', html, re.S).group(0)
    accuracy = json.loads((report.parent / "models" / "speech-lstm" / "metrics.json").read_text())["value"]
    assert f"{100 * accuracy:.0f}% of the 370 test recordings" in section
    assert 'src="figures/speech_frames.png"' in section


def test_an_answer_settles_at_the_frame_after_its_last_change():
    from gated.tour.sections import _settled

    assert _settled(np.eye(3)[[0, 1, 1, 2, 2]]) == 3
    assert _settled(np.eye(3)[[2, 2, 2]]) == 0
    assert _settled(np.eye(3)[[2, 0, 2, 1]]) == 3
