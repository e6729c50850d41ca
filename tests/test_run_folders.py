"""Run folders under stress: two processes on one folder, kills at any moment, resume options, damaged
files, outputs that cannot be written. Every user error is one line on stderr, never a traceback."""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gated import checkpoint as ckpt
from gated.cli import main
from gated.tasks import AddingTask
from gated.train import Trainer

GATED = [sys.executable, "-m", "gated.cli"]
TINY = ["adding", "--hidden", "4", "--length", "10", "--steps-per-epoch", "3", "--batch-size", "4"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def gated(capsys, *argv: str) -> tuple[int, str]:
    """Run the command in this process; returns its exit code and stderr, which must hold no traceback."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


def train_tiny(capsys, out: Path, *extra: str) -> tuple[int, str]:
    return gated(capsys, "train", *TINY, "--out", out, "--quiet", "--steps", "3", *extra)


def start(out: Path, *extra: str, **popen) -> subprocess.Popen:
    """A training process that runs until it is killed (or a limit in ``extra`` stops it)."""
    argv = [*GATED, "train", *TINY, "--out", str(out), "--quiet", "--epochs", "100000", "--threads", "1", *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, **popen)


def wait_for(condition, process: subprocess.Popen | None = None, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert process is None or process.poll() is None, process.communicate()
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def stop(process: subprocess.Popen) -> tuple[str, str]:
    if process.poll() is None:
        process.kill()
    out, err = process.communicate(timeout=30)
    assert "Traceback" not in err, err
    return out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished tiny GRU run with best and last checkpoints; tests copy it before changing anything."""
    out = tmp_path_factory.mktemp("runs") / "gru"
    assert main(["train", *TINY, "--model", "gru", "--out", str(out), "--quiet", "--steps", "3"]) == 0
    return out


@pytest.fixture
def run(trained, tmp_path) -> Path:
    copy = tmp_path / "run"
    copy.mkdir()
    for file in trained.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    return copy


# -- 1. one process per folder -------------------------------------------------------------------


def test_two_processes_on_one_folder_one_trains_and_the_other_is_refused(tmp_path):
    out = tmp_path / "R"
    first = start(out, "--seed", "1", "--model", "gru", "--checkpoint-every", "1")
    second = start(out, "--seed", "2", "--model", "rnn", "--checkpoint-every", "1")
    try:
        wait_for(lambda: first.poll() is not None or second.poll() is not None, seconds=90)
        loser, winner = (first, second) if first.poll() is not None else (second, first)
        _, err = stop(loser)
        assert loser.returncode == 1, err
        assert "in use by another gated process" in err and err.count("\n") == 1
        assert winner.poll() is None, "the process that owns the folder goes on training"
        wait_for(lambda: (out / ckpt.LAST).exists(), winner)
    finally:
        for process in (first, second):
            stop(process)
    seed, cell = (1, "gru") if winner is first else (2, "rnn")
    config = json.loads((out / ckpt.CONFIG).read_text())
    assert (config["train"]["seed"], config["model"]["cell"]) == (seed, cell)
    # Killed while holding the folder: the kernel released the lock, so the run goes on.
    _, meta = ckpt.load_tensors(out / ckpt.LAST)
    assert main(["train", "adding", "--out", str(out), "--resume", "--quiet",
                 "--steps", str(meta["progress"]["step"] + 2)]) == 0
    assert not list(out.glob(".*.tmp")), "a write the kill cut short leaves nothing behind after the next start"


# -- 2. a run that stopped before its first checkpoint -------------------------------------------


def test_a_kill_at_a_random_moment_leaves_a_folder_that_resumes_or_restarts(tmp_path, capsys):
    delay = random.Random(os.getpid()).uniform(0.0, 6.0)  # before, during or after startup and the first writes
    out = tmp_path / "R"
    process = start(out, "--checkpoint-every", "1")
    time.sleep(delay)
    stop(process)
    if (out / ckpt.LAST).exists():
        _, meta = ckpt.load_tensors(out / ckpt.LAST)
        code, err = gated(capsys, "train", "adding", "--out", out, "--resume", "--quiet",
                          "--steps", meta["progress"]["step"] + 1)
    else:
        code, err = train_tiny(capsys, out)
    assert code == 0, f"killed after {delay:.1f} s: {err}"
    assert json.loads((out / ckpt.METRICS).read_text())["steps"] >= 1


def test_a_loss_of_inf_at_step_one_leaves_a_folder_that_trains_again(tmp_path, capsys, monkeypatch):
    out = tmp_path / "R"
    with monkeypatch.context() as patch:
        patch.setattr(AddingTask, "loss", lambda self, output, batch: output.sum() * float("inf"))
        code, err = train_tiny(capsys, out)
    assert code == 1 and "the loss became" in err and "train again with a lower --lr" in err
    assert (out / ckpt.CONFIG).exists() and not (out / ckpt.LAST).exists()

    code, err = gated(capsys, "train", "adding", "--out", out, "--resume")
    assert code == 1 and "holds no checkpoint to resume" in err and "without --resume" in err
    code, err = train_tiny(capsys, out, "--model", "gru")
    assert code == 0, err
    assert json.loads((out / ckpt.CONFIG).read_text())["model"]["cell"] == "gru"


@pytest.mark.parametrize("flag, value, setting", [
    ("--batch-size", "0", "batch"), ("--checkpoint-every", "0", "checkpoint"), ("--epochs", "0", "epochs"),
    ("--lr", "0", "lr"), ("--lr", "nan", "lr"), ("--hidden", "0", "hidden"),
])
def test_bad_options_are_refused_before_anything_is_written(tmp_path, capsys, flag, value, setting):
    code, err = train_tiny(capsys, tmp_path / "R", flag, value)
    assert code == 1 and setting in err
    assert not (tmp_path / "R").exists()


# -- 3. what --resume does with the options given --------------------------------------------------


def test_resume_applies_learning_rate_clipping_and_limits(run, capsys):
    code, err = gated(capsys, "train", "adding", "--model", "gru", "--hidden", "4", "--out", run, "--resume",
                      "--quiet", "--steps", "5", "--lr", "1e-4", "--clip", "0.5", "--weight-decay", "0")
    assert code == 0, err
    train = json.loads((run / ckpt.CONFIG).read_text())["train"]
    assert (train["lr"], train["clip"], train["weight_decay"], train["steps"]) == (1e-4, 0.5, 0.0, 5)
    assert json.loads((run / ckpt.METRICS_LOG).read_text().splitlines()[-1])["lr"] <= 1e-4
    _, meta = ckpt.load_tensors(run / ckpt.LAST)
    assert meta["progress"]["step"] == 5
    assert {group["weight_decay"] for group in meta["optimizer"]["param_groups"]} == {0.0}


@pytest.mark.parametrize("argv, message", [
    # Named by the flag the user typed, not by the setting's name inside config.json.
    (["adding", "--hidden", "8"], "--hidden cannot change on resume"),
    (["adding", "--model", "lstm"], "--model cannot change on resume: this run has 'gru'"),
    (["adding", "--length", "20"], "--length cannot change on resume"),
    (["adding", "--batch-size", "8"], "--batch-size cannot change on resume"),
    (["adding", "--seed", "7"], "--seed cannot change on resume"),
    (["copy"], "holds a run of the adding task, not copy"),
])
def test_resume_refuses_what_the_checkpoint_cannot_follow(run, capsys, argv, message):
    before = (run / ckpt.CONFIG).read_text()
    code, err = gated(capsys, "train", *argv, "--out", run, "--resume", "--quiet", "--steps", "5")
    assert code == 1 and message in err
    assert (run / ckpt.CONFIG).read_text() == before


def test_the_advice_after_a_loss_of_nan_works(run, capsys, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(AddingTask, "loss", lambda self, output, batch: output.sum() * float("nan"))
        code, err = gated(capsys, "train", "adding", "--out", run, "--resume", "--steps", "5")
    assert code == 1 and "--resume --lr" in err
    code, err = gated(capsys, "train", "adding", "--out", run, "--resume", "--quiet", "--steps", "5", "--lr", "1e-4")
    assert code == 0, err


def test_a_checkpoint_of_weights_that_are_not_finite_is_never_written(run, capsys, monkeypatch):
    before = (run / ckpt.LAST).read_bytes()
    real_step = Trainer._step

    def step_that_breaks_the_weights(self, *args):  # the loss was finite; the weights are not
        loss = real_step(self, *args)
        with torch.no_grad():
            next(self.model.parameters()).fill_(float("inf"))
        return loss

    monkeypatch.setattr(Trainer, "_step", step_that_breaks_the_weights)
    code, err = gated(capsys, "train", "adding", "--out", run, "--resume", "--steps", "5", "--checkpoint-every", "1")
    assert code == 1 and "weights stopped being finite" in err and "--resume --lr" in err
    assert (run / ckpt.LAST).read_bytes() == before


# -- 5. damaged files ------------------------------------------------------------------------------


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00not a safetensors file" * 10)


def _edit_config(change):
    def edit(run: Path) -> None:
        config = json.loads((run / ckpt.CONFIG).read_text())
        change(config)
        (run / ckpt.CONFIG).write_text(json.dumps(config))
    return edit


@pytest.mark.parametrize("damage, file, problem", [
    (lambda run: _cut(run / ckpt.LAST), ckpt.LAST, "damaged"),
    (lambda run: _garbage(run / ckpt.LAST), ckpt.LAST, "damaged"),
    (lambda run: ckpt.save_tensors(run / ckpt.LAST, {"model.x": torch.zeros(1)}, {}), ckpt.LAST,
     "missing tensor"),
    (lambda run: ckpt.save_tensors(run / ckpt.LAST, ckpt.load_tensors(run / ckpt.BEST)[0], {}), ckpt.LAST,
     "optimizer state or progress cannot be restored"),
    (lambda run: (run / ckpt.CONFIG).write_text("{not json"), ckpt.CONFIG, "not valid JSON"),
    (lambda run: (run / ckpt.CONFIG).write_bytes(b"\xff\xfe"), ckpt.CONFIG, "not valid JSON"),
    (lambda run: (run / ckpt.CONFIG).write_text("[]"), ckpt.CONFIG, "not an object"),
    (_edit_config(lambda c: c.pop("model")), ckpt.CONFIG, "'model' is missing"),
    (_edit_config(lambda c: c["model"].pop("cell")), ckpt.CONFIG, "cell"),
    (_edit_config(lambda c: c["model"].update(colour="red")), ckpt.CONFIG, "unknown keys"),
    (_edit_config(lambda c: c["train"].update(epochs="ten")), ckpt.CONFIG, "epochs must be a whole number"),
    (_edit_config(lambda c: c["train"].update(speed=2)), ckpt.CONFIG, "speed"),
    (_edit_config(lambda c: c.update(task="poetry")), ckpt.CONFIG, "unknown task 'poetry'"),
    (_edit_config(lambda c: c["model"].update(hidden_size=8)), ckpt.LAST, "does not hold the model"),
])
def test_a_damaged_file_is_named_with_what_is_wrong(run, capsys, damage, file, problem):
    damage(run)
    code, err = gated(capsys, "train", "adding", "--out", run, "--resume", "--quiet", "--steps", "5")
    assert code == 1 and str(run / file) in err and problem in err
    assert err.count("\n") == 1


def test_loading_falls_back_to_the_last_weights_when_the_best_are_damaged(run, capsys):
    _cut(run / ckpt.BEST)
    code, err = gated(capsys, "evaluate", run)
    assert code == 0
    assert f"note: {run / ckpt.BEST} is damaged" in err and f"using {ckpt.LAST} instead" in err
    _garbage(run / ckpt.LAST)
    code, err = gated(capsys, "evaluate", run)
    assert code == 1 and str(run / ckpt.LAST) in err


# -- 6. outputs that cannot be written -------------------------------------------------------------


def test_out_that_cannot_be_a_folder_is_one_line(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    for out, problem in [(a_file, "is a file, not a folder"), (a_file / "run", "Not a directory"),
                         ("/proc/gated-run", "/proc/gated-run")]:  # what really stops root: no folder there
        code, err = train_tiny(capsys, out)
        assert code == 1 and problem in err and err.count("\n") == 1
    assert a_file.read_text() == "mine"


def test_a_config_json_that_is_not_a_run_is_never_overwritten(tmp_path, capsys):
    (tmp_path / ckpt.CONFIG).write_text('{"editor": "vim"}')
    code, err = train_tiny(capsys, tmp_path)
    assert code == 1 and "is not a gated run's" in err
    assert json.loads((tmp_path / ckpt.CONFIG).read_text()) == {"editor": "vim"}


def _file_size_limit(limit: int):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(run):
    before = (run / ckpt.LAST).read_bytes()
    assert len(before) > 4000 > max(len((run / name).read_bytes()) for name in (ckpt.CONFIG, ckpt.BEST))
    result = subprocess.run([*GATED, "train", "adding", "--out", str(run), "--resume", "--quiet", "--steps", "5"],
                            check=False, capture_output=True, text=True, timeout=120, env=ENV,
                            preexec_fn=_file_size_limit(4000))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"cannot use {run / ckpt.LAST}: File too large" in result.stderr
    assert (run / ckpt.LAST).read_bytes() == before and not list(run.glob(".*.tmp"))


def test_leftovers_of_a_write_cut_short_are_removed_on_the_next_start(run, capsys):
    stray = run / f".{ckpt.LAST}.abc123.tmp"
    stray.write_bytes(b"half a checkpoint")
    code, err = gated(capsys, "train", "adding", "--out", run, "--resume", "--quiet", "--steps", "4")
    assert code == 0, err
    assert not stray.exists()


def test_explain_png_pointing_at_a_folder_is_one_line(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("to be or not to be, that is the question. " * 40)
    out = tmp_path / "lm"
    code, err = gated(capsys, "train", "charlm", "--data", text, "--out", out, "--quiet", "--hidden", "4",
                      "--embedding", "4", "--seq-len", "8", "--steps", "2")
    assert code == 0, err
    code, err = gated(capsys, "explain", out, "to be", "--png", tmp_path)
    assert code == 1 and str(tmp_path) in err and err.count("\n") == 1
