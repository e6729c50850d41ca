"""The gated command's error paths: every bad option value, too little data, odd texts and files.

A user error must print one line naming what to fix, exit non-zero and write nothing; never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gated import limits
from gated.cli import main
from gated.runs import Plan

REVIEWS = [("lovely crunchy and fresh", "pos"), ("the best tea ever", "pos"), ("stale and bland", "neg"),
           ("arrived broken and late", "neg")] * 6
POEM = "to be or not to be that is the question\n" * 12  # 480 characters


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:  # argparse's own errors
        return exit_.code


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A tiny adding, charlm and sentiment run; charlm's --data is given relative to the folder it ran in."""
    root = tmp_path_factory.mktemp("runs")
    (root / "reviews.csv").write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in REVIEWS))
    (root / "poem.txt").write_text(POEM)
    tiny = ["--epochs", "1", "--hidden", "4", "--quiet"]
    commands = {
        "adding": ["train", "adding", "--steps-per-epoch", "2", "--length", "4", *tiny],
        "charlm": ["train", "charlm", "--data", "poem.txt", "--batch-size", "2", "--seq-len", "8", "--layers", "1",
                   *tiny],
        "sentiment": ["train", "sentiment", "--data", "reviews.csv", "--embedding", "4", "--batch-size", "8", *tiny],
    }
    before = os.getcwd()
    os.chdir(root)
    try:
        for name, argv in commands.items():
            assert main([*argv, "--out", name]) == 0
    finally:
        os.chdir(before)
    return {name: root / name for name in commands} | {"root": root}


# -- every option's bad values ---------------------------------------------------------------------

TRAIN_VALUES = [
    ("adding", "--epochs", "0"), ("adding", "--epochs", "-1"), ("adding", "--steps", "0"),
    ("adding", "--time-limit", "-1"), ("adding", "--time-limit", "0"), ("adding", "--time-limit", "nan"),
    ("adding", "--batch-size", "0"), ("adding", "--lr", "0"), ("adding", "--lr", "nan"), ("adding", "--lr", "inf"),
    ("adding", "--weight-decay", "-1"), ("adding", "--clip", "-1"), ("adding", "--clip", "nan"),
    ("adding", "--patience", "0"), ("adding", "--checkpoint-every", "0"), ("adding", "--seed", "-1"),
    ("adding", "--hidden", "0"), ("adding", "--layers", "0"), ("adding", "--dropout", "1"),
    ("adding", "--dropout", "-0.1"), ("adding", "--length", "1"), ("adding", "--steps-per-epoch", "0"),
    ("adding", "--threads", "0"), ("copy", "--length", "0"), ("copy", "--delay", "0"),
    ("copy", "--embedding", "0"), ("charlm", "--seq-len", "0"), ("charlm", "--ngram-order", "0"),
    ("sentiment", "--max-tokens", "0"), ("adding", "--recurrent-dropout", "1"),
    ("adding", "--recurrent-dropout", "-0.1"), ("adding", "--zoneout", "1"), ("adding", "--zoneout", "0.1,1.5"),
    ("adding", "--zoneout", "0.1,0.2,0.3"), ("adding", "--zoneout", "nan"),
]


@pytest.mark.parametrize("task, option, value", TRAIN_VALUES)
def test_a_bad_training_option_is_named_before_anything_is_written(tmp_path, capsys, task, option, value):
    out = tmp_path / "run"
    assert _run(["train", task, "--out", str(out), option, value]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"gated train: error: {option} must be") and err.count("\n") == 1
    assert not out.exists()


def test_bad_budgets_on_resume_are_refused_too(runs, capsys):
    assert _run(["train", "adding", "--out", str(runs["adding"]), "--resume", "--epochs", "0"]) == 1
    assert "--epochs must be at least 1, got 0" in capsys.readouterr().err


def test_library_plans_refuse_the_same_values_naming_the_setting():
    with pytest.raises(limits.SettingError, match="checkpoint_every must be at least 1, got 0"):
        Plan("adding", training={"checkpoint_every": 0})
    with pytest.raises(limits.SettingError, match="length must be at least 2"):
        Plan("adding", options={"length": 1})
    with pytest.raises(limits.SettingError, match="dropout must be at least 0 and below 1"):
        Plan("copy", model={"dropout": float("nan")})
    with pytest.raises(limits.SettingError, match="zoneout must be one number at least 0 and below 1, or two"):
        Plan("adding", model={"zoneout": (0.1, 1.0)})
    with pytest.raises(ValueError, match="the MIN_GRU cell has none"):
        Plan("adding", "min-gru", model={"zoneout": 0.1})


# The other commands' options, and errors in the data given to them: (argv, message, exit code).
COMMAND_ERRORS = [
    (["generate", "{charlm}", "--temperature", "nan"], "--temperature must be a positive number", 1),
    (["generate", "{charlm}", "--temperature", "0"], "--temperature must be a positive number", 1),
    (["generate", "{charlm}", "--temperature", "inf"], "--temperature must be a positive number", 1),
    (["generate", "{charlm}", "--length", "-1"], "--length must be zero or more", 1),
    (["generate", "{charlm}", "--seed", "-1"], "--seed must be a whole number from 0", 1),
    (["explain", "{charlm}", "to be", "--units", "0"], "--units must be at least 1", 1),
    (["tour", "--workers", "0"], "--workers must be at least 1", 1),
    (["demo", "--seconds", "0"], "--seconds must be a positive number", 1),
    (["demo", "--seconds", "nan"], "--seconds must be a positive number", 1),
    (["bench", "--rounds", "0"], "--rounds must be at least 1", 2),
    (["bench", "--seconds", "-1"], "--seconds must be a positive number", 2),
    (["bench", "--seconds", "nan"], "--seconds must be a positive number", 2),
    (["predict", "{sentiment}", ""], "no words the model can read", 1),
    (["predict", "{sentiment}", "   \n "], "no words the model can read", 1),
    (["predict", "{sentiment}", "fresh tea", "\U0001F600\U0001F44D"], "no words the model can read", 1),
    (["evaluate", "{charlm}", "--data", "{root}"], "is a folder; give one text file", 1),
    (["evaluate", "{sentiment}", "--data", "{labels}"], "the sub-folders are bad, good, but the labels are neg, pos", 1),
    (["train", "charlm", "--data", "{root}", "--out", "{root}/new"], "is a folder", 1),
    (["train", "charlm", "--data", "{short}", "--out", "{root}/new"], "need a file of at least 1,205 characters", 1),
    (["train", "charlm", "--data", "{scrap}", "--out", "{root}/new"], "this one has 500", 1),
    (["train", "adding", "--out", "{root}/new", "--seq-len", "8"], "--seq-len does not apply to the adding task", 1),
    (["train", "poetry", "--out", "{root}/new"], "invalid choice: 'poetry'", 2),
    (["train", "adding", "--out", "{root}/new", "--model", "min-gru", "--recurrent-dropout", "0.2"],
     "the MIN_GRU cell has no W_hh", 1),
    (["train", "adding", "--out", "{root}/new", "--model", "min-lstm", "--zoneout", "0.1"],
     "the MIN_LSTM cell has none", 1),
    (["train", "adding", "--out", "{root}/new", "--model", "gru", "--zoneout", "0.1,0.2"],
     "GRU cell has no cell state, so zoneout's p_cell must be 0; pass one float", 1),
    (["train", "adding", "--out", "{root}/new", "--zoneout", "a,b"], "--zoneout: expected P or PC,PH", 2),
]


@pytest.mark.parametrize("argv, message, code", COMMAND_ERRORS)
def test_command_errors_are_one_line_without_a_traceback(runs, capsys, argv, message, code):
    root = runs["root"]
    (root / "short.txt").write_text((POEM * 5)[:1000])  # the case: 0 steps, "finished", exit 0
    (root / "scrap.txt").write_text(POEM[:500] + "x" * 20)
    for label in ("good", "bad"):
        (root / "labels" / label).mkdir(parents=True, exist_ok=True)
        (root / "labels" / label / "1.txt").write_text("fine tea")
    places = {"{root}": root, "{short}": root / "short.txt", "{scrap}": root / "scrap.txt",
              "{labels}": root / "labels", **{f"{{{name}}}": runs[name] for name in ("charlm", "sentiment")}}
    for place, path in places.items():
        argv = [arg.replace(place, str(path)) for arg in argv]
    capsys.readouterr()
    assert _run(argv) == code
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1 if code == 1 else True
    assert captured.out == "" and not (root / "new").exists()


def test_a_user_error_in_a_real_process_prints_one_line(tmp_path):
    command = [sys.executable, "-m", "gated.cli", "train", "adding", "--out", str(tmp_path / "r"), "--batch-size", "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert done.stderr == "gated train: error: --batch-size must be at least 1, got 0\n"


# -- help per task -------------------------------------------------------------------------------


@pytest.mark.parametrize("task, own, others", [
    ("adding", ["--length", "--steps-per-epoch", "(default 40)"], ["--seq-len", "--data", "--delay", "--readout"]),
    ("copy", ["--length", "--delay", "symbols to copy"], ["--seq-len", "--data", "--max-tokens"]),
    ("charlm", ["--seq-len", "--ngram-order", "--data"], ["--length", "--max-tokens", "--readout"]),
    ("sentiment", ["--max-tokens", "--text-column", "--readout"], ["--length", "--seq-len", "--delay"]),
])
def test_train_help_lists_only_the_tasks_own_options(capsys, task, own, others):
    assert _run(["train", task, "--help"]) == 0
    shown = capsys.readouterr().out
    assert all(flag in shown for flag in own)
    assert not any(flag in shown for flag in others)


# -- what used to work stays working, what used to crash now works --------------------------------


def test_a_relative_data_path_is_stored_resolved_and_evaluates_from_anywhere(runs, capsys, monkeypatch, tmp_path):
    stored = json.loads((runs["charlm"] / "config.json").read_text())["options"]["data"]
    assert stored == str(runs["root"] / "poem.txt")
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", str(runs["charlm"])]) == 0
    assert "test: bits_per_char" in capsys.readouterr().out


def test_evaluate_reads_a_text_shorter_than_the_streams(runs, capsys, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("to be or")  # 8 characters, fewer than the 32 streams scoring used to need
    assert main(["evaluate", str(runs["charlm"]), "--data", str(short)]) == 0
    value = float(capsys.readouterr().out.split("bits_per_char")[1])
    assert 0 < value < 20
    short.write_text("t")
    assert main(["evaluate", str(runs["charlm"]), "--data", str(short)]) == 1
    assert "scoring needs at least 2" in capsys.readouterr().err


def test_explain_reads_at_most_300_characters_and_says_so(runs, capsys):
    assert main(["explain", str(runs["charlm"]), POEM * 100]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "read 300 characters (the first 300 of 48,000" in lines[0]
    assert len(lines) == 2 + 300  # the summary, the header, one row per character read


def test_a_closed_pipe_ends_quietly(runs):
    command = [sys.executable, "-m", "gated.cli", "explain", str(runs["charlm"]), POEM * 10]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        child.stdout.close()  # the reader is gone before a line is written, as with '| head -0'
        err = child.stderr.read().decode()
        child.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err
    assert child.returncode == 1
