"""The speech task: the .ts reader on the real JapaneseVowels files, WAV folders, splits, and gated train speech."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from shared_data import FSDD, needs_fsdd
from test_audio import sine, write_wav

from gated.cli import main
from gated.data import speech
from gated.data.errors import DataError
from gated.runs import load_run

# -- the .ts reader on the real files ---------------------------------------------------------------


@pytest.mark.parametrize("split, count, longest", [("train", 270, 26), ("test", 370, 29)])
def test_japanese_vowels_reads_as_the_archive_describes_it(split, count, longest):
    data = speech.load_japanese_vowels(split)
    assert len(data) == count and data.label_names == [str(n) for n in range(1, 10)]
    assert {f.shape[1] for f in data.frames} == {12}
    assert min(len(f) for f in data.frames) == 7 and max(len(f) for f in data.frames) == longest
    assert set(data.labels) == set(range(9))
    if split == "train":  # 30 utterances of each speaker
        assert set(speech.label_counts(data).values()) == {30}


@pytest.fixture
def ts_lines():
    return speech.japanese_vowels_file("train").read_text(encoding="utf-8").splitlines()


def _first_data_line(lines) -> int:
    return next(n for n, line in enumerate(lines) if line.strip().lower() == "@data") + 1


@pytest.mark.parametrize("damage, reason", [
    (lambda row: row.split(":", 1)[1], "11 dimension(s) before the label, the header says 12"),
    (lambda row: row.replace(",", ",oops,", 1), "is not a list of numbers"),
    (lambda row: row.rsplit(":", 1)[0] + ":10", "label '10' is not one of the declared"),
    (lambda row: row.replace(",", ",?,", 1), "is not a list of numbers"),
    (lambda row: row.replace(",", ",nan,", 1), "missing or infinite value"),
    (lambda row: row.split(",", 1)[1], "the dimensions have different lengths"),
])
def test_a_damaged_ts_file_names_the_file_and_line(tmp_path, ts_lines, damage, reason):
    row = _first_data_line(ts_lines) + 3
    ts_lines[row] = damage(ts_lines[row])
    path = tmp_path / "bad.ts"
    path.write_text("\n".join(ts_lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as error:
        speech.read_ts(path)
    assert str(error.value).startswith(f"{path}:{row + 1}: ") and reason in str(error.value)


def test_a_ts_file_without_labels_or_data_is_refused(tmp_path, ts_lines):
    start = _first_data_line(ts_lines)
    cut = tmp_path / "cut.ts"
    cut.write_text("\n".join(ts_lines[: start - 1]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="no '@data' line"):
        speech.read_ts(cut)
    unlabelled = tmp_path / "unlabelled.ts"
    unlabelled.write_text("\n".join(line for line in ts_lines if not line.startswith("@classLabel")), encoding="utf-8")
    with pytest.raises(DataError, match=r"unlabelled.ts:\d+: the header needs '@classLabel true"):
        speech.read_ts(unlabelled)


def test_without_aeon_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setattr(speech.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r'pip install --no-deps "aeon>=1.0,<2"'):
        speech.load_japanese_vowels("train")


# -- names and splits -------------------------------------------------------------------------------


def test_fsdd_names_parse_into_label_speaker_and_index():
    assert speech.parse_fsdd_name("3_theo_12.wav") == ("3", "theo", 12)
    assert speech.parse_fsdd_name("0_george_0.WAV") == ("0", "george", 0)
    for name in ("3_theo.wav", "3_theo_x.wav", "3-theo-1.wav", "3_theo_1.mp3"):
        assert speech.parse_fsdd_name(name) is None


def _named(rows) -> speech.Utterances:
    """Utterances with FSDD-style (label, speaker, index), no audio needed to split them."""
    labels = sorted({label for label, _, _ in rows})
    return speech.Utterances([np.zeros((3, 2), np.float32)] * len(rows), [labels.index(r[0]) for r in rows],
                             labels, "fake", [r[1] for r in rows], [r[2] for r in rows])


def test_fsdd_rule_tests_indices_0_to_4_and_speaker_rule_holds_out_speakers():
    rows = [(d, s, i) for d in "01" for s in ("ann", "bob", "cy") for i in range(8)]
    data = _named(rows)
    train, test = speech.wav_splits(data, None)
    assert set(test.indices) == set(range(5)) and set(train.indices) == {5, 6, 7}
    train, test = speech.wav_splits(data, ["bob"])
    assert set(test.speakers) == {"bob"} and set(train.speakers) == {"ann", "cy"}
    assert len(train) + len(test) == len(rows)
    with pytest.raises(DataError, match="no recordings of speaker.s. zed; the speakers are ann, bob, cy"):
        speech.wav_splits(data, ["zed"])
    with pytest.raises(DataError, match="names every speaker"):
        speech.wav_splits(data, ["ann", "bob", "cy"])


# -- gated train speech, end to end -------------------------------------------------------------------


def test_train_speech_on_japanese_vowels_writes_a_run_that_reproduces_its_score(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "speech", "--out", str(run), "--epochs", "2", "--hidden", "8", "--quiet", "--threads", "1"]
    assert main(argv) == 0
    for name in ("config.json", "last.safetensors", "best.safetensors", "metrics.jsonl", "metrics.json"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["task"] == "speech" and summary["metric"] == "accuracy"
    assert summary["baseline"]["name"] == "mean+std logreg" and summary["baseline"]["value"] > 0.9
    assert summary["baseline"]["majority"] < 0.2  # nine speakers
    config = json.loads((run / "config.json").read_text())
    assert config["options"]["labels"] == [str(n) for n in range(1, 10)]
    assert len(config["options"]["feature_mean"]) == 12 and config["model"]["input_size"] == 12
    task, model, _ = load_run(run)
    assert task.scores(model, "test", 64)["accuracy"] == pytest.approx(summary["value"])
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    assert f"test: accuracy {summary['value']:.4f}" in capsys.readouterr().out
    assert main(["predict", str(run), "x.wav"]) == 1  # cepstra in training: no WAV can be read the same way
    assert "trained on JapaneseVowels" in capsys.readouterr().err


@pytest.fixture
def tones(tmp_path) -> Path:
    """A sub-folder per label: low hums and high whistles, 12 of each, a little noise to tell them apart."""
    folder = tmp_path / "tones"
    rng = np.random.default_rng(0)
    for label, base in (("low", 300), ("high", 2000)):
        (folder / label).mkdir(parents=True)
        for n in range(12):
            samples = sine(base + 20 * n, seconds=0.2 + 0.02 * n) + 0.02 * rng.standard_normal(1600 + 160 * n)
            write_wav(folder / label / f"{label}{n}.wav", np.clip(samples, -1, 1))
    return folder


def test_train_speech_on_a_folder_of_wavs_predicts_a_wav_file(tmp_path, tones, capsys):
    run = tmp_path / "run"
    argv = ["train", "speech", "--data", str(tones), "--out", str(run), "--epochs", "6", "--hidden", "8",
            "--batch-size", "4", "--lr", "0.01", "--quiet", "--threads", "1", "--features", "logmel"]
    assert main(argv) == 0
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["value"] == 1.0  # a hum and a whistle: no model should confuse them
    config = json.loads((run / "config.json").read_text())
    assert config["options"]["labels"] == ["high", "low"] and config["model"]["input_size"] == 40
    capsys.readouterr()
    assert main(["predict", str(run), str(tones / "low" / "low3.wav"), str(tones / "high" / "high5.wav")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["low", "high"]
    assert main(["evaluate", str(run), "--data", str(tones)]) == 0
    assert "accuracy 1.0000" in capsys.readouterr().out


def _bad_folder(tmp_path, kind: str) -> tuple[Path, str, str]:
    """A folder with one fault: (folder, the file the error names, the reason)."""
    folder = tmp_path / kind
    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
        for n in range(3):
            write_wav(folder / label / f"{n}.wav", sine(300 if label == "a" else 900, 0.1))
    bad = folder / "b" / "9.wav"
    if kind == "stereo":
        write_wav(bad, np.zeros(1600), channels=2)
        return folder, str(bad), "2 channels; only mono is read"
    if kind == "empty":
        write_wav(bad, [])
        return folder, str(bad), "no audio in it"
    if kind == "text":
        bad.write_text("hello")
        return folder, str(bad), "not a PCM WAV file"
    shutil.rmtree(folder / "b")
    return folder, str(folder), "only one label ('a'): a classifier needs at least two"


@pytest.mark.parametrize("kind", ["stereo", "empty", "text", "one-label"])
def test_bad_audio_stops_training_with_one_line_naming_the_file(tmp_path, capsys, kind):
    folder, named, reason = _bad_folder(tmp_path, kind)
    out = tmp_path / "run"
    assert main(["train", "speech", "--data", str(folder), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{named}: " in err and reason in err
    assert not out.exists()  # refused before anything is written


def test_audio_options_without_audio_are_refused(tmp_path, capsys):
    for flag, value in (("--features", "logmel"), ("--test-speakers", "theo")):
        assert main(["train", "speech", flag, value, "--out", str(tmp_path / "r"), "--quiet"]) == 1
        assert f"{flag} applies to WAV recordings" in capsys.readouterr().err


def test_speech_help_lists_its_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "speech", "--help"])
    out = capsys.readouterr().out
    assert "--test-speakers" in out and "--features" in out and "JapaneseVowels" in out
    assert "--seq-len" not in out and "--max-tokens" not in out


@pytest.fixture
def fsdd_cut(tmp_path) -> Path:
    """A few real FSDD recordings: digits 0 and 1, three speakers, indices 0-9."""
    folder = tmp_path / "fsdd"
    folder.mkdir()
    for digit in "01":
        for speaker in ("george", "jackson", "theo"):
            for index in range(10):
                name = f"{digit}_{speaker}_{index}.wav"
                shutil.copy(FSDD / name, folder / name)
    return folder


@needs_fsdd
def test_real_fsdd_recordings_train_with_both_split_rules(tmp_path, fsdd_cut, capsys):
    data = speech.load_wav_folder(fsdd_cut)
    assert len(data) == 60 and data.label_names == ["0", "1"] and {f.shape[1] for f in data.frames} == {13}
    common = ["--data", str(fsdd_cut), "--epochs", "3", "--hidden", "8", "--quiet", "--threads", "1"]
    assert main(["train", "speech", "--out", str(tmp_path / "a"), *common]) == 0
    summary = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert summary["splits"]["test"]["accuracy"] == summary["value"]
    assert main(["train", "speech", "--out", str(tmp_path / "b"), "--test-speakers", "theo", *common]) == 0
    task, _, _ = load_run(tmp_path / "b")
    assert set(task.splits["test"].speakers) == {"theo"} and "theo" not in set(task.splits["train"].speakers)
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "b"), str(fsdd_cut / "1_theo_3.wav")]) == 0
    assert capsys.readouterr().out.split("\t")[0] in ("0", "1")


def test_training_batches_repeat_for_a_resumed_run_and_are_scaled_by_training_statistics():
    from gated.tasks import SpeechTask

    task = SpeechTask({})
    first, again = task.train_batches(3, 16, seed=0), task.train_batches(3, 16, seed=0)
    assert all((a.inputs == b.inputs).all() and (a.targets == b.targets).all() for a, b in zip(first, again))
    assert sum(len(b) for b in first) == len(task.splits["train"]) == 243
    clean = torch.cat([b.inputs[i, : b.lengths[i]] for b in task._batches("train", 16, None) for i in range(len(b))])
    assert clean.mean(0).abs().max() < 1e-4 and (clean.std(0) - 1).abs().max() < 1e-2
    noisy = torch.cat([b.inputs[i, : b.lengths[i]] for b in first for i in range(len(b))])
    assert noisy.std(0).mean() > clean.std(0).mean()  # the training noise is there, the scale is not lost


def test_fsdd_named_files_one_folder_down_get_a_hint_and_upper_case_wav_is_read(tmp_path):
    recordings = tmp_path / "fsdd" / "recordings"
    recordings.mkdir(parents=True)
    for n, digit in enumerate("0101"):
        write_wav(recordings / f"{digit}_ann_{n}.WAV", sine(300 + 500 * int(digit), 0.1))
    with pytest.raises(DataError, match=f"only one label .'recordings'.*perhaps give the folder {recordings}$"):
        speech.load_wav_folder(tmp_path / "fsdd")
    data = speech.load_wav_folder(recordings)
    assert data.label_names == ["0", "1"] and data.speakers == ["ann"] * 4 and sorted(data.indices) == [0, 1, 2, 3]


def test_a_wav_without_a_label_is_named(tmp_path):
    write_wav(tmp_path / "hello.wav", sine(300, 0.1))
    with pytest.raises(DataError, match=r"hello.wav: no label: name the file \{label\}_\{speaker\}_\{index\}.wav"):
        speech.load_wav_folder(tmp_path)


def test_predict_names_the_runs_it_can_use(tmp_path, capsys):
    run = tmp_path / "copy"
    assert main(["train", "copy", "--out", str(run), "--epochs", "1", "--steps-per-epoch", "2", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["predict", str(run), "anything"]) == 1
    assert "holds a model of the copy task; predict needs a sentiment or speech run" in capsys.readouterr().err
