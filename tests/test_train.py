"""Training from the command line: metrics, checkpoints, resume after a kill, torchrun, errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gated import checkpoint as ckpt
from gated.cli import COMMANDS, main
from gated.runs import load_run

GATED = [sys.executable, "-m", "gated.cli"]
TINY_ADDING = ["adding", "--length", "12", "--hidden", "8", "--steps-per-epoch", "20", "--batch-size", "16"]


def _train(out: Path, *extra: str) -> int:
    return main(["train", *TINY_ADDING, "--out", str(out), "--quiet", *extra])


def _final_weights(run: Path) -> dict:
    tensors, _ = ckpt.load_tensors(run / ckpt.LAST)
    return ckpt.unprefixed("model", tensors)


@pytest.mark.parametrize("model", ["rnn", "lstm", "gru"])
def test_train_writes_a_complete_run(tmp_path, model):
    assert _train(tmp_path, "--model", model, "--epochs", "2") == 0
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert {"task", "model", "metric", "value", "baseline", "seconds", "parameters", "seed"} <= set(summary)
    assert summary["task"] == "adding" and summary["model"] == model and summary["metric"] == "mse"
    assert summary["baseline"]["name"] == "always predict 1.0"
    assert abs(summary["baseline"]["value"] - 1 / 6) < 0.02  # the analytic 1/6 on 2,000 test sequences
    assert summary["splits"]["test"]["mse"] == summary["value"]
    log = ckpt.read_jsonl(tmp_path / "metrics.jsonl")
    assert [row["epoch"] for row in log] == [1, 2] and all(row["split"] == "validation" for row in log)
    # The saved model reproduces the reported test score.
    task, model_, _ = load_run(tmp_path)
    assert task.scores(model_, "test", 64)["mse"] == pytest.approx(summary["value"], rel=1e-6)


def test_runs_are_repeatable_with_a_seed(tmp_path):
    _train(tmp_path / "a", "--epochs", "1", "--seed", "3")
    _train(tmp_path / "b", "--epochs", "1", "--seed", "3")
    for name, value in _final_weights(tmp_path / "a").items():
        assert torch.equal(value, _final_weights(tmp_path / "b")[name]), name


@pytest.mark.parametrize("task", ["adding", "charlm"])
def test_resume_continues_exactly_where_the_checkpoint_was(tmp_path, task):
    # charlm carries the recurrent state from batch to batch; the checkpoint must carry it too.
    if task == "adding":
        args = TINY_ADDING
    else:
        text = tmp_path / "text.txt"
        text.write_text("all the world's a stage, and all the men and women merely players\n" * 40, encoding="utf-8")
        # The charlm's default time limit out of the way: under one, how far the learning rate has decayed
        # depends on the seconds each step took, which no two runs repeat.
        args = ["charlm", "--data", str(text), "--hidden", "8", "--layers", "1", "--seq-len", "16", "--batch-size", "4",
                "--time-limit", "1e9"]

    def train(out, *extra):
        return main(["train", *args, "--out", str(out), "--quiet", *extra])

    # Uninterrupted: 3 epochs. Interrupted: stop after 25 steps (a checkpoint at 20), then resume.
    train(tmp_path / "whole", "--epochs", "3")
    train(tmp_path / "parts", "--epochs", "3", "--steps", "25", "--checkpoint-every", "10")
    assert ckpt.load_tensors(tmp_path / "parts" / ckpt.LAST)[1]["progress"]["step"] == 25
    assert main(["train", task, "--out", str(tmp_path / "parts"), "--resume", "--quiet", "--steps", "1000"]) == 0
    whole, parts = _final_weights(tmp_path / "whole"), _final_weights(tmp_path / "parts")
    for name in whole:
        torch.testing.assert_close(parts[name], whole[name], rtol=0, atol=0)


def _run_until_checkpoint(out: Path, *extra: str) -> subprocess.Popen:
    args = [*GATED, "train", *TINY_ADDING, "--out", str(out), "--epochs", "200", "--checkpoint-every", "5", *extra]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (out / ckpt.LAST).exists():
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, "no checkpoint within a minute"
        time.sleep(0.1)
    time.sleep(0.5)  # let it write a few more
    return process


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    process = _run_until_checkpoint(tmp_path)
    process.kill()  # SIGKILL: no chance to clean up
    process.wait()
    # A temporary file may be left behind; the files that count must be whole.
    json.loads((tmp_path / ckpt.CONFIG).read_text())
    _, meta = ckpt.load_tensors(tmp_path / ckpt.LAST)
    done = meta["progress"]["step"]
    assert done >= 5
    resumed = subprocess.run([*GATED, "train", "adding", "--out", str(tmp_path), "--resume", "--epochs", "1000",
                              "--steps", str(done + 10), "--quiet"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == done + 10


def test_ctrl_c_saves_and_says_how_to_resume(tmp_path):
    process = _run_until_checkpoint(tmp_path)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "--resume" in err
    _, meta = ckpt.load_tensors(tmp_path / ckpt.LAST)
    assert meta["progress"]["step"] > 0 and not (tmp_path / "metrics.json").exists()


def test_two_process_torchrun(tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # --standalone: torchrun rendezvous on a free local port, so a port held by another job cannot fail it.
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "gated.cli", "train", *TINY_ADDING,
         "--out", str(tmp_path), "--epochs", "8", "--quiet"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["world_size"] == 2
    # Each process takes half of each epoch's 20 batches: 10 optimizer steps per epoch, 8 epochs.
    assert summary["steps"] == 80
    # The same kind of result as one process taking as many optimizer steps (at half the batch):
    # both learn at least the mean answer (MSE near 1/6; an untrained model scores about 1).
    _train(tmp_path / "single", "--epochs", "4")
    single = json.loads((tmp_path / "single" / "metrics.json").read_text())["value"]
    assert summary["value"] < 0.25 and single < 0.25


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "config.json"
    ckpt.atomic_write_json(target, {"version": 1})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        ckpt.atomic_write_json(target, {"version": 2})
    assert json.loads(target.read_text()) == {"version": 1}
    assert list(tmp_path.iterdir()) == [target], "the temporary file must be cleaned up"


def test_checkpoints_are_safetensors_not_pickles(tmp_path):
    _train(tmp_path, "--epochs", "1")
    for name in (ckpt.LAST, ckpt.BEST):
        head = (tmp_path / name).read_bytes()[:16]
        assert not head.startswith(b"\x80"), "a pickle starts with the PROTO opcode 0x80"
        header_size = int.from_bytes(head[:8], "little")
        header = json.loads((tmp_path / name).read_bytes()[8 : 8 + header_size])
        assert "__metadata__" in header


@pytest.mark.parametrize(
    "argv,message",
    [
        (["evaluate", "/nonexistent/run"], "not a run directory"),
        (["predict", "{run}", "text"], "holds a model of the adding task; predict needs a sentiment or speech run"),
        (["train", "adding", "--out", "{run}"], "already holds a run; continue it with 'gated train --resume'"),
        (["generate", "{run}", "--length", "-1"], "--length must be zero or more"),
        (["evaluate", "{run}", "--data", "x.csv"], "makes its own data"),
        (["train", "adding", "--out", "{run}/new", "--delay", "5"], "--delay does not apply to the adding task"),
        (["train", "copy", "--out", "{run}/new", "--data", "x.txt"], "--data does not apply to the copy task"),
        (["train", "adding", "--out", "{run}/new", "--readout", "max"], "the adding task needs readout 'last', not 'max'"),
    ],
)
def test_command_errors_are_clear_and_exit_1(tmp_path, capsys, argv, message):
    _train(tmp_path, "--epochs", "1")
    argv = [a.replace("{run}", str(tmp_path)) for a in argv]
    assert main(argv) == 1
    assert message in capsys.readouterr().err


def test_threads_flag_sets_torchs_thread_count(tmp_path):
    before = torch.get_num_threads()
    try:
        assert _train(tmp_path, "--epochs", "1", "--threads", "1") == 0
        assert torch.get_num_threads() == 1
        assert main(["train", *TINY_ADDING, "--out", str(tmp_path / "b"), "--threads", "0"]) == 1
    finally:
        torch.set_num_threads(before)


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "poetry", "--out", "x"])
    assert exit_.value.code == 2
    assert "invalid choice: 'poetry'" in capsys.readouterr().err


EVERY_COMMAND = ["train", "predict", "generate", "evaluate", "bench", "demo", "tour", "explain", "listen", "export",
                 "serve"]


def test_the_help_tests_cover_every_command():
    assert sorted(EVERY_COMMAND) == sorted(COMMANDS)


def test_the_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    listed = re.findall(r"^    (\w+) ", capsys.readouterr().out, re.M)  # "    train     train a model on a task"
    assert listed == EVERY_COMMAND


@pytest.mark.parametrize("command", EVERY_COMMAND)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: gated " + command in capsys.readouterr().out
