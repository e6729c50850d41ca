"""Utterances with a label each: JapaneseVowels from ``aeon``, and folders of WAV files.

:func:`read_ts` reads the ``.ts`` text format of the UEA/UCR time-series
archive (a header of ``@`` lines, then one series per line: each dimension's
values comma-separated, dimensions separated by ``:``, the class label last).
:func:`load_japanese_vowels` reads the JapaneseVowels files that ship inside the
PyPI package ``aeon``, without importing aeon itself (it is large and only its
data files are needed). :func:`load_wav_folder` reads a folder of WAV files
labelled by sub-folder or by the Free Spoken Digit Dataset's naming
(``{label}_{speaker}_{index}.wav``); :func:`speech_splits` cuts either into
train, validation and test.
"""

from __future__ import annotations

import importlib.util
import os
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import audio
from .errors import DataError

# FSDD names its files {digit}_{speaker}_{index}.wav; by its convention indices 0-4 are the test set.
FSDD_NAME = re.compile(r"^(?P<label>[^_]+)_(?P<speaker>[^_]+)_(?P<index>\d+)\.wav$", re.IGNORECASE)
FSDD_TEST_INDICES = range(5)
VALIDATION_SHARE = 0.1


@dataclass(frozen=True)
class Utterances:
    """Feature frames and a label per utterance; ``labels[i]`` indexes ``label_names``.

    ``speakers`` and ``indices`` come from FSDD-style names (None where a name does not have them);
    ``files`` are the WAV files the frames came from (empty for JapaneseVowels).
    """

    frames: list[np.ndarray]  # each (T, channels), float32
    labels: list[int]
    label_names: list[str]
    source: str
    speakers: list[str | None] | None = None
    indices: list[int | None] | None = None
    files: list[str] | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def subset(self, rows) -> Utterances:
        rows = list(rows)

        def pick(values):
            return None if values is None else [values[r] for r in rows]

        return Utterances([self.frames[r] for r in rows], [self.labels[r] for r in rows], list(self.label_names),
                          self.source, pick(self.speakers), pick(self.indices), pick(self.files))


# -- the .ts format -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeSeriesFile:
    series: list[np.ndarray]  # each (T, dimensions), float32
    labels: list[str]
    class_labels: list[str]  # as the header declares them, in its order


def read_ts(path: str | os.PathLike) -> TimeSeriesFile:
    """A labelled ``.ts`` file, checked line by line: anything unexpected is a DataError at its line."""
    header: dict[str, str] = {}
    series, labels = [], []
    in_data = False
    with open(path, encoding="utf-8", newline=None) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or (line.startswith("#") and not in_data):
                continue
            if in_data:
                values, label = _ts_row(path, number, line, header)
                series.append(values)
                labels.append(label)
            elif line.lower() == "@data":
                _check_header(path, number, header)
                in_data = True
            else:
                key, value = _header_line(path, number, line)
                header[key] = value
    if not in_data:
        raise DataError(path, "no '@data' line: not a .ts file, or cut before its data")
    if not series:
        raise DataError(path, "no series after '@data'")
    return TimeSeriesFile(series, labels, header["classlabel"].split()[1:])


_TS_KEYS = {"problemname", "timestamps", "missing", "univariate", "dimensions", "equallength", "serieslength",
            "classlabel", "targetlabel"}


def _header_line(path, number: int, line: str) -> tuple[str, str]:
    if not line.startswith("@"):
        raise DataError(path, f"expected a '@' header line or '@data', got {line[:40]!r}", number)
    key, _, value = line[1:].partition(" ")
    if key.lower() not in _TS_KEYS:
        raise DataError(path, f"unknown header '@{key}'", number)
    return key.lower(), value.strip()


def _check_header(path, number: int, header: dict) -> None:
    """What this reader needs of the header before the first series: labels, and no time stamps."""
    labels = header.get("classlabel", "").split()
    if not labels or labels[0].lower() != "true" or len(labels) < 2:
        raise DataError(path, "the header needs '@classLabel true LABEL ...' before '@data'", number)
    if header.get("timestamps", "false").lower() != "false":
        raise DataError(path, "time-stamped series ('@timeStamps true') are not read", number)
    if "dimensions" in header and not header["dimensions"].isdigit():
        raise DataError(path, f"'@dimensions' must be a whole number, got {header['dimensions']!r}", number)


def _ts_row(path, number: int, line: str, header: dict) -> tuple[np.ndarray, str]:
    *dimensions, label = line.split(":")
    expected = int(header.get("dimensions", len(dimensions)))
    if len(dimensions) != expected:
        raise DataError(path, f"{len(dimensions)} dimension(s) before the label, the header says {expected}", number)
    declared = header["classlabel"].split()[1:]
    if label.strip() not in declared:
        raise DataError(path, f"label {label.strip()!r} is not one of the declared {' '.join(declared)}", number)
    columns = []
    for d, text in enumerate(dimensions, 1):
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            raise DataError(path, f"dimension {d}: {text[:30]!r}... is not a list of numbers", number) from None
        if not np.all(np.isfinite(values)):
            raise DataError(path, f"dimension {d} has a missing or infinite value", number)
        columns.append(values)
    if len({len(c) for c in columns}) != 1:
        raise DataError(path, f"the dimensions have different lengths ({sorted({len(c) for c in columns})})", number)
    return np.array(columns, dtype=np.float32).T, label.strip()


# -- JapaneseVowels ---------------------------------------------------------------------------------


# aeon is only a source of data files here. Its own dependencies cap numba (<0.64 in aeon 1.6),
# which would downgrade the fused engine's numba, so it is installed without them.
AEON_INSTALL = 'pip install --no-deps "aeon>=1.0,<2"'
AEON_MISSING = (f"the speech task's default data (JapaneseVowels) comes inside the Python package 'aeon', "
                f"which is not installed; install it without its dependencies (gated reads its files and never "
                f"imports it): {AEON_INSTALL}")


def japanese_vowels_file(split: str) -> Path:
    """Where the installed ``aeon`` keeps JapaneseVowels' ``split`` file; aeon is found, not imported."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(AEON_MISSING, name="aeon")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "JapaneseVowels"
    path = folder / f"JapaneseVowels_{split.upper()}.ts"
    if not path.is_file():
        raise DataError(path, f"not found in the installed aeon; reinstall it: {AEON_INSTALL} --force-reinstall")
    return path


def load_japanese_vowels(split: str) -> Utterances:
    """JapaneseVowels: ``"train"`` has 270 utterances, ``"test"`` 370; 12 cepstral coefficients a frame.

    Nine speakers each said the Japanese vowels /ae/; the label is the speaker ("1" to "9").
    """
    path = japanese_vowels_file(split)
    data = read_ts(path)
    names = data.class_labels
    return Utterances(data.series, [names.index(label) for label in data.labels], names,
                      f"aeon JapaneseVowels {split}")


# -- folders of WAV files ------------------------------------------------------------------------------


def parse_fsdd_name(name: str) -> tuple[str, str, int] | None:
    """``"3_theo_12.wav"`` -> ``("3", "theo", 12)``; None for a name not in FSDD's form."""
    match = FSDD_NAME.match(name)
    return None if match is None else (match["label"], match["speaker"], int(match["index"]))


def list_wav_folder(folder: str | os.PathLike) -> list[tuple[Path, str, str | None, int | None]]:
    """(file, label, speaker, index) for each WAV file: labelled by sub-folder, else by FSDD's naming."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "not a folder: give a folder of WAV files (one sub-folder per label, "
                        "or files named {label}_{speaker}_{index}.wav)")
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir())
    found = []
    if subfolders:
        for sub in subfolders:
            for path in _wav_files(sub):
                parsed = parse_fsdd_name(path.name)
                found.append((path, sub.name, *(parsed[1:] if parsed else (None, None))))
    else:
        for path in _wav_files(folder):
            parsed = parse_fsdd_name(path.name)
            if parsed is None:
                raise DataError(path, "no label: name the file {label}_{speaker}_{index}.wav (FSDD's naming) "
                                "or put it in a sub-folder named after its label")
            found.append((path, *parsed))
    if not found:
        raise DataError(folder, "no .wav files in it (nor in its sub-folders)")
    return found


def _wav_files(folder: Path) -> list[Path]:
    """The .wav files of ``folder`` (the suffix in any case: recorders write .WAV too), sorted."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav" and p.is_file())


def load_wav_folder(folder, kind: str = "mfcc", rate: int = audio.SAMPLE_RATE,
                    label_names: list[str] | None = None) -> Utterances:
    """Every WAV file of ``folder`` as feature frames; labels sorted (or ``label_names``, e.g. a trained run's)."""
    listed = list_wav_folder(folder)
    found = sorted({label for _, label, _, _ in listed}, key=_label_order)
    if label_names is None:
        if len(found) < 2:
            hint = ""
            if listed[0][2] is not None:  # FSDD-named files in one sub-folder: the folder above was given
                hint = f"; its files are named as FSDD's, so perhaps give the folder {listed[0][0].parent}"
            raise DataError(folder, f"only one label ({found[0]!r}): a classifier needs at least two{hint}")
        label_names = found
    for path, label, _, _ in listed:
        if label not in label_names:
            raise DataError(path, f"label {label!r} is not one the model knows ({', '.join(label_names)})")
    frames = [audio.features(audio.read_wav(path, rate), rate, kind) for path, _, _, _ in listed]
    return Utterances(frames, [label_names.index(label) for _, label, _, _ in listed], list(label_names),
                      os.fspath(folder), [s for _, _, s, _ in listed], [i for _, _, _, i in listed],
                      [os.fspath(p) for p, _, _, _ in listed])


def _label_order(label: str):
    """Numbers in numeric order (digits 0-9, speakers 1-9), names alphabetically after them."""
    return (0, int(label), "") if label.isdigit() else (1, 0, label)


# -- splits ------------------------------------------------------------------------------------------


def hold_out(data: Utterances, share: float, seed: int) -> tuple[Utterances, Utterances]:
    """(rest, held out): ``share`` of each label held out, at least one where a label has two or more."""
    rng = random.Random(seed)
    held = []
    for label in range(len(data.label_names)):
        rows = [r for r, y in enumerate(data.labels) if y == label]
        rng.shuffle(rows)
        held += rows[: max(1 if len(rows) > 1 else 0, round(share * len(rows)))]
    chosen = set(held)
    return data.subset(r for r in range(len(data)) if r not in chosen), data.subset(sorted(chosen))


def wav_splits(data: Utterances, test_speakers: list[str] | None) -> tuple[Utterances, Utterances]:
    """(train, test) of a WAV folder: by ``test_speakers``, else FSDD's index 0-4 rule, else 10% at random."""
    rows = range(len(data))
    if test_speakers:
        if any(s is None for s in data.speakers):
            raise DataError(data.source, "--test-speakers needs every file named {label}_{speaker}_{index}.wav")
        unknown = sorted(set(test_speakers) - set(data.speakers))
        if unknown:
            raise DataError(data.source, f"no recordings of speaker(s) {', '.join(unknown)}; "
                            f"the speakers are {', '.join(sorted(set(data.speakers)))}")
        if set(data.speakers) <= set(test_speakers):
            raise DataError(data.source, "--test-speakers names every speaker: leave some to train on")
        test = [r for r in rows if data.speakers[r] in test_speakers]
    elif all(i is not None for i in data.indices):
        test = [r for r in rows if data.indices[r] in FSDD_TEST_INDICES]
    else:
        return hold_out(data, VALIDATION_SHARE, seed=1)
    chosen = set(test)
    train = data.subset(r for r in rows if r not in chosen)
    if not len(train) or not chosen:
        raise DataError(data.source, "the split leaves no training or no test recordings; "
                        "FSDD's rule tests indices 0-4: name the files {label}_{speaker}_{index}.wav")
    return train, data.subset(test)


def speech_splits(data_folder: str | None, kind: str, test_speakers: list[str] | None,
                  rate: int = audio.SAMPLE_RATE) -> dict[str, Utterances]:
    """train / validation / test: JapaneseVowels' own split, or a WAV folder's; 10% of train validates."""
    if data_folder is None:
        train_all, test = load_japanese_vowels("train"), load_japanese_vowels("test")
    else:
        train_all, test = wav_splits(load_wav_folder(data_folder, kind, rate), test_speakers)
    train, validation = hold_out(train_all, VALIDATION_SHARE, seed=0)
    return {"train": train, "validation": validation, "test": test}


# -- baselines ---------------------------------------------------------------------------------------


def summary_statistics(frames: list[np.ndarray]) -> np.ndarray:
    """(N, 2 * channels): each utterance's mean and standard deviation of each channel, over its frames."""
    return np.stack([np.concatenate([f.mean(0), f.std(0)]) for f in frames])


def mean_std_logistic_accuracy(train: Utterances, test: Utterances) -> float:
    """Logistic regression on per-utterance means and standard deviations: what order in time adds is the gap."""
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError:
        raise ImportError('the speech baseline needs scikit-learn: pip install "gated[baselines]" '
                          "(or pip install scikit-learn)") from None
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    model.fit(summary_statistics(train.frames), train.labels)
    return float((model.predict(summary_statistics(test.frames)) == np.array(test.labels)).mean())


def label_counts(data: Utterances) -> Counter:
    return Counter(data.label_names[y] for y in data.labels)
