"""gated listen: features computed as the audio arrives, the running answer per frame, errors with the file named.

The runs are tiny models trained on a few real FSDD recordings; what is checked is that
listening computes what the model computes on the whole recording (and on each prefix of
it), not how well the model recognises digits.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.signal import resample_poly
from shared_data import FSDD, needs_fsdd
from test_audio import sine, write_wav

from gated.cli import main
from gated.data import audio
from gated.hearing import changes, listen, scale
from gated.runs import load_run

pytestmark = needs_fsdd
# (name, flags): a streaming model, a bidirectional one (re-read at each frame), one pooling its outputs.
RUNS = {"uni": ["--no-bidirectional"], "bi": ["--bidirectional"], "max": ["--no-bidirectional", "--readout", "max"]}


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    """Real recordings of 0, 1 and 2 by two speakers, indices 0-6 (0-4 test, 5-6 train)."""
    folder = tmp_path_factory.mktemp("fsdd")
    for digit in "012":
        for speaker in ("jackson", "theo"):
            for index in range(7):
                name = f"{digit}_{speaker}_{index}.wav"
                shutil.copy(FSDD / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def speech_runs(tmp_path_factory, digits) -> dict[str, Path]:
    """Tiny runs on the recordings above: a few steps each, enough to give weights that are not the defaults."""
    out = tmp_path_factory.mktemp("runs")
    found = {}
    for name, flags in RUNS.items():
        argv = ["train", "speech", "--data", str(digits), "--out", str(out / name), "--epochs", "2", "--hidden", "8",
                "--batch-size", "4", "--quiet", "--threads", "1", *flags]
        assert main(argv) == 0
        found[name] = out / name
    return found


# -- features as the audio arrives ------------------------------------------------------------------


@pytest.mark.parametrize("kind", audio.FEATURES)
@pytest.mark.parametrize("chunk", [1, 37, 80, 1000, 100_000])
def test_frames_computed_as_the_audio_arrives_are_those_of_the_whole_recording(kind, chunk):
    samples = audio.read_wav(FSDD / "7_theo_3.wav")
    whole = audio.features(samples, audio.SAMPLE_RATE, kind)
    stream = audio.FrameFeatures(audio.SAMPLE_RATE, kind)
    pieces = [stream.push(samples[start : start + chunk]) for start in range(0, len(samples), chunk)]
    pieces.append(stream.finish())
    streamed = np.concatenate(pieces)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, rtol=1e-5, atol=1e-5)
    # Each frame comes out once its last sample is in, never before and never later.
    _, hop, n_fft = audio.frame_sizes(audio.SAMPLE_RATE)
    assert stream.frame_time(4) == (4 * hop + n_fft) / audio.SAMPLE_RATE


def test_a_clip_shorter_than_a_frame_gives_its_one_padded_frame_at_the_end():
    samples = sine(440, seconds=0.02).astype(np.float32)  # 160 samples, a frame needs 256
    stream = audio.FrameFeatures()
    assert stream.push(samples).shape == (0, audio.N_MFCC)
    np.testing.assert_allclose(stream.finish(), audio.features(samples), rtol=1e-5, atol=1e-5)
    assert stream.finish().shape == (0, audio.N_MFCC)  # owed once


# -- the running answer -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RUNS)
def test_the_answer_after_each_frame_is_the_model_on_that_prefix_and_the_last_is_predicts(speech_runs, name):
    task, model, _ = load_run(speech_runs[name])
    path = FSDD / "2_jackson_1.wav"
    samples = audio.read_wav(path)
    heard, listener = listen(task, model, samples, chunk=80)
    frames = audio.features(samples, audio.SAMPLE_RATE, "mfcc")
    assert len(heard) == len(frames) and listener.streaming == (name != "bi")
    x = scale(task, frames)
    with torch.no_grad():  # the oracle: forward on every prefix, packed as in training and evaluation
        prefixes = model(x[None].expand(len(frames), -1, -1), torch.arange(1, len(frames) + 1))[0].softmax(-1)
    got = np.stack([h.probabilities for h in heard])
    np.testing.assert_allclose(got, prefixes.numpy(), atol=1e-5)
    np.testing.assert_allclose(got[-1], task.predict(model, [str(path)])[0].numpy(), atol=1e-5)
    assert [h.frame for h in heard] == list(range(len(frames)))
    assert all(a.seconds < b.seconds for a, b in zip(heard, heard[1:]))


def test_changes_are_the_frames_where_the_top_answer_moves():
    from gated.hearing import Heard

    tops = [0, 0, 2, 2, 1, 2, 2]
    heard = [Heard(k, k / 100, np.eye(3)[top]) for k, top in enumerate(tops)]
    assert [h.frame for h in changes(heard)] == [0, 2, 4, 5]


def _lines(out: str) -> tuple[list[str], str, str]:
    lines = out.strip().splitlines()
    return lines, next(line for line in lines if line.startswith("answer: ")), lines[-1]


@pytest.mark.parametrize("name", ["uni", "bi"])
def test_listen_prints_the_changes_the_settled_answer_and_the_real_time_factor(speech_runs, capsys, name):
    path = FSDD / "0_theo_2.wav"
    assert main(["predict", str(speech_runs[name]), str(path)]) == 0
    label, p = capsys.readouterr().out.split("\t")[:2]
    assert main(["listen", str(speech_runs[name]), str(path)]) == 0
    lines, answer, factor = _lines(capsys.readouterr().out)
    seconds = len(audio.read_wav(path)) / audio.SAMPLE_RATE
    assert lines[0].startswith(f"{path}: {seconds:.2f} s (8000 Hz)")
    assert ("streamed" in lines[0]) == (name == "uni")
    found = re.fullmatch(r"answer: (\S+) \(p = ([\d.]+)\), settled at ([\d.]+) s of ([\d.]+) s", answer)
    assert found and found[1] == label and float(found[2]) == pytest.approx(float(p), abs=1e-3)
    changed = [re.fullmatch(r"\s+([\d.]+) s  (\S+)  p = ([\d.]+)", line) for line in lines[1:-2]]
    assert changed and all(changed)
    assert changed[-1][2] == label and float(found[3]) == float(changed[-1][1]) <= seconds
    assert all(a[2] != b[2] for a, b in zip(changed, changed[1:]))  # a line only when the answer moves
    assert re.fullmatch(r"real-time factor [\d.]+: [\d.]+ ms of computing for [\d.]+ s of audio "
                        r"\([\d.]+ ms a frame\)", factor)


def test_every_frame_prints_a_line_per_frame(speech_runs, capsys):
    path = FSDD / "1_jackson_0.wav"
    assert main(["listen", str(speech_runs["uni"]), str(path), "--every-frame", "--chunk-ms", "3"]) == 0
    lines, _, _ = _lines(capsys.readouterr().out)
    assert len(lines) - 3 == len(audio.features(audio.read_wav(path)))


def test_another_sample_rate_is_resampled_and_heard_as_predict_hears_it(speech_runs, tmp_path, capsys):
    samples = audio.read_wav(FSDD / "1_theo_4.wav")
    high = write_wav(tmp_path / "one at 16 kHz.wav", np.clip(resample_poly(samples, 2, 1), -1, 1), rate=16000)
    assert main(["predict", str(speech_runs["uni"]), str(high)]) == 0
    label = capsys.readouterr().out.split("\t")[0]
    assert main(["listen", str(speech_runs["uni"]), str(high)]) == 0
    lines, answer, _ = _lines(capsys.readouterr().out)
    assert "(16000 Hz, resampled to 8000 Hz)" in lines[0] and answer.startswith(f"answer: {label} ")


# -- what cannot be heard -------------------------------------------------------------------------------


def _bad(tmp_path, kind: str) -> tuple[Path, str]:
    path = tmp_path / f"{kind}.wav"
    if kind == "text":
        path.write_text("RIFF? no")
        return path, "not a PCM WAV file"
    if kind == "empty":
        return write_wav(path, []), "no audio in it"
    if kind == "stereo":
        return write_wav(path, np.zeros(1600), channels=2), "2 channels; only mono is read"
    if kind == "8-bit":
        return write_wav(path, sine(300), width=1), "8-bit samples; only 16-bit"
    return path, "No such file or directory"


@pytest.mark.parametrize("kind", ["text", "empty", "stereo", "8-bit", "missing"])
def test_bad_audio_is_one_line_naming_the_file(speech_runs, tmp_path, capsys, kind):
    path, reason = _bad(tmp_path, kind)
    assert main(["listen", str(speech_runs["uni"]), str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("gated listen: error: ")
    assert str(path) in err and reason in err


def test_runs_that_cannot_hear_a_wav_say_why_in_one_line(tmp_path, capsys):
    vowels, copy = tmp_path / "vowels", tmp_path / "copy"
    assert main(["train", "speech", "--out", str(vowels), "--steps", "1", "--hidden", "4", "--quiet",
                 "--threads", "1"]) == 0
    assert main(["train", "copy", "--out", str(copy), "--epochs", "1", "--steps-per-epoch", "1", "--quiet"]) == 0
    capsys.readouterr()
    wav = FSDD / "0_theo_0.wav"
    refusals = [("listen", vowels, "was trained on JapaneseVowels, whose frames are cepstral coefficients"),
                ("explain", vowels, "was trained on JapaneseVowels, whose frames are cepstral coefficients"),
                ("listen", copy, "holds a model of the copy task; hearing a WAV file needs a run of 'gated train "
                 "speech --data DIR'")]
    for command, run, reason in refusals:
        assert main([command, str(run), str(wav)]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and reason in err, err


@pytest.mark.parametrize("argv, reason", [(["--chunk-ms", "0"], "--chunk-ms must be above 0"),
                                          (["--threads", "0"], "--threads must be at least 1")])
def test_bad_numbers_are_refused(speech_runs, capsys, argv, reason):
    assert main(["listen", str(speech_runs["uni"]), str(FSDD / "0_theo_0.wav"), *argv]) == 1
    assert reason in capsys.readouterr().err
