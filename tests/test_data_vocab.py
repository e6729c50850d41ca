"""Tokenizers and vocabularies: ordering, unknown tokens, encode/decode, JSON round-trips."""

from __future__ import annotations

import json

import pytest
import torch

from gated.data import Vocabulary, chars, words

TEXTS = ["The cereal was great, GREAT!", "the box was crushed; don't buy", "great value"]


def test_words_are_lowercase_without_punctuation():
    assert words("The cereal was great, GREAT!") == ["the", "cereal", "was", "great", "great"]
    assert words("don't o'er 'Ladies,' -- snake_case 42g café") == [
        "don't", "o'er", "ladies", "snake", "case", "42g", "café",
    ]
    assert words("  ...  ") == []


def test_chars_keep_every_character():
    assert chars("a b\n!") == ["a", " ", "b", "\n", "!"]


def test_build_orders_by_frequency_then_alphabet():
    vocabulary = Vocabulary.build(TEXTS, "words")
    assert vocabulary.tokens[:2] == ["<pad>", "<unk>"]
    # great x3; the, was x2; then every other word once, in alphabetical order.
    once = ["box", "buy", "cereal", "crushed", "don't", "value"]
    assert vocabulary.tokens[2:] == ["great", "the", "was", *once]
    assert Vocabulary.build(list(reversed(TEXTS)), "words") == vocabulary


def test_build_min_count_and_max_size():
    assert Vocabulary.build(TEXTS, "words", min_count=2).tokens == ["<pad>", "<unk>", "great", "the", "was"]
    assert Vocabulary.build(TEXTS, "words", max_size=4).tokens == ["<pad>", "<unk>", "great", "the"]


def test_build_refuses_a_single_string():
    with pytest.raises(TypeError, match="not one string"):
        Vocabulary.build("the cereal was great", "words")


@pytest.mark.parametrize(("arguments", "message"), [
    ({"kind": "bytes"}, "'words' or 'chars'"),
    ({"kind": "words", "min_count": 0}, "min_count"),
    ({"kind": "words", "max_size": 1}, "max_size"),
])
def test_build_checks_its_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        Vocabulary.build(TEXTS, **arguments)


def test_unknown_words_map_to_unk():
    vocabulary = Vocabulary.build(TEXTS, "words")
    ids = vocabulary.encode("Great granola, the BEST")
    assert ids == [vocabulary.index("great"), 1, vocabulary.index("the"), 1]
    assert vocabulary.index("granola") == Vocabulary.UNK_INDEX == 1
    assert "granola" not in vocabulary and "great" in vocabulary
    assert vocabulary.decode(ids) == "great <unk> the <unk>"


def test_decode_skips_padding_and_takes_tensors():
    vocabulary = Vocabulary.build(TEXTS, "words")
    ids = vocabulary.encode("the box") + [Vocabulary.PAD_INDEX] * 3
    assert vocabulary.decode(torch.tensor(ids)) == "the box"


def test_decode_rejects_ids_outside_the_vocabulary():
    vocabulary = Vocabulary.build(TEXTS, "words")
    with pytest.raises(ValueError, match="outside this vocabulary"):
        vocabulary.decode([2, len(vocabulary)])


def test_chars_encode_and_decode_are_inverses():
    text = "ROMEO\nBut, soft! what light through yonder window breaks?\n\tÉté — naïve 'tis."
    vocabulary = Vocabulary.build([text], "chars")
    assert len(vocabulary) == 2 + len(set(text))
    assert vocabulary.decode(vocabulary.encode(text)) == text
    assert vocabulary.encode("Z") == [Vocabulary.UNK_INDEX]


def test_json_round_trip_keeps_kind_and_order():
    for kind in ("words", "chars"):
        vocabulary = Vocabulary.build(TEXTS, kind)
        restored = Vocabulary.from_json(json.loads(json.dumps(vocabulary.to_json())))
        assert restored == vocabulary and restored.kind == kind
        assert restored.encode(TEXTS[1]) == vocabulary.encode(TEXTS[1])


@pytest.mark.parametrize(("data", "message"), [
    (["<pad>", "<unk>"], "must be an object"),
    ({"tokens": ["<pad>", "<unk>"]}, "lacks 'kind'"),
    ({"kind": "words", "tokens": "<pad> <unk>"}, "list of strings"),
    ({"kind": "lines", "tokens": ["<pad>", "<unk>"]}, "'words' or 'chars'"),
    ({"kind": "words", "tokens": ["<unk>", "<pad>", "a"]}, "must start with"),
    ({"kind": "words", "tokens": ["<pad>", "<unk>", "a", "b", "a"]}, "'a' appears twice"),
    ({"kind": "chars", "tokens": ["<pad>", "<unk>", "a", "bc"]}, "single characters"),
    ({"kind": "words", "tokens": ["<pad>", "<unk>", ""]}, "empty"),
])
def test_from_json_says_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=message):
        Vocabulary.from_json(data)


def test_tokenize_gives_the_tokens_encode_looks_up():
    text = "Don't stop, O'er the hills!"
    word_vocab = Vocabulary.build([text], "words")
    assert word_vocab.tokenize(text) == ["don't", "stop", "o'er", "the", "hills"]
    assert word_vocab.encode(text) == [word_vocab.index(t) for t in word_vocab.tokenize(text)]
    assert Vocabulary.build([text], "chars").tokenize("Hi!") == ["H", "i", "!"]
