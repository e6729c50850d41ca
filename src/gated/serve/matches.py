"""LSTMVis's match search (Strobelt et al. 2018): passages of the test split whose hidden units switch on
and off like those of a span the reader selected.

At start the server runs each model over its test split once and keeps the top layer's hidden state at
every token (float16: the search compares it with a threshold, it needs no more). A search takes the
units that stay above the threshold across the selected span and scores every window of the same length
in the index by how well its set of units on throughout (above the threshold at every token) overlaps that
set: their intersection over their union. The best windows come back with a few tokens around them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.utils.rnn import pack_sequence, pad_packed_sequence

MAX_DOCUMENTS = 1000  # reviews indexed per run (the tour's test split has 1,000)
MAX_TOKENS = 120_000  # tokens indexed per review run: bounds memory and the time a search takes
MAX_CHARACTERS = 60_000  # characters of a character model's test text indexed (150 passages)
CHUNK_CHARS = 400  # a character model's test text is indexed as passages of this length
MAX_SPAN = 40  # tokens a selection may cover (longer spans match almost nothing anyway)
CONTEXT = 6  # tokens shown on each side of a match
BATCH = 64


@dataclass
class MatchIndex:
    documents: list[list[str]]  # the tokens of each passage
    hidden: np.ndarray  # (tokens, units) float16, every document's tokens one after the other
    starts: np.ndarray  # (documents + 1,) where each document begins in ``hidden``; the last is the total
    seconds: float  # how long building took

    @property
    def size(self) -> int:
        return int(self.starts[-1])

    def spread(self) -> np.ndarray:
        """Each unit's standard deviation over the index: how much it has to say."""
        return self.hidden.astype(np.float32).std(0)

    def search(self, units: list[int], length: int, threshold: float, count: int = 5) -> list[dict]:
        """The ``count`` windows of ``length`` tokens whose units on throughout best match ``units``."""
        if not units or length < 1 or length > MAX_SPAN:
            return []
        selected = np.zeros(self.hidden.shape[1], dtype=bool)
        selected[units] = True
        weakest = _window_minimum(self.hidden, length)  # (windows, units): lowest value over each window
        on = weakest > threshold
        both = (on & selected).sum(1)
        either = (on | selected).sum(1)
        score = both / either
        score[~self._window_inside_a_document(length)] = -1.0
        return self._best(score, length, count)

    def _window_inside_a_document(self, length: int) -> np.ndarray:
        """Windows that start and end in the same document (no match runs across two reviews)."""
        ends = np.arange(self.size - length + 1) + length - 1
        document = np.searchsorted(self.starts, np.arange(self.size - length + 1), side="right")
        return ends < self.starts[document]

    def _best(self, score: np.ndarray, length: int, count: int) -> list[dict]:
        found, used = [], set()
        for start in np.argsort(-score, kind="stable"):
            if score[start] <= 0 or len(found) == count:
                break
            doc = int(np.searchsorted(self.starts, start, side="right") - 1)
            if doc in used:  # one match per passage: the reader wants variety
                continue
            used.add(doc)
            offset = int(start - self.starts[doc])
            tokens = self.documents[doc]
            found.append({
                "passage": doc, "score": round(float(score[start]), 4), "start": offset,
                "before": tokens[max(0, offset - CONTEXT) : offset],
                "tokens": tokens[offset : offset + length],
                "after": tokens[offset + length : offset + length + CONTEXT],
            })
        return found


def _window_minimum(values: np.ndarray, length: int) -> np.ndarray:
    """Minimum over each window of ``length`` consecutive rows: (rows - length + 1, columns)."""
    out = values[: len(values) - length + 1].copy()
    for shift in range(1, length):
        np.minimum(out, values[shift : shift + len(out)], out=out)
    return out


def build(served) -> MatchIndex:
    """Run ``served``'s model over its test split (reviews, or a text cut into passages) and keep the states."""
    started = time.perf_counter()
    documents = _documents(served)
    vocab, model = served.task.vocab, served.model
    hidden = []
    with torch.no_grad():
        for first in range(0, len(documents), BATCH):
            group = documents[first : first + BATCH]
            ids = [torch.tensor([vocab.index(t) for t in doc]) for doc in group]
            packed = pack_sequence([model.embed(x) for x in ids], enforce_sorted=False)
            out, lengths = pad_packed_sequence(model.rnn(packed)[0], batch_first=True)
            size = model.config.hidden_size
            for row, n in enumerate(lengths.tolist()):
                hidden.append(out[row, :n, :size].numpy().astype(np.float16))  # forward direction only
    starts = np.concatenate([[0], np.cumsum([len(d) for d in documents])])
    return MatchIndex(documents, np.concatenate(hidden), starts, time.perf_counter() - started)


def _documents(served) -> list[list[str]]:
    """The test split's passages as token lists, within the index's bounds."""
    task = served.task
    if served.task_name == "charlm":
        text = task.texts["test"][:MAX_CHARACTERS]
        return [list(text[i : i + CHUNK_CHARS]) for i in range(0, len(text), CHUNK_CHARS)]
    documents, total = [], 0
    for text in task.splits["test"].texts[:MAX_DOCUMENTS]:
        tokens = task.reading_tokens(text)
        if tokens and total + len(tokens) <= MAX_TOKENS:
            documents.append(tokens)
            total += len(tokens)
    return documents
