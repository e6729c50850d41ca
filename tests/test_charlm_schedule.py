"""The learning-rate schedule under a time limit, and the charlm task's defaults (issue 12)."""

from __future__ import annotations

import pytest

from gated.models import SequenceModel
from gated.tasks import TASKS
from gated.train import Trainer, TrainSettings

TOTAL = 1000  # optimizer steps the epochs would take


def _trainer(tmp_path, **settings) -> Trainer:
    task = TASKS["adding"]({})
    model = SequenceModel(task.model_config("lstm", {"hidden_size": 4}))
    return Trainer(task, model, TrainSettings(lr=1.0, warmup=10, **settings), tmp_path, quiet=True)


def _rate(trainer: Trainer, step: int, seconds: float = 0.0) -> float:
    trainer.state.step = step
    return trainer.learning_rate(TOTAL, seconds)


def test_a_time_limit_runs_the_decay_by_time_where_time_is_further_along(tmp_path):
    timed, untimed = _trainer(tmp_path / "a", time_limit=100.0), _trainer(tmp_path / "b")
    # 30% of the time gone at step 100: the rate the step schedule gives 30% of the way after warm-up.
    at_30_percent = 10 + round(0.3 * (TOTAL - 10))
    assert _rate(timed, 100, seconds=30.0) == pytest.approx(_rate(untimed, at_30_percent))
    # Out of time: the rate the step schedule ends at, a tenth of the peak.
    assert _rate(timed, 100, seconds=100.0) == pytest.approx(_rate(untimed, TOTAL)) == pytest.approx(0.1)
    assert _rate(timed, 100, seconds=250.0) == pytest.approx(0.1)


def test_steps_further_along_than_time_keep_the_step_schedule(tmp_path):
    timed, untimed = _trainer(tmp_path / "a", time_limit=100.0), _trainer(tmp_path / "b")
    assert _rate(timed, 700, seconds=5.0) == _rate(untimed, 700)
    assert _rate(timed, 5, seconds=50.0) == _rate(untimed, 5)  # warm-up counts steps, not seconds


def test_without_a_time_limit_seconds_do_not_matter(tmp_path):
    untimed = _trainer(tmp_path)
    assert _rate(untimed, 300, seconds=1e9) == _rate(untimed, 300, seconds=0.0)
    assert _rate(untimed, 300) > _rate(untimed, 600) > _rate(untimed, TOTAL)
