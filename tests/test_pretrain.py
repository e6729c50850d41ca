"""Word vectors from unlabelled text (pretrain.py), and the sentiment task starting its embedding from them."""

import math
import random
from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn

from gated.pretrain import CONTEXT_SMOOTHING, cooccurrences, ppmi, start_embedding, word_vectors


def _pair_counts(documents, window):
    """The definition, one pair at a time: both orders of every pair at most ``window`` apart, weight 1/distance."""
    counts = Counter()
    for ids in documents:
        for i in range(len(ids)):
            for j in range(len(ids)):
                if i != j and abs(i - j) <= window:
                    counts[ids[i], ids[j]] += 1.0 / abs(i - j)
    return counts


def test_cooccurrences_count_every_pair_in_the_window_weighted_by_distance():
    rng = random.Random(0)
    documents = [[rng.randrange(1, 9) for _ in range(rng.randrange(1, 12))] for _ in range(20)]
    table = cooccurrences(documents, 9, window=3).toarray()
    expected = np.zeros((9, 9))
    for (a, b), weight in _pair_counts(documents, 3).items():
        expected[a, b] = weight
    np.testing.assert_allclose(table, expected)
    with pytest.raises(ValueError, match="window"):
        cooccurrences(documents, 9, window=0)


def test_ppmi_follows_its_definition_and_drops_what_occurs_less_than_chance():
    rng = np.random.default_rng(1)
    dense = rng.integers(0, 4, (6, 6)).astype(float)
    from scipy import sparse

    got = ppmi(sparse.csr_matrix(dense)).toarray()
    total = dense.sum()
    context = dense.sum(0) ** CONTEXT_SMOOTHING
    for i in range(6):
        for j in range(6):
            if dense[i, j] == 0:
                assert got[i, j] == 0
                continue
            pmi = math.log(dense[i, j] / total / (dense[i].sum() / total) / (context[j] / context.sum()))
            assert got[i, j] == pytest.approx(max(pmi, 0.0))
    assert (got == 0).any() and (got > 0).any()  # the random table has cells on both sides of chance


def _corpus(seed=0):
    """Words 1 and 2 are used alike (after 5, before 6); word 3 elsewhere (after 7, before 8); 4 is filler."""
    rng = random.Random(seed)
    documents = []
    for _ in range(300):
        word = rng.choice([1, 2, 3])
        left, right = (5, 6) if word in (1, 2) else (7, 8)
        documents.append([4] * rng.randrange(3) + [left, word, right] + [4] * rng.randrange(3))
    return documents


def test_words_used_alike_get_vectors_that_point_alike():
    vectors = word_vectors(_corpus(), 10, size=4, window=1)
    assert np.allclose(np.linalg.norm(vectors[1:9], axis=1), 1.0)  # every word that occurs: a unit row
    assert not vectors[0].any() and not vectors[9].any()  # padding and an unseen id: no direction at all
    cosine = vectors @ vectors.T
    assert cosine[1, 2] > 0.9
    assert cosine[1, 2] > cosine[1, 3] + 0.5
    np.testing.assert_array_equal(vectors, word_vectors(_corpus(), 10, size=4, window=1))  # the same each run


def test_a_vocabulary_too_small_for_the_size_leaves_the_extra_columns_zero():
    vectors = word_vectors([[1, 2, 3, 1, 2]], 4, size=8, window=2)
    assert vectors.shape == (4, 8)
    assert not vectors[:, 2:].any()  # a table of 4 rows gives svds at most 2 directions
    assert np.allclose(np.linalg.norm(vectors[1:], axis=1), 1.0)
    assert not word_vectors([[1]], 4, size=3).any()  # no pairs at all: nothing to learn from
    with pytest.raises(ValueError, match="size"):
        word_vectors([[1, 2]], 4, size=0)


def test_start_embedding_copies_directions_at_the_random_rows_length():
    torch.manual_seed(0)
    embedding = nn.Embedding(6, 5, padding_idx=0)
    before = embedding.weight.detach().clone()
    vectors = np.zeros((6, 5))
    vectors[1:5] = np.random.default_rng(0).standard_normal((4, 5))
    vectors[1:5] /= np.linalg.norm(vectors[1:5], axis=1, keepdims=True)
    start_embedding(embedding, vectors)
    after = embedding.weight.detach()
    length = before.norm(dim=1).mean()
    torch.testing.assert_close(after[1:5], torch.as_tensor(vectors[1:5], dtype=torch.float32) * length)
    assert not after[0].any()  # padding stays zero
    torch.testing.assert_close(after[5], before[5])  # a row the vectors know nothing of keeps its random start
    with pytest.raises(ValueError, match="do not fit"):
        start_embedding(embedding, np.zeros((6, 4)))


@pytest.fixture
def reviews_csv(tmp_path):
    good = ["fresh tea and tasty cookies", "tasty fresh coffee, lovely", "lovely cookies, fresh and tasty"]
    bad = ["stale tea and awful cookies", "awful stale coffee, bland", "bland cookies, stale and awful"]
    rows = [(t, "pos") for t in good] * 5 + [(t, "neg") for t in bad] * 5
    random.Random(0).shuffle(rows)
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n" + "".join(f'"{t}",{label}\n' for t, label in rows), encoding="utf-8")
    return path


def test_sentiment_pretrain_starts_the_embedding_from_the_training_texts(reviews_csv):
    from gated.models import SequenceModel
    from gated.tasks import SentimentTask

    task = SentimentTask({"data": reviews_csv, "pretrain": "ppmi"})
    torch.manual_seed(0)
    model = SequenceModel(task.model_config("lstm", {"hidden_size": 4, "embedding_size": 3}))
    task.prepare(model)
    documents = [task.vocab.encode(t) for t in task.splits["train"].texts]
    expected = word_vectors(documents, len(task.vocab), 3)
    weight = model.embedding.weight.detach().numpy()
    known = np.linalg.norm(expected, axis=1) > 0
    assert known.sum() > 5
    rows = weight[known] / np.linalg.norm(weight[known], axis=1, keepdims=True)
    np.testing.assert_allclose(rows, expected[known], atol=1e-5)  # the counted directions, rescaled

    plain = SentimentTask({"data": reviews_csv, "pretrain": "none"})  # "none" leaves the random start alone
    torch.manual_seed(0)
    model = SequenceModel(plain.model_config("lstm", {"hidden_size": 4, "embedding_size": 3}))
    before = model.embedding.weight.detach().clone()
    plain.prepare(model)
    torch.testing.assert_close(model.embedding.weight.detach(), before)


def test_sentiment_refuses_an_unknown_pretraining(reviews_csv):
    from gated.tasks import SentimentTask

    with pytest.raises(ValueError, match="unknown pretraining 'glove': choose one of none, ppmi"):
        SentimentTask({"data": reviews_csv, "pretrain": "glove"})
