"""The n-gram baseline's choice of order: made on the validation text, never on the test text."""

from __future__ import annotations

import random

import pytest

from gated.ngram import KneserNeyLM, best_of_orders

# A text with structure up to about 4 characters: words drawn at random from a small list.
WORDS = ["the cat ", "a dog ", "sat on ", "the mat ", "ran far ", "and ", "so "]


def _text(n: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(WORDS) for _ in range(n))


def test_every_order_is_scored_and_the_validation_text_chooses():
    train, validation, test = _text(3000, 0), _text(200, 1), _text(200, 2)
    best = best_of_orders(train, validation, test, 6)
    assert list(best["orders"]) == [1, 2, 3, 4, 5, 6]
    for order, scores in best["orders"].items():
        model = KneserNeyLM(order).fit(train)
        assert scores["validation"] == pytest.approx(model.bits_per_char(validation), rel=1e-12)
        assert scores["test"] == pytest.approx(model.bits_per_char(test), rel=1e-12)
    chosen = min(best["orders"], key=lambda k: best["orders"][k]["validation"])
    assert best["order"] == chosen and best["value"] == best["orders"][chosen]["test"]


def test_the_test_text_plays_no_part_in_the_choice():
    train, validation = _text(3000, 0), _text(200, 1)
    noise = "".join(random.Random(3).choice("thecatsdogmr ") for _ in range(400))
    on_words, on_noise = (best_of_orders(train, validation, test, 5) for test in (_text(200, 2), noise))
    assert on_words["order"] == on_noise["order"]
    # ... although the two test texts would pick different orders.
    assert {min(b["orders"], key=lambda k: b["orders"][k]["test"]) for b in (on_words, on_noise)} != {on_words["order"]}


def test_orders_longer_than_a_held_out_text_are_left_out():
    best = best_of_orders(_text(300, 0), "the ca", "a dog ran", 8)
    assert max(best["orders"]) == len("the ca")


def test_held_out_texts_too_short_for_any_order_are_refused():
    with pytest.raises(ValueError, match="too short"):
        best_of_orders(_text(300, 0), "", "a dog", 3)


def test_three_discounts_beat_one_on_real_text():
    """Modified Kneser-Ney against the plain kind on English: at order 5 the three discounts predict better."""
    from gated.data.text import load_shakespeare

    text = load_shakespeare()[:400_000]
    train, held_out = text[:360_000], text[360_000:]
    model = KneserNeyLM(5).fit(train)
    modified = model.bits_per_char(held_out)
    for level in model.levels[1:]:  # the same model with one discount per order, n1 / (n1 + 2 n2)
        level.discounts[1:] = _single_discount(level.counts)
        level.handed_down = _handed_down(level)
    assert modified < model.bits_per_char(held_out)


def _single_discount(counts):
    n1, n2 = (counts == 1).sum(), (counts == 2).sum()
    return n1 / (n1 + 2 * n2)


def _handed_down(level):
    import numpy as np

    where = np.searchsorted(level.contexts, level.keys // level.base)
    taken = level.discounts[np.minimum(level.counts, 3).astype(np.int64)]
    return np.bincount(where, weights=taken, minlength=len(level.contexts))
