"""Word vectors learnt from unlabelled text, to start a classifier's embedding from.

A review classifier trained on a few thousand labelled texts meets most words only
a handful of times: too few for a randomly started embedding to learn what they
mean. The texts themselves say more than their labels do, though: words used in
the same company mean similar things. :func:`word_vectors` counts which words
appear near which (within ``window`` tokens, nearer ones counting more), weighs
each pair by how much more often it occurs than chance (positive pointwise
mutual information), and keeps the ``size`` strongest directions of that table
(a truncated SVD): the classic count-based word embedding, which matches
skip-gram on small corpora and takes seconds instead of an epoch of training.
Nothing here sees a label, so it may read every text the classifier trains on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

# Contexts' counts are raised to this power before they are turned into probabilities: rare
# contexts otherwise get huge PMI values (Levy, Goldberg and Dagan 2015, "context distribution smoothing").
CONTEXT_SMOOTHING = 0.75


def cooccurrences(documents: Sequence[Sequence[int]], vocab_size: int, window: int):
    """Symmetric (vocab, vocab) sparse counts of word pairs at most ``window`` apart, weighted 1/distance."""
    from scipy import sparse

    if window < 1:
        raise ValueError(f"window must be at least 1 token, got {window}")
    rows, cols, weights = [], [], []
    for ids in documents:
        ids = np.asarray(ids, dtype=np.int64)
        for distance in range(1, min(window, len(ids) - 1) + 1):
            left, right = ids[:-distance], ids[distance:]
            rows += [left, right]  # both orders: the word on the left sees the right one, and back
            cols += [right, left]
            weights.append(np.full(2 * len(left), 1.0 / distance))
    if not rows:
        return sparse.csr_matrix((vocab_size, vocab_size))
    rows, cols, weights = np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)
    # coo -> csr sums the duplicates: one cell per pair of words.
    return sparse.coo_matrix((weights, (rows, cols)), shape=(vocab_size, vocab_size)).tocsr()


def ppmi(counts):
    """Positive pointwise mutual information of a sparse count table; cells that occur less than chance become 0."""
    counts = counts.tocoo()
    total = counts.sum()
    word = np.asarray(counts.sum(axis=1)).ravel() / total
    context = np.asarray(counts.sum(axis=0)).ravel() ** CONTEXT_SMOOTHING
    context /= context.sum()
    pmi = np.log(counts.data / total) - np.log(word[counts.row]) - np.log(context[counts.col])
    keep = pmi > 0
    from scipy import sparse

    return sparse.csr_matrix((pmi[keep], (counts.row[keep], counts.col[keep])), shape=counts.shape)


def word_vectors(documents: Sequence[Sequence[int]], vocab_size: int, size: int, window: int = 5,
                 seed: int = 0) -> np.ndarray:
    """(vocab_size, size) vectors, one per word id, from the co-occurrences of the id lists in ``documents``.

    Rows have unit length, so frequent words do not start out louder than rare ones; a word
    that never occurs near another (padding, a word seen only alone) gets a zero row. A
    vocabulary too small for ``size`` directions fills the columns it has no direction for with 0.
    """
    from scipy.sparse.linalg import svds

    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    vectors = np.zeros((vocab_size, size))
    counts = cooccurrences(documents, vocab_size, window)
    k = min(size, vocab_size - 2)  # svds finds fewer directions than the table has rows
    if k < 1 or counts.nnz == 0:
        return vectors
    table = ppmi(counts)
    if table.nnz == 0:  # every pair as common as chance: no direction stands out
        return vectors
    start = np.random.default_rng(seed).standard_normal(vocab_size)  # svds' start vector: the same result each run
    u, s, _ = svds(table, k=k, v0=start)
    vectors[:, :k] = u * np.sqrt(s)  # the symmetric split of the singular values (Levy et al. 2015 find it best)
    vectors[np.diff(table.indptr) == 0] = 0  # an empty row's vector is rounding noise: normalised, it would be loud
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def start_embedding(embedding: nn.Embedding, vectors: np.ndarray, scale: float = 1.0) -> None:
    """Copy ``vectors`` (one unit row per id) into ``embedding``, scaled to ``scale`` times the length
    of its own random rows, so that the layers after it see inputs of the size they were started for.
    A zero row (a word the vectors know nothing about) keeps its random start."""
    if tuple(vectors.shape) != tuple(embedding.weight.shape):
        raise ValueError(f"vectors of shape {tuple(vectors.shape)} do not fit an embedding of "
                         f"{tuple(embedding.weight.shape)}")
    with torch.no_grad():
        length = embedding.weight.norm(dim=1).mean()
        known = torch.as_tensor(np.linalg.norm(vectors, axis=1) > 0)
        new = torch.as_tensor(vectors, dtype=embedding.weight.dtype) * length * scale
        embedding.weight[known] = new[known]
        if embedding.padding_idx is not None:
            embedding.weight[embedding.padding_idx].zero_()
