"""The runs layer without the command line: plans and their defaults, training, resuming, loading, old configs."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from gated import checkpoint as ckpt
from gated import runs
from gated.runs import Plan, RunError
from gated.tasks import AddingTask
from gated.train import TrainSettings

SMALL = Plan("adding", "gru", options={"length": 6, "steps_per_epoch": 5}, model={"hidden_size": 4},
             training={"epochs": 3})


def small(**training) -> Plan:
    return replace(SMALL, training={**SMALL.training, **training})


def test_a_setting_comes_from_the_plan_else_the_task_else_the_general_default():
    general = TrainSettings()
    sentiment = Plan("sentiment").settings()
    assert (sentiment.epochs, sentiment.patience) == (6, 2)  # the task's own
    assert (sentiment.batch_size, sentiment.lr) == (general.batch_size, general.lr)  # the task leaves them
    assert Plan("sentiment", training={"patience": 5}).settings().patience == 5

    config = AddingTask({}).model_config("gru", {"num_layers": 2})
    assert config.num_layers == 2  # chosen
    assert config.hidden_size == 64  # the adding task's
    assert config.embedding_size == 64 and config.dropout == 0.0  # ModelConfig's own
    assert (config.input_size, config.output_size, config.readout) == (2, 1, "last")  # what the data fixes


def test_speech_on_recordings_takes_the_recordings_defaults_unless_told_otherwise():
    from gated.tasks import SpeechTask

    vowels = Plan("speech").settings()
    recordings = Plan("speech", options={"data": "some/folder"}).settings()
    assert (vowels.epochs, vowels.batch_size) == (SpeechTask.train_defaults["epochs"],
                                                  SpeechTask.train_defaults["batch_size"])
    assert (recordings.epochs, recordings.batch_size) == (SpeechTask.recordings_defaults["epochs"],
                                                          SpeechTask.recordings_defaults["batch_size"])
    assert recordings.epochs != vowels.epochs
    assert Plan("speech", options={"data": "f"}, training={"epochs": 3}).settings().epochs == 3  # given wins


def test_a_new_run_is_prepared_once_and_a_resumed_one_is_not(tmp_path, monkeypatch):
    prepared = []
    monkeypatch.setattr(AddingTask, "prepare", lambda self, model: prepared.append(model), raising=False)
    out = tmp_path / "run"
    runs.train(small(steps=2), out, quiet=True)
    assert len(prepared) == 1 and prepared[0].config.cell == "gru"
    runs.resume(out, quiet=True, steps=4)
    assert len(prepared) == 1  # a resumed run starts from its checkpoint, not from prepare


def test_a_choice_that_contradicts_the_task_is_refused_not_ignored():
    assert AddingTask({}).model_config("lstm", {"readout": "last"}).readout == "last"
    with pytest.raises(ValueError, match="the adding task needs readout 'last', not 'max'"):
        AddingTask({}).model_config("lstm", {"readout": "max"})


@pytest.mark.parametrize("plan, message", [
    (lambda: Plan("poetry"), "unknown task 'poetry'"),
    (lambda: Plan("adding", options={"delay": 3}), "unknown option of the adding task 'delay'"),
    (lambda: Plan("adding", model={"hidden": 8}), "unknown model setting 'hidden'"),
    (lambda: Plan("adding", training={"epoch": 2}), "unknown training setting 'epoch'"),
])
def test_a_plan_refuses_a_setting_it_would_otherwise_drop(plan, message):
    with pytest.raises(ValueError, match=message):
        plan()


def test_train_resume_and_load_a_run(tmp_path):
    out = tmp_path / "run"
    first = runs.train(small(steps=7), out, quiet=True)
    assert (first.reason, first.steps, first.main) == ("budget", 7, True)
    assert json.loads((out / ckpt.METRICS).read_text())["steps"] == 7 == first.summary["steps"]
    with pytest.raises(RunError, match="already holds a run"):
        runs.train(SMALL, out)
    again = runs.resume(out, quiet=True, steps=12)
    assert (again.reason, again.steps) == ("budget", 12)
    task, model, config = runs.load_run(out, "adding")
    assert task.options["length"] == 6 and model.config.cell == "gru" and model.config.hidden_size == 4
    assert not model.training
    with pytest.raises(RunError, match="holds a model of the adding task; this command needs one of the charlm task"):
        runs.load_run(out, "charlm")


def test_a_run_written_before_a_setting_existed_still_loads_and_resumes(tmp_path):
    out = tmp_path / "run"
    runs.train(small(steps=4), out, quiet=True)
    config = json.loads((out / ckpt.CONFIG).read_text())
    del config["train"]["target"]  # config.json as gated wrote it before training could stop at a target
    ckpt.atomic_write_json(out / ckpt.CONFIG, config)
    assert runs.load_run(out)[1].config.hidden_size == 4
    assert runs.resume(out, quiet=True, steps=6).steps == 6


def test_training_stops_once_the_validation_score_beats_the_target(tmp_path):
    outcome = runs.train(small(target=100.0), tmp_path / "run", quiet=True)
    assert (outcome.reason, outcome.steps) == ("target", 5)  # one epoch of 5 steps, then any MSE is below 100
    assert runs.train(small(target=0.0), tmp_path / "other", quiet=True).reason == "finished"


def test_a_plan_without_a_cell_gets_its_tasks_default():
    assert Plan("charlm").cell == "ln-lstm" and Plan("adding").cell == "lstm" and Plan("sentiment").cell == "lstm"
    assert Plan("charlm", "gru").cell == "gru"


def test_a_plan_as_json_is_plain_and_tells_plans_apart(tmp_path):
    plan = Plan("charlm", options={"data": tmp_path / "plays.txt"})
    assert json.loads(json.dumps(plan.to_json())) == plan.to_json()
    assert plan.to_json()["options"]["data"] == str(tmp_path / "plays.txt")
    assert Plan("charlm", training={"lr": 0.5}).to_json() != Plan("charlm").to_json()
